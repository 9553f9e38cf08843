#!/usr/bin/env python3
"""Checks the index math of kernels-cu/flash_attention.cu without a GPU.

Replays one block of the kernel in NumPy, lane by lane, with the fragment layouts that the
PTX ISA documents for ldmatrix (.x4, .x2, .trans) and mma.sync m16n8k16 (row.col): the
swizzled tile loads with zero-filled padding, the Q/K/V fragment addresses, the exp2-form
online softmax with masking of keys past the end, and the output stores. Compares with
softmax(QKᵀ·scale)·V for the head dims 40, 64, 80 and 128 at ragged sequence lengths and
fails if an element is wrong or never written. Arithmetic is f32 (no f16 rounding), so only
layout errors show up. Needs only NumPy:

    python3 scripts/kernels/emulate_flash_attention.py
"""
import sys

import numpy as np
rng = np.random.default_rng(0)

def run(D, lq, lk):
    BLOCK=64; D_MMA=(D+15)//16*16; D_SMEM=(D+63)//64*64; LOAD=D_MMA//8; DATA=D//8; OT=D//8
    q=rng.standard_normal((lq,D)).astype(np.float32); k=rng.standard_normal((lk,D)).astype(np.float32); v=rng.standard_normal((lk,D)).astype(np.float32)
    scale=1/np.sqrt(D); sl2=scale*np.log2(np.e)
    def swz(row,chunk): return row*D_SMEM+((chunk^(row&7))<<3)
    def load_tile(src,row0,n):
        t=np.full(BLOCK*D_SMEM,np.nan,np.float32)
        for idx in range(BLOCK*LOAD):
            row,chunk=idx//LOAD,idx%LOAD
            valid=row0+row<n and chunk<DATA
            o=swz(row,chunk)
            t[o:o+8]= src[row0+row,chunk*8:chunk*8+8] if valid else 0
        return t
    def ldm(t, addrs, nmat, trans):
        # addrs[lane] = element offset; returns regs[lane][i] = (lo, hi)
        regs=[[None]*nmat for _ in range(32)]
        for i in range(nmat):
            rows=[t[addrs[8*i+r]:addrs[8*i+r]+8] for r in range(8)]
            for T in range(32):
                g,tt=T//4,T%4
                if not trans: regs[T][i]=(rows[g][2*tt],rows[g][2*tt+1])
                else: regs[T][i]=(rows[2*tt][g],rows[2*tt+1][g])
        return regs
    def mma(c,a,b0,b1):
        # c[lane]=[4], a[lane]=[4 pairs], b0,b1[lane]=pair
        A=np.zeros((16,16)); B=np.zeros((16,8))
        for T in range(32):
            g,t=T//4,T%4
            A[g,2*t:2*t+2]=a[T][0]; A[g+8,2*t:2*t+2]=a[T][1]; A[g,2*t+8:2*t+10]=a[T][2]; A[g+8,2*t+8:2*t+10]=a[T][3]
            B[2*t:2*t+2,g]=b0[T]; B[2*t+8:2*t+10,g]=b1[T]
        C=A@B
        for T in range(32):
            g,t=T//4,T%4
            c[T][0]+=C[g,2*t]; c[T][1]+=C[g,2*t+1]; c[T][2]+=C[g+8,2*t]; c[T][3]+=C[g+8,2*t+1]
    out=np.full((lq,D),np.nan)
    for m0 in range(0,lq,BLOCK):
        sq=load_tile(q,m0,lq)
        for warp in range(4):
            qf=[ldm(sq,[swz(warp*16+(L&15),ks*2+(L>>4)) for L in range(32)],4,False) for ks in range(D_MMA//16)]
            acc=[[ [0.0]*4 for _ in range(OT)] for _ in range(32)]
            rmax=[[-np.inf]*2 for _ in range(32)]; rsum=[[0.0]*2 for _ in range(32)]
            for j in range((lk+63)//64):
                tk=load_tile(k,j*64,lk); tv=load_tile(v,j*64,lk)
                s=[[[0.0]*4 for _ in range(8)] for _ in range(32)]
                for ks in range(D_MMA//16):
                    for np_ in range(4):
                        kb=ldm(tk,[swz(np_*16+(L&7)+((L>>4)<<3), ks*2+((L>>3)&1)) for L in range(32)],4,False)
                        for nt,(i0,i1) in ((2*np_,(0,1)),(2*np_+1,(2,3))):
                            c=[s[T][nt] for T in range(32)]
                            mma(c,[qf[ks][T] for T in range(32)],[kb[T][i0] for T in range(32)],[kb[T][i1] for T in range(32)])
                for T in range(32):
                    key0=j*64+2*(T&3)
                    for r in range(2):
                        for t in range(8):
                            for e in range(2):
                                x=s[T][t][2*r+e]*sl2
                                if key0+t*8+e>=lk: x=-np.inf
                                s[T][t][2*r+e]=x
                # quad max
                for r in range(2):
                    mx=[max(s[T][t][2*r+e] for t in range(8) for e in range(2)) for T in range(32)]
                    mx=[max(mx[(T&~3)+i] for i in range(4)) for T in range(32)]
                    for T in range(32):
                        mn=max(rmax[T][r],mx[T]); al=np.exp2(rmax[T][r]-mn); rmax[T][r]=mn
                        sm=0
                        for t in range(8):
                            for e in range(2):
                                p=np.exp2(s[T][t][2*r+e]-mn); s[T][t][2*r+e]=p; sm+=p
                        rsum[T][r]=rsum[T][r]*al+sm
                        for t in range(OT): acc[T][t][2*r]*=al; acc[T][t][2*r+1]*=al
                for kk in range(4):
                    pa=[[(s[T][2*kk][0],s[T][2*kk][1]),(s[T][2*kk][2],s[T][2*kk][3]),(s[T][2*kk+1][0],s[T][2*kk+1][1]),(s[T][2*kk+1][2],s[T][2*kk+1][3])] for T in range(32)]
                    key=lambda L: kk*16+(L&7)+(((L>>3)&1)<<3)
                    for dp in range(OT//2):
                        vb=ldm(tv,[swz(key(L),dp*2+(L>>4)) for L in range(32)],4,True)
                        for dt,(i0,i1) in ((2*dp,(0,1)),(2*dp+1,(2,3))):
                            c=[acc[T][dt] for T in range(32)]
                            mma(c,pa,[vb[T][i0] for T in range(32)],[vb[T][i1] for T in range(32)])
                    if OT%2==1:
                        vb=ldm(tv,[swz(key(L),OT-1) for L in range(32)],2,True)
                        c=[acc[T][OT-1] for T in range(32)]
                        mma(c,pa,[vb[T][0] for T in range(32)],[vb[T][1] for T in range(32)])
            for T in range(32):
                for r in range(2):
                    l=sum(rsum[(T&~3)+i][r] for i in range(4))
                    row=m0+warp*16+(T>>2)+r*8
                    if row<lq:
                        for t in range(OT):
                            col=t*8+2*(T&3)
                            out[row,col]=acc[T][t][2*r]/l; out[row,col+1]=acc[T][t][2*r+1]/l
    S=q@k.T*scale; P=np.exp(S-S.max(1,keepdims=True)); P/=P.sum(1,keepdims=True)
    ref=P@v
    err = float(np.nanmax(np.abs(out - ref)))
    unwritten = int(np.isnan(out).sum())
    print(f"d={D} lq={lq} lk={lk}: max error {err:.2e}, unwritten {unwritten}")
    return err < 1e-5 and unwritten == 0

if __name__ == "__main__":
    cases = [(40, 20, 70), (80, 17, 65), (64, 70, 33), (128, 5, 130)]
    sys.exit(0 if all([run(d, lq, lk) for d, lq, lk in cases]) else 1)
