//! Every reference fixture in tests/fixtures passes `sonic verify` on the CPU.

use sonic_core::verify::verify;
use sonic_core::{DType, Device};
use sonic_tests::fixture_dirs;

#[test]
fn every_fixture_passes_on_the_cpu() {
    let dirs = fixture_dirs();
    assert!(!dirs.is_empty(), "no fixtures found");
    let mut failures = Vec::new();
    for dir in &dirs {
        let report = verify(dir, Device::Cpu, DType::F32)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for o in &report.outputs {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            println!(
                "{name:32} {:24} rel {:.3e} max {:.3e}",
                o.name, o.rel_error, o.max_abs_error
            );
            if !o.passed {
                failures.push(format!("{}:{}", dir.display(), o.name));
            }
        }
    }
    assert!(failures.is_empty(), "failed: {failures:?}");
}

#[test]
fn half_precision_on_the_cpu_is_refused_by_name() {
    let dirs = fixture_dirs();
    for dtype in [DType::F16, DType::BF16] {
        let err = verify(&dirs[0], Device::Cpu, dtype)
            .expect_err("the CPU backend computes in f32")
            .to_string();
        assert!(err.contains(&format!("{dtype}: the CPU backend")), "{err}");
    }
}
