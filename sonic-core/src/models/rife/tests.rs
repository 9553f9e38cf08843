use std::cell::Cell;

use super::*;
use crate::verify::testing::{assert_passes, fixture};
use crate::weights::write_safetensors;

fn tensor(data: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_slice(data, dims, Device::Cpu).unwrap()
}

fn fixture_rife() -> Rife {
    let config: RifeConfig = serde_json::from_str(
        &std::fs::read_to_string(fixture("rife_ifnet").join("config.json")).unwrap(),
    )
    .unwrap();
    Rife::load_with(
        &fixture("rife_ifnet").join("flownet.pkl"),
        config,
        Device::Cpu,
    )
    .unwrap()
}

fn fixture_frames() -> (Tensor, Tensor) {
    let fx = crate::verify::Fixture::open(&fixture("rife_ifnet")).unwrap();
    (
        fx.tensor("img0", Device::Cpu).unwrap(),
        fx.tensor("img1", Device::Cpu).unwrap(),
    )
}

#[test]
fn ifnet_fixture_passes() {
    assert_passes("rife_ifnet");
}

#[test]
fn warp_fixture_passes() {
    assert_passes("rife_warp");
}

#[test]
fn flownet_pkl_loads_with_the_teacher_as_expected_unused() {
    let rife = fixture_rife();
    let report = rife.report();
    assert!(report.is_clean(), "{report}");
    assert!(report.unused.is_empty(), "{report}");
    assert!(!report.expected_unused.is_empty());
    assert!(report
        .expected_unused
        .iter()
        .all(|k| k.starts_with("module.block_tea.")));
    assert!(report.to_string().contains("expected unused"));
}

#[test]
fn safetensors_conversion_without_prefix_loads_the_same_model() {
    let store = WeightStore::open(&[fixture("rife_ifnet").join("flownet.pkl")]).unwrap();
    let dir = std::env::temp_dir().join(format!("sonic-rife-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flownet.safetensors");
    write_safetensors(&store, &path).unwrap();
    let (a, b) = fixture_frames();
    let config = fixture_rife().net().config.clone();
    let converted = Rife::load_with(&path, config, Device::Cpu).unwrap();
    let expected = fixture_rife()
        .interpolate(&a, &b)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(
        converted.interpolate(&a, &b).unwrap().to_vec().unwrap(),
        expected
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn midpoint_is_symmetric_in_its_frames() {
    let rife = fixture_rife();
    let (a, b) = fixture_frames();
    let ab = rife.interpolate(&a, &b).unwrap();
    let ba = rife.interpolate(&b, &a).unwrap();
    let (_, worst) = crate::verify::errors(&ab, &ba).unwrap();
    assert!(worst < 1e-5, "asymmetry {worst}");
}

#[test]
fn bad_frames_are_errors() {
    let rife = fixture_rife();
    let a = Tensor::zeros([1, 3, 8, 8], Device::Cpu).unwrap();
    let b = Tensor::zeros([1, 3, 8, 9], Device::Cpu).unwrap();
    let gray = Tensor::zeros([1, 1, 8, 8], Device::Cpu).unwrap();
    assert!(rife.interpolate(&a, &b).is_err());
    assert!(rife.interpolate(&gray, &gray).is_err());
    assert!(rife
        .net()
        .forward(&a, &a)
        .is_err_and(|e| e.to_string().contains("multiple of 32")));
    let missing = RifeConfig {
        channels: 8,
        ..RifeConfig::default()
    };
    let path = fixture("rife_ifnet").join("flownet.pkl");
    let err = Rife::load_with(&path, missing, Device::Cpu).unwrap_err();
    assert!(
        err.to_string().contains("module.block0.conv0.0.0.weight"),
        "{err}"
    );
    let odd = RifeConfig {
        pad_multiple: 24,
        ..RifeConfig::default()
    };
    assert!(Rife::load_with(&path, odd, Device::Cpu).is_err());
}

#[test]
fn warp_by_whole_pixels_shifts_and_repeats_the_border() {
    // 1 channel, 3×4 ramp 0..12; flow (+1, 0) everywhere reads the right neighbour, and the
    // last column, clamped, reads itself.
    let img = tensor(
        &(0..12).map(|v| v as f32).collect::<Vec<_>>(),
        &[1, 1, 3, 4],
    );
    let mut flow = vec![1.0f32; 12];
    flow.extend([0.0f32; 12]);
    let out = warp(&img, &tensor(&flow, &[1, 2, 3, 4])).unwrap();
    let expected = [
        1.0, 2.0, 3.0, 3.0, 5.0, 6.0, 7.0, 7.0, 9.0, 10.0, 11.0, 11.0,
    ];
    for (o, e) in out.to_vec().unwrap().iter().zip(expected) {
        assert!((o - e).abs() < 1e-5, "{o} vs {e}");
    }
    // (−0.5, +0.5): the mean of the four neighbours up-left of the half-step, clamped at
    // the top-left corner and the bottom row.
    let mut flow = vec![-0.5f32; 12];
    flow.extend([0.5f32; 12]);
    let out = warp(&img, &tensor(&flow, &[1, 2, 3, 4]))
        .unwrap()
        .to_vec()
        .unwrap();
    let at = |x: f32, y: f32| y.clamp(0.0, 2.0) * 4.0 + x.clamp(0.0, 3.0);
    for y in 0..3 {
        for x in 0..4 {
            let e = at(x as f32 - 0.5, y as f32 + 0.5);
            assert!(
                (out[y * 4 + x] - e).abs() < 1e-5,
                "({x}, {y}): {} vs {e}",
                out[y * 4 + x]
            );
        }
    }
    assert!(warp(&img, &tensor(&[0.0; 12], &[1, 1, 3, 4])).is_err());
}

/// Tags each midpoint so the output order can be checked without a model.
struct Average {
    calls: Cell<usize>,
}

impl FrameInterpolator for Average {
    fn interpolate(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.calls.set(self.calls.get() + 1);
        a.add(b)?.mul_scalar(0.5)
    }
}

#[test]
fn doubling_turns_f_frames_into_2f_minus_1() {
    let avg = Average {
        calls: Cell::new(0),
    };
    let frames = (0..4).map(|i| Tensor::full(i as f32, [1, 3, 2, 2], Device::Cpu));
    let mut seen = Vec::new();
    let count = interpolate_stream(&avg, frames, |t| {
        seen.push(t.to_vec()?[0]);
        Ok(())
    })
    .unwrap();
    assert_eq!(count, 7);
    assert_eq!(seen, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
    assert_eq!(avg.calls.get(), 3);

    let mut doubler = FrameDoubler::new(&avg);
    let one = Tensor::zeros([1, 3, 2, 2], Device::Cpu).unwrap();
    assert_eq!(doubler.push(one).unwrap().len(), 1);
    let none: Vec<Result<Tensor>> = Vec::new();
    assert_eq!(interpolate_stream(&avg, none, |_| Ok(())).unwrap(), 0);
    let failing = vec![Err(Error::invalid("decode", "boom"))];
    assert!(interpolate_stream(&avg, failing, |_| Ok(())).is_err());
}

#[test]
fn a_bad_checkpoint_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("flownet.pkl");
    std::fs::write(&garbage, b"not a torch checkpoint").unwrap();
    let err = Rife::load(&garbage, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("flownet.pkl"), "{err}");
    // A real checkpoint of another shape: the default config expects 90 channels.
    let tiny = fixture("rife_ifnet").join("flownet.pkl");
    let err = Rife::load(&tiny, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("has shape"), "{err}");
}
