use std::path::{Path, PathBuf};

use crate::verify::verify;
use crate::Device;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn assert_passes(name: &str) {
    let report = verify(&fixture(name), Device::Cpu).unwrap();
    for o in &report.outputs {
        println!(
            "{name} {:24} rel {:.3e} max {:.3e}",
            o.name, o.rel_error, o.max_abs_error
        );
    }
    assert!(report.passed(), "{name} failed");
}

#[test]
fn svd_fixture_matches_diffusers() {
    assert_passes("svd_unet");
}

#[test]
fn sonic_fixture_matches_the_spec() {
    assert_passes("sonic_unet");
}
