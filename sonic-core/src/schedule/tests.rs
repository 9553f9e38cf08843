use proptest::prelude::*;

use super::Strategy;
use super::*;
use crate::sampling::{builtin_sampler, karras_sigmas, Euler};
use crate::{Device, Shape, Tensor};

fn strategy(spec: &str) -> Strategy {
    spec.parse().unwrap()
}

fn ranges(w: &Window) -> Vec<usize> {
    w.frames.clone()
}

#[test]
fn shift_on_a_ring_matches_the_reference_example() {
    // F = 125 at step 3: shift 21, so the first window is {104..124, 0..3}.
    let plan = strategy("shift:alpha=7").plan(125, 25, 25).unwrap();
    let w = &plan.windows_at(3)[0];
    let expected: Vec<usize> = (104..125).chain(0..4).collect();
    assert_eq!(ranges(w), expected);
    assert_eq!(ranges(&plan.windows_at(3)[1]), (4..29).collect::<Vec<_>>());
    assert_eq!(plan.windows_at(3).len(), 5);
    assert!(plan.coverage(3).iter().all(|&c| c == 1));
}

#[test]
fn ring_windows_repeat_frames_of_short_or_uneven_sequences() {
    let plan = strategy("shift").plan(10, 25, 3).unwrap();
    assert_eq!(plan.windows_at(0).len(), 1);
    assert_eq!(plan.windows_at(0)[0].frames[10], 0);
    assert!(plan.coverage(0).iter().all(|&c| c >= 2));
    let uneven = strategy("shift:alpha=0").plan(30, 25, 1).unwrap();
    let counts = uneven.coverage(0);
    assert_eq!(counts[..20].iter().filter(|&&c| c == 2).count(), 20);
    assert!(counts[20..].iter().all(|&c| c == 1));
}

#[test]
fn reflect_and_clamp_pad_without_voting() {
    let plan = strategy("shift:alpha=7,edge=reflect")
        .plan(50, 25, 2)
        .unwrap();
    let first = &plan.windows_at(1)[0];
    // Step 1 is shifted by 7: the window starts at virtual −7, mirrored onto 7..1.
    assert_eq!(&first.frames[..8], &[7, 6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(
        &first.weights[..8],
        &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    );
    assert!(plan.coverage(1).iter().all(|&c| c == 1));
    let clamp = strategy("shift:alpha=7,edge=clamp")
        .plan(50, 25, 2)
        .unwrap();
    assert_eq!(&clamp.windows_at(1)[0].frames[..8], &[0; 8]);
    assert!(clamp.coverage(1).iter().all(|&c| c == 1));
}

#[test]
fn overlap_pulls_the_last_window_back_to_the_end() {
    let plan = strategy("overlap:o=8,weights=pyramid")
        .plan(100, 25, 1)
        .unwrap();
    let starts: Vec<usize> = plan.windows_at(0).iter().map(|w| w.frames[0]).collect();
    assert_eq!(starts, vec![0, 17, 34, 51, 68, 75]);
    assert_eq!(
        *plan.windows_at(0).last().unwrap().frames.last().unwrap(),
        99
    );
    assert_eq!(plan.windows_at(0)[0].weights[..3], [1.0, 2.0, 3.0]);
    assert_eq!(plan.windows_at(0)[0].weights[12], 13.0);
    assert_eq!(plan.windows_at(0)[0].weights[24], 1.0);
}

#[test]
fn motion_frames_carry_the_previous_clip() {
    let plan = strategy("motion-frames:o=4").plan(60, 25, 2).unwrap();
    let Layout::Clips { clips, .. } = &plan.layout else {
        panic!("not clips")
    };
    assert_eq!(clips.len(), 3);
    assert_eq!(clips[1].carried, 4);
    assert_eq!(clips[1].frames[..5], [21, 22, 23, 24, 25]);
    assert_eq!(*clips[2].frames.last().unwrap(), 59);
    assert!(plan.coverage(0).iter().all(|&c| c == 1));
}

#[test]
fn cost_follows_the_closed_forms() {
    let sigmas = karras_sigmas(25, 0.002, 700.0);
    let (n, f, t, o) = (337usize, 25usize, 25usize, 8usize);
    let c = |spec: &str| strategy(spec).cost(n, f, &Euler, &sigmas).unwrap();
    assert_eq!(c("shift").denoiser_calls, t * n.div_ceil(f));
    assert_eq!(c("tiles").denoiser_calls, t * n.div_ceil(f));
    assert_eq!(c("overlap:o=8").denoiser_calls, t * (n - o).div_ceil(f - o));
    let clips = 1 + (n - f).div_ceil(f - 4);
    let mf = c("motion-frames:o=4");
    assert_eq!(mf.denoiser_calls, t * clips);
    assert_eq!(c("shift").frame_evaluations, t * n.div_ceil(f) * f);
    let heun = builtin_sampler("heun").unwrap();
    let h = strategy("shift")
        .cost(n, f, heun.as_ref(), &sigmas)
        .unwrap();
    assert_eq!(h.denoiser_calls, (2 * t - 1) * n.div_ceil(f));
}

#[test]
fn specs_parse_print_and_reject_nonsense() {
    for spec in [
        "shift:alpha=7,edge=ring,fusion=fuse-then-step",
        "overlap:o=8,weights=pyramid,fusion=sonic-compat",
        "motion-frames:o=4",
        "tiles:edge=clamp,fusion=fuse-then-step",
    ] {
        assert_eq!(strategy(spec).to_string(), spec);
    }
    assert_eq!(strategy("shift"), strategy("shift:alpha=7"));
    for bad in [
        "shift:alpha=x",
        "shift:beta=1",
        "warp",
        "overlap:weights=cubic",
        "shift:edge=wrap",
        "shift:alpha",
    ] {
        let err = bad.parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains(bad), "{bad}: {err}");
    }
    assert!(strategy("overlap:o=25").plan(100, 25, 1).is_err());
    assert!(strategy("shift").plan(0, 25, 1).is_err());
}

fn all_strategies(alpha: usize, o: usize) -> Vec<Strategy> {
    vec![
        Strategy::Shift {
            alpha,
            edge: Edge::Ring,
            fusion: Fusion::FuseThenStep,
        },
        Strategy::Shift {
            alpha,
            edge: Edge::Reflect,
            fusion: Fusion::FuseThenStep,
        },
        Strategy::Shift {
            alpha,
            edge: Edge::Clamp,
            fusion: Fusion::FuseThenStep,
        },
        Strategy::Overlap {
            overlap: o,
            weights: Weights::Flat,
            fusion: Fusion::FuseThenStep,
        },
        Strategy::Overlap {
            overlap: o,
            weights: Weights::Pyramid,
            fusion: Fusion::FuseThenStep,
        },
        Strategy::MotionFrames { overlap: o },
        Strategy::Tiles {
            edge: Edge::Ring,
            fusion: Fusion::FuseThenStep,
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_plan_covers_every_frame_every_step(n in 1usize..=500, f in 1usize..=32, alpha in 0usize..=31, o_seed in 0usize..32, steps in 1usize..6) {
        let o = o_seed % f;
        for s in all_strategies(alpha, o) {
            let plan = s.plan(n, f, steps).unwrap();
            prop_assert!(plan.validate().is_ok());
            prop_assert_eq!(plan.frames, n);
            for step in 0..steps {
                for w in plan.windows_at(step) {
                    prop_assert!(w.len() <= f.max(1) && w.frames.iter().all(|&i| i < n), "{} {:?}", s, w);
                }
                prop_assert!(plan.coverage(step).iter().all(|&c| c >= 1));
            }
        }
    }

    #[test]
    fn ring_shift_costs_exactly_the_tiling(n in 1usize..=500, f in 1usize..=32, alpha in 0usize..=31) {
        let plan = strategy(&format!("shift:alpha={alpha}")).plan(n, f, 4).unwrap();
        for step in 0..4 {
            prop_assert_eq!(plan.windows_at(step).len(), n.div_ceil(f));
        }
    }
}

/// `[frames, 2, 3]` latents at σ_0 from a fixed seed.
fn start(frames: usize, sigma: f32) -> Tensor {
    crate::rng::FrameNoise::new(3)
        .frames(0, frames, &Shape::new([2, 3]), Device::Cpu)
        .unwrap()
        .mul_scalar(sigma)
        .unwrap()
}

#[test]
fn every_strategy_returns_exactly_the_requested_frames() {
    let sigmas = karras_sigmas(6, 0.002, 80.0);
    for n in [1, 7, 25, 61] {
        for s in all_strategies(7, 4) {
            for sampler in ["euler", "dpmpp-2m"] {
                let mut model = SyntheticDenoiser::default();
                let mut sampler = builtin_sampler(sampler).unwrap();
                let out = s
                    .run(
                        start(n, sigmas[0]),
                        25,
                        &sigmas,
                        sampler.as_mut(),
                        &mut model,
                        1,
                    )
                    .unwrap();
                assert_eq!(out.dims(), &[n, 2, 3], "{s}");
                assert!(out.to_vec().unwrap().iter().all(|v| v.is_finite()), "{s}");
            }
        }
    }
}

#[test]
fn sonic_compat_equals_fuse_then_step_for_euler() {
    let sigmas = karras_sigmas(8, 0.002, 80.0);
    for spec in ["shift:alpha=7", "overlap:o=8", "tiles"] {
        let run = |fusion: &str| {
            let s = strategy(&format!("{spec},fusion={fusion}").replace("tiles,", "tiles:"));
            let mut model = SyntheticDenoiser::default();
            s.run(start(61, sigmas[0]), 25, &sigmas, &mut Euler, &mut model, 1)
                .unwrap()
                .to_vec()
                .unwrap()
        };
        let (a, b) = (run("sonic-compat"), run("fuse-then-step"));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{spec}: {worst}");
    }
}

#[test]
fn sonic_compat_refuses_multistep_samplers() {
    let sigmas = karras_sigmas(4, 0.002, 80.0);
    let s = strategy("shift:fusion=sonic-compat");
    let mut sampler = builtin_sampler("dpmpp-2m").unwrap();
    let err = s
        .run(
            start(30, 80.0),
            25,
            &sigmas,
            sampler.as_mut(),
            &mut SyntheticDenoiser::default(),
            1,
        )
        .unwrap_err();
    assert!(err.to_string().contains("dpmpp-2m"), "{err}");
}

#[test]
fn ablation_counts_match_the_cost_model_and_shift_beats_tiles() {
    let sigmas = karras_sigmas(25, 0.002, 80.0);
    let specs = ["tiles", "shift:alpha=7", "overlap:o=8"];
    let schedulers: Vec<Box<dyn LongVideoScheduler>> =
        specs.iter().map(|s| scheduler(s).unwrap()).collect();
    let mut model = SyntheticDenoiser::default();
    let rows = ablate(
        &schedulers,
        &mut model,
        "euler",
        &sigmas,
        150,
        &Shape::new([4, 8]),
        25,
        7,
    )
    .unwrap();
    for row in &rows {
        assert_eq!(
            row.denoiser_calls, row.predicted.denoiser_calls,
            "{}",
            row.schedule
        );
        assert_eq!(
            row.frame_evaluations, row.predicted.frame_evaluations,
            "{}",
            row.schedule
        );
    }
    let (tiles, shift, overlap) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(tiles.frame_evaluations, shift.frame_evaluations);
    assert!(overlap.frame_evaluations > shift.frame_evaluations);
    let (t, s) = (tiles.seam_ratio.unwrap(), shift.seam_ratio.unwrap());
    assert!(t > 1.5 && s < 0.5 * t, "tiles {t}, shift {s}");
    assert!(shift.metrics.motion > 0.0);
}

#[test]
fn metrics_find_a_known_seam_and_flag_frozen_video() {
    // A ramp with one jump between frames 9 and 10.
    let data: Vec<f32> = (0..20)
        .flat_map(|t| vec![t as f32 * 0.1 + if t >= 10 { 1.0 } else { 0.0 }; 4])
        .collect();
    let x = Tensor::from_vec(data, [20, 4], Device::Cpu).unwrap();
    let m = smoothness(&x, &[10], None).unwrap();
    assert!((m.seam_ratio.unwrap() - 11.0).abs() < 1e-5, "{m:?}");
    assert!(m.second_difference > 0.0);
    let frozen = Tensor::ones([5, 3], Device::Cpu).unwrap();
    let f = smoothness(&frozen, &[2], Some(255.0)).unwrap();
    assert_eq!((f.flicker, f.motion), (1.0, 0.0));
    assert!(smoothness(&Tensor::ones([1, 3], Device::Cpu).unwrap(), &[], None).is_err());
}
