use super::*;
use crate::rng::FrameNoise;
use crate::{Device, Tensor};

/// Data distributed N(MU, S²) per element: the exact denoiser is
/// `MU + S²/(S²+σ²)·(x − MU)`, and the probability-flow ODE maps a start point
/// exactly to `MU + (x_T − MU)·S/√(S²+σ_T²)`.
const MU: f32 = 0.7;
const S: f32 = 0.5;

fn gaussian_denoiser(x: &Tensor, sigma: f32) -> crate::Result<Tensor> {
    let k = S * S / (S * S + sigma * sigma);
    x.add_scalar(-MU)?.mul_scalar(k)?.add_scalar(MU)
}

fn start(frames: usize, len: usize, sigma_max: f32, seed: u64) -> Tensor {
    let noise = FrameNoise::new(seed)
        .frames(0, frames, &[len].into(), Device::Cpu)
        .unwrap();
    noise
        .mul_scalar((S * S + sigma_max * sigma_max).sqrt())
        .unwrap()
        .add_scalar(MU)
        .unwrap()
}

fn run(sampler: &mut dyn Sampler, x: &Tensor, sigmas: &[f32], seed: u64) -> Tensor {
    sampler.reset();
    let mut x = x.clone();
    let mut model = gaussian_denoiser;
    for i in 0..sigmas.len() - 1 {
        x = sampler
            .step(i, sigmas, &x, &mut model, &StepNoise::new(seed, i))
            .unwrap();
    }
    x
}

fn max_error_to_exact_flow(sampler: &mut dyn Sampler, steps: usize) -> f64 {
    let sigmas = karras_sigmas(steps, 0.002, 80.0);
    let x = start(4, 64, 80.0, 3);
    let out = run(sampler, &x, &sigmas, 0).to_vec().unwrap();
    let factor = S / (S * S + 80.0f32 * 80.0).sqrt();
    x.to_vec()
        .unwrap()
        .iter()
        .zip(out)
        .map(|(&x0, y)| ((MU + (x0 - MU) * factor) as f64 - y as f64).abs())
        .fold(0.0, f64::max)
}

fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    (
        mean,
        v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n,
    )
}

#[test]
fn karras_sigmas_match_the_svd_table() {
    let s = karras_sigmas(25, 0.002, 700.0);
    assert_eq!(s.len(), 26);
    let expected = [
        700.0, 545.73, 421.57, 322.45, 244.02, 182.55, 134.85, 98.267, 70.541, 49.810,
    ];
    for (got, want) in s.iter().zip(expected) {
        assert!((got - want).abs() / want < 1e-4, "{got} vs {want}");
    }
    assert!((s[24] - 0.002).abs() < 1e-7 && s[25] == 0.0);
    assert!((sigma_to_timestep(s[0]) - 1.63777).abs() < 1e-5);
    assert!((sigma_to_timestep(s[24]) + 1.55365).abs() < 1e-5);
}

#[test]
fn every_sampler_reaches_the_data_distribution() {
    // Enough steps that the first-order samplers' variance shrinkage (1.2% for ancestral
    // Euler at 1000 steps, computed in closed form for this Gaussian) stays well inside
    // the tolerance, which is four standard errors of the variance estimate.
    let sigmas = karras_sigmas(1000, 0.002, 80.0);
    for name in BUILTIN_SAMPLERS {
        let mut sampler = builtin_sampler(name).unwrap();
        let x = start(64, 256, 80.0, 11);
        let out = run(sampler.as_mut(), &x, &sigmas, 5).to_vec().unwrap();
        let (mean, var) = moments(&out);
        assert!((mean - MU as f64).abs() < 0.02, "{name}: mean {mean}");
        assert!(
            (var / (S * S) as f64 - 1.0).abs() < 0.045,
            "{name}: variance {var}"
        );
    }
}

#[test]
fn deterministic_samplers_converge_at_their_order() {
    for (name, order) in [("euler", 1.0), ("heun", 2.0), ("dpmpp-2m", 2.0)] {
        let mut sampler = builtin_sampler(name).unwrap();
        let coarse = max_error_to_exact_flow(sampler.as_mut(), 20);
        let fine = max_error_to_exact_flow(sampler.as_mut(), 80);
        let observed = (coarse / fine).log(4.0);
        assert!(fine < coarse, "{name}: {coarse} -> {fine}");
        assert!(
            observed > order - 0.35,
            "{name}: observed order {observed:.2}, expected {order}"
        );
    }
}

#[test]
fn ancestral_noise_is_deterministic_per_seed() {
    let sigmas = karras_sigmas(10, 0.002, 80.0);
    let x = start(3, 16, 80.0, 1);
    let mut a = EulerAncestral::default();
    let first = run(&mut a, &x, &sigmas, 9).to_vec().unwrap();
    assert_eq!(first, run(&mut a, &x, &sigmas, 9).to_vec().unwrap());
    assert_ne!(first, run(&mut a, &x, &sigmas, 10).to_vec().unwrap());
}

#[test]
fn heun_counts_its_model_calls() {
    let sigmas = karras_sigmas(5, 0.002, 80.0);
    let calls: Vec<usize> = (0..5).map(|i| Heun.model_calls(i, &sigmas)).collect();
    assert_eq!(calls, vec![2, 2, 2, 2, 1]);
    let mut counted = 0;
    let mut model = |x: &Tensor, s: f32| {
        counted += 1;
        gaussian_denoiser(x, s)
    };
    let x = start(1, 4, 80.0, 0);
    let mut h = Heun;
    for i in 0..5 {
        h.step(i, &sigmas, &x, &mut model, &StepNoise::new(0, i))
            .unwrap();
    }
    assert_eq!(counted, 9);
}

#[test]
fn unknown_sampler_lists_the_built_ins() {
    let err = builtin_sampler("ddim").err().unwrap().to_string();
    assert!(err.contains("ddim") && err.contains("dpmpp-2m"), "{err}");
}

#[test]
fn guidance_combines_three_branches_and_ramps() {
    let g = MultiCondGuidance {
        image: GuidanceSchedule { min: 1.0, max: 3.0 },
        audio: GuidanceSchedule::constant(7.5),
    };
    assert_eq!(g.image.at(0, 5), 1.0);
    assert_eq!(g.image.at(2, 5), 2.0);
    assert_eq!(g.image.at(4, 5), 3.0);
    let v = Tensor::from_vec(vec![1.0, 2.0, 4.0, 3.0, 7.0, 5.0], [3, 2], Device::Cpu).unwrap();
    let out = g.combine(&v, 2, 5).unwrap().to_vec().unwrap();
    // u + 2·(img − u) + 7.5·(full − img) per element.
    assert_eq!(
        out,
        vec![1.0 + 2.0 * 3.0 + 7.5 * 3.0, 2.0 + 2.0 * 1.0 + 7.5 * 2.0]
    );
    assert!(g.combine(&v.reshape([2, 3]).unwrap(), 0, 5).is_err());
}

#[test]
fn v_prediction_converts_to_denoised() {
    // With x = x0 + σ·ε, SVD's v target is (ε − σ·x0)/√(σ²+1); the conversion must give x0 back.
    let (x0, eps, sigma) = (0.3f32, -1.2f32, 2.5f32);
    let v = (eps - sigma * x0) / (sigma * sigma + 1.0).sqrt();
    let xt = Tensor::from_vec(vec![x0 + sigma * eps], [1], Device::Cpu).unwrap();
    let vt = Tensor::from_vec(vec![v], [1], Device::Cpu).unwrap();
    let got = v_to_denoised(&xt, &vt, sigma).unwrap().to_scalar().unwrap();
    assert!((got - x0).abs() < 1e-6, "{got}");
}
