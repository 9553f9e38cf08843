//! Layers with PyTorch's parameter names, built from a [`VarBuilder`] with shape checks.
//! Models compose these; they hold tensors and know nothing of devices or backends.

use crate::backend::ConvParams;
use crate::weights::VarBuilder;
use crate::{Error, Result, Tensor};

/// `torch.nn.Linear`: `weight [out, in]`, optional `bias [out]`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(vb: &VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Linear {
            weight: vb.get([out_dim, in_dim], "weight")?,
            bias: Some(vb.get([out_dim], "bias")?),
        })
    }

    pub fn no_bias(vb: &VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Linear {
            weight: vb.get([out_dim, in_dim], "weight")?,
            bias: None,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// `torch.nn.LayerNorm` over the last dimension.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

impl LayerNorm {
    pub fn new(vb: &VarBuilder, dim: usize, eps: f32) -> Result<Self> {
        Ok(LayerNorm {
            weight: vb.get([dim], "weight")?,
            bias: vb.get([dim], "bias")?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(Some(&self.weight), Some(&self.bias), self.eps)
    }
}

/// `torch.nn.GroupNorm` with affine parameters.
#[derive(Clone, Debug)]
pub struct GroupNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub groups: usize,
    pub eps: f32,
}

impl GroupNorm {
    pub fn new(vb: &VarBuilder, groups: usize, channels: usize, eps: f32) -> Result<Self> {
        Ok(GroupNorm {
            weight: vb.get([channels], "weight")?,
            bias: vb.get([channels], "bias")?,
            groups,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.group_norm(self.groups, Some(&self.weight), Some(&self.bias), self.eps)
    }

    /// GroupNorm followed by SiLU, fused.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        x.group_norm_silu(self.groups, Some(&self.weight), Some(&self.bias), self.eps)
    }

    /// SiLU(GroupNorm(x + residual)) with `residual` broadcast to `x`; `None` is
    /// [`GroupNorm::forward_silu`]. One seam, so a backend can fuse the add.
    pub fn forward_add_silu(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        match residual {
            Some(r) => x.group_norm_residual(
                r,
                self.groups,
                Some(&self.weight),
                Some(&self.bias),
                self.eps,
                true,
            ),
            None => self.forward_silu(x),
        }
    }
}

/// `torch.nn.Conv1d/2d/3d` (groups 1): `weight [out, in, k…]`.
#[derive(Clone, Debug)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub params: ConvParams,
}

impl Conv {
    /// A convolution with kernel `kernel` (its length is the spatial rank), the same stride
    /// on every dim and per-dim padding.
    pub fn new(
        vb: &VarBuilder,
        in_ch: usize,
        out_ch: usize,
        kernel: &[usize],
        stride: usize,
        padding: &[usize],
        bias: bool,
    ) -> Result<Self> {
        if padding.len() != kernel.len() {
            return Err(Error::invalid(
                "conv",
                format!("padding {padding:?} does not match kernel {kernel:?}"),
            ));
        }
        let mut shape = vec![out_ch, in_ch];
        shape.extend_from_slice(kernel);
        let weight = vb.get(shape, "weight")?;
        let bias = if bias {
            Some(vb.get([out_ch], "bias")?)
        } else {
            None
        };
        let params = ConvParams {
            stride: vec![stride; kernel.len()],
            padding: padding.to_vec(),
            dilation: vec![1; kernel.len()],
        };
        Ok(Conv {
            weight,
            bias,
            params,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv(&self.weight, self.bias.as_ref(), &self.params)
    }
}

/// `torch.nn.ConvTranspose2d` (groups 1, dilation 1, no output padding):
/// `weight [in, out, kh, kw]`, `bias [out]`.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
}

impl ConvTranspose2d {
    pub fn new(
        vb: &VarBuilder,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        Ok(ConvTranspose2d {
            weight: vb.get([in_ch, out_ch, kernel, kernel], "weight")?,
            bias: Some(vb.get([out_ch], "bias")?),
            stride,
            padding,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv_transpose2d(&self.weight, self.bias.as_ref(), self.stride, self.padding)
    }
}

/// `torch.nn.PReLU(num_parameters)`: `weight [num_parameters]`.
#[derive(Clone, Debug)]
pub struct PRelu {
    pub weight: Tensor,
}

impl PRelu {
    pub fn new(vb: &VarBuilder, num_parameters: usize) -> Result<Self> {
        Ok(PRelu {
            weight: vb.get([num_parameters], "weight")?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.prelu(&self.weight)
    }
}

/// Multi-head self-attention with transformers' names `q_proj`, `k_proj`, `v_proj` and
/// `out_proj` over token-major `[b, l, dim]`, scaled by `head_dim^-0.5`. Whisper scales the
/// projected queries instead of the scores, which is the same product.
#[derive(Clone, Debug)]
pub struct SelfAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub heads: usize,
}

impl SelfAttention {
    /// Every projection with a bias (CLIP).
    pub fn new(vb: &VarBuilder, dim: usize, heads: usize) -> Result<Self> {
        Self::build(vb, dim, heads, true)
    }

    /// `k_proj` without a bias (Whisper).
    pub fn without_key_bias(vb: &VarBuilder, dim: usize, heads: usize) -> Result<Self> {
        Self::build(vb, dim, heads, false)
    }

    fn build(vb: &VarBuilder, dim: usize, heads: usize, key_bias: bool) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(Error::invalid(
                "self_attention",
                format!("{heads} heads do not divide width {dim}"),
            ));
        }
        let k_proj = if key_bias {
            Linear::new(&vb.pp("k_proj"), dim, dim)?
        } else {
            Linear::no_bias(&vb.pp("k_proj"), dim, dim)?
        };
        Ok(SelfAttention {
            q_proj: Linear::new(&vb.pp("q_proj"), dim, dim)?,
            k_proj,
            v_proj: Linear::new(&vb.pp("v_proj"), dim, dim)?,
            out_proj: Linear::new(&vb.pp("out_proj"), dim, dim)?,
            heads,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let head_dim = self.q_proj.weight.dims()[0] / self.heads;
        let attended = Tensor::attention(
            &self.q_proj.forward(x)?,
            &self.k_proj.forward(x)?,
            &self.v_proj.forward(x)?,
            self.heads,
            (head_dim as f32).powf(-0.5),
        )?;
        self.out_proj.forward(&attended)
    }
}

/// Activations named as in transformers and diffusers configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Gelu,
    GeluTanh,
    QuickGelu,
    Silu,
    Relu,
}

impl Activation {
    pub fn from_config(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "quick_gelu" => Activation::QuickGelu,
            "silu" | "swish" => Activation::Silu,
            "relu" => Activation::Relu,
            other => {
                return Err(Error::invalid(
                    "activation",
                    format!("unsupported activation `{other}`"),
                ))
            }
        })
    }

    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Gelu => x.gelu(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::QuickGelu => x.quick_gelu(),
            Activation::Silu => x.silu(),
            Activation::Relu => x.relu(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::weights::WeightStore;
    use crate::{DType, Device};

    fn store(tensors: &[(&str, Vec<usize>)]) -> (tempfile::TempDir, VarBuilder) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
            .iter()
            .map(|(k, shape)| {
                let n: usize = shape.iter().product();
                let bytes = (0..n)
                    .flat_map(|i| (i as f32 * 0.1 - 0.3).to_le_bytes())
                    .collect();
                (k.to_string(), bytes, shape.clone())
            })
            .collect();
        let views: HashMap<String, safetensors::tensor::TensorView> = data
            .iter()
            .map(|(k, b, s)| {
                (
                    k.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                        .unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, &path).unwrap();
        let vb = VarBuilder::new(
            Arc::new(WeightStore::open(&[&path]).unwrap()),
            DType::F32,
            Device::Cpu,
        );
        (dir, vb)
    }

    #[test]
    fn linear_applies_weight_and_bias() {
        let (_d, vb) = store(&[("fc.weight", vec![2, 3]), ("fc.bias", vec![2])]);
        let fc = Linear::new(&vb.pp("fc"), 3, 2).unwrap();
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], [1, 3], Device::Cpu).unwrap();
        let y = fc.forward(&x).unwrap().to_vec().unwrap();
        // weight rows [-0.3,-0.2,-0.1] and [0,0.1,0.2], bias [-0.3,-0.2].
        assert!(
            (y[0] - (-0.3 - 0.4 - 0.3 - 0.3)).abs() < 1e-6
                && (y[1] - (0.0 + 0.2 + 0.6 - 0.2)).abs() < 1e-6,
            "{y:?}"
        );
        assert!(Linear::new(&vb.pp("fc"), 2, 3)
            .unwrap_err()
            .to_string()
            .contains("fc.weight"));
    }

    #[test]
    fn conv_checks_kernel_shape_and_padding() {
        let (_d, vb) = store(&[("c.weight", vec![4, 2, 3, 3]), ("c.bias", vec![4])]);
        let conv = Conv::new(&vb.pp("c"), 2, 4, &[3, 3], 1, &[1, 1], true).unwrap();
        let y = conv
            .forward(&Tensor::ones([1, 2, 5, 5], Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(y.dims(), &[1, 4, 5, 5]);
        assert!(Conv::new(&vb.pp("c"), 2, 4, &[3, 3], 1, &[1], true).is_err());
        assert!(Conv::new(&vb.pp("c"), 2, 4, &[1, 1], 1, &[0, 0], true).is_err());
    }

    #[test]
    fn self_attention_reads_transformers_names_and_optional_key_bias() {
        let mut names = vec![("attn.k_proj.weight".to_string(), vec![4, 4])];
        for proj in ["q_proj", "v_proj", "out_proj"] {
            names.push((format!("attn.{proj}.weight"), vec![4, 4]));
            names.push((format!("attn.{proj}.bias"), vec![4]));
        }
        let tensors: Vec<(&str, Vec<usize>)> =
            names.iter().map(|(k, s)| (k.as_str(), s.clone())).collect();
        let (_d, vb) = store(&tensors);
        let err = SelfAttention::new(&vb.pp("attn"), 4, 2).unwrap_err();
        assert!(err.to_string().contains("attn.k_proj.bias"), "{err}");
        let attn = SelfAttention::without_key_bias(&vb.pp("attn"), 4, 2).unwrap();
        let x = Tensor::ones([1, 3, 4], Device::Cpu).unwrap();
        assert_eq!(attn.forward(&x).unwrap().dims(), &[1, 3, 4]);
        assert!(SelfAttention::without_key_bias(&vb.pp("attn"), 4, 3).is_err());
    }

    #[test]
    fn activations_parse_config_names() {
        assert_eq!(
            Activation::from_config("quick_gelu").unwrap(),
            Activation::QuickGelu
        );
        assert_eq!(Activation::from_config("gelu").unwrap(), Activation::Gelu);
        assert!(Activation::from_config("mish")
            .unwrap_err()
            .to_string()
            .contains("mish"));
    }
}
