#!/usr/bin/env python3
"""Checks the index math of kernels-cu/conv_implicit_gemm.cu without a GPU.

Replays the kernel block by block and thread by thread in plain Python: the gather table,
each thread's columns and bounds tests, the weight and column tiles with their XOR
swizzles (shared memory starts as NaN, so a read of an element no thread wrote shows up),
and then, for f16/bf16, ldmatrix (.x4, .x4.trans) and mma.sync m16n8k16 (row.col) with the
fragment layouts the PTX ISA documents, or, for f32, the 4×4 register tiles. The epilogue's
stores go into an output that also starts as NaN and must be written exactly once per
element. Compares with a direct convolution on small integers, so every sum is exact and
only layout errors show up: 1d, 2d and 3d cases with odd sizes, stride, padding, dilation,
K % 8 != 0 (the element-wise weight path), several tiles in M, N and K, and images that
share a column tile. Needs only Python 3:

    python3 scripts/kernels/emulate_conv_implicit_gemm.py
"""
import itertools
import math
import random
import sys

NAN = float("nan")
OUTSIDE = -(1 << 30)
rng = random.Random(0)


class Geometry:
    def __init__(self, channels, inp, kernel, stride, pad, dilation):
        self.channels, self.inp, self.kernel = channels, inp, kernel
        self.stride, self.pad, self.dilation = stride, pad, dilation
        self.out = [
            (inp[i] + 2 * pad[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(3)
        ]


def gather_table(g, k_total, k_padded):
    table = []
    for k in range(k_padded):
        if k < k_total:
            area = g.kernel[1] * g.kernel[2]
            kx = k % g.kernel[2]
            ky = k // g.kernel[2] % g.kernel[1]
            kz = k // area % g.kernel[0]
            c = k // (area * g.kernel[0])
            dz, dy, dx = kz * g.dilation[0], ky * g.dilation[1], kx * g.dilation[2]
            off = ((c * g.inp[0] + dz) * g.inp[1] + dy) * g.inp[2] + dx
            assert -(2**31) <= off < 2**31
            table.append((off, dz, dy, dx))
        else:
            table.append((0, OUTSIDE, OUTSIDE, OUTSIDE))
    return table


def column(g, q, columns):
    if q >= columns:
        return (0, 0, OUTSIDE, 0)
    positions = g.out[0] * g.out[1] * g.out[2]
    image, p = q // positions, q % positions
    ox, oy, oz = p % g.out[2], p // g.out[2] % g.out[1], p // (g.out[2] * g.out[1])
    z0 = oz * g.stride[0] - g.pad[0]
    y0 = oy * g.stride[1] - g.pad[1]
    x0 = ox * g.stride[2] - g.pad[2]
    volume = g.channels * g.inp[0] * g.inp[1] * g.inp[2]
    return (image * volume + (z0 * g.inp[1] + y0) * g.inp[2] + x0, z0, y0, x0)


def as_unsigned(v):
    assert -(2**31) <= v < 2**31, "32-bit overflow"
    return v & 0xFFFFFFFF


def inside(depth, col, tap, g):
    _, z0, y0, x0 = col
    _, dz, dy, dx = tap
    return (not depth or as_unsigned(z0 + dz) < g.inp[0]) and as_unsigned(y0 + dy) < g.inp[1] and as_unsigned(
        x0 + dx
    ) < g.inp[2]


def gather(x, depth, col, tap, g):
    return x[col[0] + tap[0]] if inside(depth, col, tap, g) else 0.0


def output_offset(q, positions, out_channels):
    image = q // positions
    return image * out_channels * positions + (q - image * positions)


def store(y, written, at, value):
    assert 0 <= at < len(y), f"store out of range at {at}"
    assert not written[at], f"element {at} written twice"
    written[at] = True
    y[at] = value


def f32_block(x, w, bias, y, written, table, g, depth, out_channels, columns, block):
    BM, BN, BK, THREADS, A_PITCH = 64, 64, 16, 256, 68
    k_total = g.channels * g.kernel[0] * g.kernel[1] * g.kernel[2]
    m_tiles = (out_channels + BM - 1) // BM
    m0, n0 = block % m_tiles * BM, block // m_tiles * BN
    acc = [[[0.0] * 4 for _ in range(4)] for _ in range(THREADS)]
    cols = [column(g, n0 + (t & 63), columns) for t in range(THREADS)]
    for k0 in range(0, (k_total + BK - 1) // BK * BK, BK):
        s_a = [NAN] * (BK * A_PITCH)
        s_b = [NAN] * (BK * BN)
        for t in range(THREADS):
            a_k, a_row = t & 15, t >> 4
            b_col, b_group = t & 63, t >> 6
            for i in range(4):
                o, k = m0 + a_row + 16 * i, k0 + a_k
                s_a[a_k * A_PITCH + a_row + 16 * i] = w[o * k_total + k] if o < out_channels and k < k_total else 0.0
            for j in range(4):
                s_b[(4 * b_group + j) * BN + b_col] = gather(x, depth, cols[t], table[k0 + 4 * b_group + j], g)
        for t in range(THREADS):
            tx, ty = t & 15, t >> 4
            for kk in range(BK):
                av = s_a[kk * A_PITCH + 4 * ty : kk * A_PITCH + 4 * ty + 4]
                bv = s_b[kk * BN + 4 * tx : kk * BN + 4 * tx + 4]
                for i in range(4):
                    for j in range(4):
                        acc[t][i][j] += av[i] * bv[j]
    positions = g.out[0] * g.out[1] * g.out[2]
    for t in range(THREADS):
        tx, ty = t & 15, t >> 4
        at, ok = [], []
        for j in range(4):
            q = n0 + 4 * tx + j
            ok.append(q < columns)
            at.append(output_offset(q, positions, out_channels) if q < columns else 0)
        for i in range(4):
            o = m0 + 4 * ty + i
            if o >= out_channels:
                continue
            add = bias[o] if bias else 0.0
            for j in range(4):
                if ok[j]:
                    store(y, written, at[j] + o * positions, acc[t][i][j] + add)


def ldmatrix(smem, addresses, trans):
    """addresses[lane] = element offset of the 8-element row that lane supplies; returns
    regs[lane][matrix] = (low, high) per the PTX ISA fragment layout."""
    regs = [[None] * 4 for _ in range(32)]
    for m in range(4):
        rows = [smem[addresses[8 * m + r] : addresses[8 * m + r] + 8] for r in range(8)]
        for lane in range(32):
            g, t = lane // 4, lane % 4
            if trans:
                regs[lane][m] = (rows[2 * t][g], rows[2 * t + 1][g])
            else:
                regs[lane][m] = (rows[g][2 * t], rows[g][2 * t + 1])
    return regs


def mma(acc, a, b0, b1):
    """acc[lane] = 4 floats; a[lane] = 4 pairs (a0..a3); b0, b1[lane] = pairs."""
    A = [[None] * 16 for _ in range(16)]
    B = [[None] * 8 for _ in range(16)]
    for lane in range(32):
        g, t = lane // 4, lane % 4
        for e in range(2):
            A[g][2 * t + e] = a[lane][0][e]
            A[g + 8][2 * t + e] = a[lane][1][e]
            A[g][2 * t + 8 + e] = a[lane][2][e]
            A[g + 8][2 * t + 8 + e] = a[lane][3][e]
            B[2 * t + e][g] = b0[lane][e]
            B[2 * t + 8 + e][g] = b1[lane][e]
    for lane in range(32):
        g, t = lane // 4, lane % 4
        for r, (row, col) in enumerate([(g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1)]):
            acc[lane][r] += sum(A[row][k] * B[k][col] for k in range(16))


def half_block(x, w, bias, y, written, table, g, depth, out_channels, columns, block, w_aligned, y_base):
    """y_base: the byte address of y modulo 4."""
    BM, BN, BK, THREADS = 128, 128, 32, 256
    k_total = g.channels * g.kernel[0] * g.kernel[1] * g.kernel[2]
    vector = k_total % 8 == 0 and w_aligned
    m_tiles = (out_channels + BM - 1) // BM
    m0, n0 = block % m_tiles * BM, block // m_tiles * BN

    def a_offset(row, chunk):
        return row * BK + ((chunk ^ ((row >> 1) & 3)) << 3)

    def b_offset(row, chunk):
        return row * BN + ((chunk ^ (row & 7)) << 3)

    # acc[warp][i][j][lane] = 4 floats
    acc = [[[[[0.0] * 4 for _ in range(32)] for _ in range(4)] for _ in range(4)] for _ in range(8)]
    pairs = [(column(g, n0 + 2 * (t & 63), columns), column(g, n0 + 2 * (t & 63) + 1, columns)) for t in range(THREADS)]
    for k0 in range(0, (k_total + BK - 1) // BK * BK, BK):
        s_a = [NAN] * (BM * BK)
        s_b = [NAN] * (BK * BN)
        for t in range(THREADS):
            for i in range(BM * BK // 8 // THREADS):
                ident = t + i * THREADS
                row, chunk = ident >> 2, ident & 3
                k = k0 + chunk * 8
                row_ok = m0 + row < out_channels
                dst = a_offset(row, chunk)
                for e in range(8):
                    if vector:
                        ok = row_ok and k < k_total
                    else:
                        ok = row_ok and k + e < k_total
                    s_a[dst + e] = w[(m0 + row) * k_total + k + e] if ok else 0.0
            pair, group = t & 63, t >> 6
            c0, c1 = pairs[t]
            n = 2 * pair
            for j in range(8):
                tap = table[k0 + 8 * group + j]
                at = b_offset(8 * group + j, n >> 3) + (n & 7)
                assert at % 2 == 0
                s_b[at] = gather(x, depth, c0, tap, g)
                s_b[at + 1] = gather(x, depth, c1, tap, g)
        for warp in range(8):
            wm, wn = warp >> 2, warp & 3
            for ks in range(BK // 16):
                af = [
                    ldmatrix(s_a, [a_offset(wm * 64 + i * 16 + (lane & 15), ks * 2 + (lane >> 4)) for lane in range(32)], False)
                    for i in range(4)
                ]
                bf = [None] * 4
                for jp in range(2):
                    r = ldmatrix(
                        s_b,
                        [
                            b_offset(ks * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), wn * 4 + jp * 2 + (lane >> 4))
                            for lane in range(32)
                        ],
                        True,
                    )
                    bf[2 * jp] = ([r[lane][0] for lane in range(32)], [r[lane][1] for lane in range(32)])
                    bf[2 * jp + 1] = ([r[lane][2] for lane in range(32)], [r[lane][3] for lane in range(32)])
                for i in range(4):
                    for j in range(4):
                        mma(acc[warp][i][j], af[i], bf[j][0], bf[j][1])
    positions = g.out[0] * g.out[1] * g.out[2]
    for warp in range(8):
        wm, wn = warp >> 2, warp & 3
        for lane in range(32):
            for j in range(4):
                q = n0 + wn * 32 + j * 8 + 2 * (lane & 3)
                ok0, ok1 = q < columns, q + 1 < columns
                at0 = output_offset(q, positions, out_channels) if ok0 else 0
                at1 = output_offset(q + 1, positions, out_channels) if ok1 else 0
                for i in range(4):
                    for h in range(2):
                        o = m0 + wm * 64 + i * 16 + h * 8 + (lane >> 2)
                        if o >= out_channels:
                            continue
                        add = bias[o] if bias else 0.0
                        v0 = acc[warp][i][j][lane][2 * h] + add
                        v1 = acc[warp][i][j][lane][2 * h + 1] + add
                        row = o * positions
                        y0, y1 = at0 + row, at1 + row
                        if ok1 and y1 == y0 + 1 and (y_base + 2 * y0) % 4 == 0:
                            # One 4-byte store of the pair at y0.
                            store(y, written, y0, v0)
                            store(y, written, y0 + 1, v1)
                        else:
                            if ok0:
                                store(y, written, y0, v0)
                            if ok1:
                                store(y, written, y1, v1)


def reference(x, w, bias, g, images, out_channels):
    positions = g.out[0] * g.out[1] * g.out[2]
    y = [0.0] * (images * out_channels * positions)
    D, H, W = g.inp
    for b, o in itertools.product(range(images), range(out_channels)):
        for oz, oy, ox in itertools.product(range(g.out[0]), range(g.out[1]), range(g.out[2])):
            s = bias[o] if bias else 0.0
            for c, kz, ky, kx in itertools.product(range(g.channels), *[range(k) for k in g.kernel]):
                iz = oz * g.stride[0] - g.pad[0] + kz * g.dilation[0]
                iy = oy * g.stride[1] - g.pad[1] + ky * g.dilation[1]
                ix = ox * g.stride[2] - g.pad[2] + kx * g.dilation[2]
                if 0 <= iz < D and 0 <= iy < H and 0 <= ix < W:
                    wk = ((o * g.channels + c) * g.kernel[0] + kz) * g.kernel[1] * g.kernel[2] + ky * g.kernel[2] + kx
                    s += w[wk] * x[(((b * g.channels + c) * D + iz) * H + iy) * W + ix]
            p = (oz * g.out[1] + oy) * g.out[2] + ox
            y[(b * out_channels + o) * positions + p] = s
    return y


def run(name, images, channels, out_channels, inp, kernel, stride, pad, dilation, bias, half, w_aligned=True, y_base=0):
    g = Geometry(channels, inp, kernel, stride, pad, dilation)
    k_total = channels * math.prod(kernel)
    depth = not (inp[0] == 1 and kernel[0] == 1 and pad[0] == 0)
    x = [float(rng.randint(-3, 3)) for _ in range(images * channels * math.prod(inp))]
    w = [float(rng.randint(-3, 3)) for _ in range(out_channels * k_total)]
    b = [float(rng.randint(-3, 3)) for _ in range(out_channels)] if bias else None
    positions = math.prod(g.out)
    columns = images * positions
    table = gather_table(g, k_total, (k_total + 31) // 32 * 32)
    y = [NAN] * (images * out_channels * positions)
    written = [False] * len(y)
    bm, bn = (128, 128) if half else (64, 64)
    blocks = -(-out_channels // bm) * -(-columns // bn)
    for block in range(blocks):
        if half:
            half_block(x, w, b, y, written, table, g, depth, out_channels, columns, block, w_aligned, y_base)
        else:
            f32_block(x, w, b, y, written, table, g, depth, out_channels, columns, block)
    want = reference(x, w, b, g, images, out_channels)
    bad = [i for i in range(len(y)) if not written[i] or y[i] != want[i]]
    kind = "f16/bf16" if half else "f32"
    print(f"{name} [{kind}]: {len(y)} outputs, {blocks} blocks, K={k_total}, 3d entry {depth}: "
          + ("ok" if not bad else f"{len(bad)} wrong, first at {bad[0]}: {y[bad[0]]} vs {want[bad[0]]}"))
    return not bad


CASES = [
    # name, images, C, O, input, kernel, stride, pad, dilation, bias
    ("2d 3x3 pad 1, K % 8 != 0", 2, 5, 7, [1, 13, 11], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1], True),
    ("2d two M tiles, images share a tile", 3, 16, 130, [1, 9, 7], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1], False),
    ("2d stride 2", 2, 8, 33, [1, 15, 16], [1, 3, 3], [1, 2, 2], [0, 1, 1], [1, 1, 1], True),
    ("2d dilation, mixed params", 1, 6, 9, [1, 17, 19], [1, 3, 3], [1, 1, 2], [0, 2, 0], [1, 2, 1], True),
    ("2d 1x1", 2, 40, 20, [1, 7, 9], [1, 1, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1], True),
    ("1d stride 2", 3, 5, 7, [1, 1, 29], [1, 1, 3], [1, 1, 2], [0, 0, 1], [1, 1, 1], True),
    ("1d dilation 2, pad 4", 2, 8, 12, [1, 1, 31], [1, 1, 5], [1, 1, 1], [0, 0, 4], [1, 1, 2], False),
    ("3d 3x3x3", 1, 4, 3, [5, 9, 11], [3, 3, 3], [1, 1, 1], [1, 1, 1], [1, 1, 1], True),
    ("3d temporal 3x1x1", 2, 3, 5, [4, 7, 6], [3, 1, 1], [1, 1, 1], [1, 0, 0], [1, 1, 1], False),
    ("3d mixed stride, pad, dilation", 1, 8, 6, [6, 9, 7], [3, 3, 3], [2, 1, 2], [1, 1, 0], [1, 2, 1], True),
    ("kernel covers the input", 2, 3, 4, [1, 5, 5], [1, 5, 5], [1, 1, 1], [0, 0, 0], [1, 1, 1], True),
]


def main():
    ok = True
    for case in CASES:
        ok &= run(*case, half=False)
        ok &= run(*case, half=True)
    # A misaligned weight pointer takes the element-wise path even when K % 8 == 0; an output
    # that starts 2 bytes into a word (a later launch of a split batch) pairs other columns.
    ok &= run("2d, weights not 16-byte aligned", 1, 8, 9, [1, 6, 5], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1], True,
              half=True, w_aligned=False)
    ok &= run("2d, output at an odd half-word", 2, 8, 9, [1, 6, 6], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1], True,
              half=True, y_base=2)
    print("all cases match" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
