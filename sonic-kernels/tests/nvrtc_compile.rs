//! Tier B: every kernel variant compiles with NVRTC for every CI architecture.
//!
//! Needs only libnvrtc (no GPU, no driver). Where it cannot be loaded the test prints why
//! and passes; CI installs it from the Python package index (see `.ci/run`), so there it
//! always runs, and `SONIC_REQUIRE_NVRTC=1` turns a missing library into a failure.

use sonic_core::DType;
use sonic_kernels::registry::CI_ARCHS;
use sonic_kernels::{cache, probe_nvrtc, variants, Kernel, Variant};

/// PTX instructions a kernel's design depends on: if the compiler (or an edit) drops one,
/// the kernel silently loses what it is for.
fn required_instructions(variant: &Variant) -> &'static [&'static str] {
    match (variant.kernel, variant.dtype) {
        // Tensor cores, asynchronous double-buffered copies, ldmatrix, exp2 softmax.
        (Kernel::FlashAttention, _) => &[
            "mma.sync.aligned.m16n8k16.row.col.f32",
            "cp.async.cg.shared.global",
            "cp.async.wait_group",
            "ldmatrix.sync.aligned.m8n8.x4.trans",
            "ex2.approx",
        ],
        (Kernel::TemporalAttention, _) => &["ex2.approx", "bar.warp.sync"],
        // grid_sample's unnormalised coordinates: products rounded on their own, not fused
        // into an FMA, so that floor picks the CPU reference's taps.
        (Kernel::Sampling, _) => &["mul.rn.f32"],
        // Tensor cores fed by ldmatrix, weight tiles by cp.async.
        (Kernel::ConvImplicitGemm, DType::F16 | DType::BF16) => &[
            "mma.sync.aligned.m16n8k16.row.col.f32",
            "cp.async.cg.shared.global",
            "ldmatrix.sync.aligned.m8n8.x4.trans",
        ],
        // True f32 on the FMA units.
        (Kernel::ConvImplicitGemm, DType::F32) => &["fma.rn.f32"],
        _ => &[],
    }
}

#[test]
fn every_variant_compiles_for_every_ci_arch() {
    let probe = probe_nvrtc();
    let Some(version) = probe.version else {
        // CI sets this after installing NVRTC, so a broken install fails instead of skipping.
        let required = std::env::var_os("SONIC_REQUIRE_NVRTC").is_some_and(|v| v == "1");
        assert!(
            !required,
            "SONIC_REQUIRE_NVRTC=1 but NVRTC cannot be loaded: {probe:?}"
        );
        eprintln!(
            "skipped: NVRTC cannot be loaded ({}); install nvidia-cuda-nvrtc-cu12 and put its \
             lib/ on LD_LIBRARY_PATH or set SONIC_NVRTC_PATH",
            probe.error.as_deref().unwrap_or("no error reported")
        );
        return;
    };
    let mut failures = Vec::new();
    let mut compiled = 0;
    for arch in CI_ARCHS {
        for variant in variants() {
            match cache::compile(&variant, arch) {
                Ok(out) => {
                    for entry in variant.kernel.entries() {
                        let directive = format!(".entry {entry}(");
                        if !out.ptx.contains(&directive) {
                            failures.push(format!("{} {arch}: no entry {entry}", variant.name()));
                        }
                    }
                    for instruction in required_instructions(&variant) {
                        if !out.ptx.contains(instruction) {
                            failures.push(format!("{} {arch}: no {instruction}", variant.name()));
                        }
                    }
                    // Kernels compile cleanly: a warning is as much a finding as an error.
                    if out.log.contains("warning") {
                        failures.push(format!("{} {arch}: {}", variant.name(), out.log));
                    }
                    // A real architecture yields machine code, not just PTX.
                    if out.cubin.is_empty() {
                        failures.push(format!("{} {arch}: empty CUBIN", variant.name()));
                    }
                    compiled += 1;
                }
                Err(err) => failures.push(err.to_string()),
            }
        }
    }
    eprintln!(
        "NVRTC {}.{}: {compiled} variant compilations ({} variants × {:?})",
        version.0,
        version.1,
        variants().len(),
        CI_ARCHS
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
