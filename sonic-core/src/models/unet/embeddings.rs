//! Sinusoidal embeddings of continuous values (timesteps, frame positions, the added time ids)
//! and the two-layer MLP that lifts them.

use crate::nn::Linear;
use crate::weights::VarBuilder;
use crate::{Device, Result, Tensor};

const MAX_PERIOD: f64 = 10_000.0;

/// diffusers' `Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)`: for each value
/// v, `[cos(v·f_0) … cos(v·f_{h-1}), sin(v·f_0) … sin(v·f_{h-1})]` with h = dim/2 and
/// f_k = exp(−ln(10000)·k/h), zero-padded to an odd `dim`. Returns `[values.len(), dim]`.
///
/// The frequencies and products are rounded to f32 exactly where PyTorch rounds them, so the
/// large arguments of the added time ids (motion buckets up to ~255) keep their phase.
pub fn sinusoidal_embedding(values: &[f32], dim: usize, device: Device) -> Result<Tensor> {
    let half = dim / 2;
    let log_period = -(MAX_PERIOD.ln() as f32);
    let freqs: Vec<f32> = (0..half)
        .map(|k| (log_period * k as f32 / half as f32).exp())
        .collect();
    let mut data = Vec::with_capacity(values.len() * dim);
    for &v in values {
        data.extend(freqs.iter().map(|&f| ((v * f) as f64).cos() as f32));
        data.extend(freqs.iter().map(|&f| ((v * f) as f64).sin() as f32));
        if dim % 2 == 1 {
            data.push(0.0);
        }
    }
    Tensor::from_vec(data, [values.len(), dim], device)
}

/// diffusers' `TimestepEmbedding`: `linear_2(silu(linear_1(x)))`.
#[derive(Clone, Debug)]
pub struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    pub fn new(vb: &VarBuilder, in_dim: usize, hidden: usize, out_dim: usize) -> Result<Self> {
        Ok(TimestepEmbedding {
            linear_1: Linear::new(&vb.pp("linear_1"), in_dim, hidden)?,
            linear_2: Linear::new(&vb.pp("linear_2"), hidden, out_dim)?,
        })
    }

    /// `x` is cast to the weights' dtype: the sinusoidal embeddings are built in f32 on
    /// the host, whatever the model's precision.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(self.linear_1.weight.dtype())?;
        self.linear_2.forward(&self.linear_1.forward(&x)?.silu()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_flipped_diffusers_layout() {
        let e = sinusoidal_embedding(&[0.0, 2.0], 5, Device::Cpu)
            .unwrap()
            .to_vec()
            .unwrap();
        // value 0: cos = 1, sin = 0, then the zero pad of an odd dim.
        assert_eq!(&e[..5], &[1.0, 1.0, 0.0, 0.0, 0.0]);
        // value 2, half = 2: frequencies 1 and 10000^(-1/2) = 0.01.
        let want = [2f32.cos(), 0.02f32.cos(), 2f32.sin(), 0.02f32.sin(), 0.0];
        for (a, b) in e[5..].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{e:?}");
        }
    }
}
