//! diffusers' `Attention` as the UNet's transformer blocks use it (no qkv bias, `to_out.0`
//! with bias), Sonic's audio adapter on cross-attention, and the GEGLU `FeedForward`.

use crate::nn::Linear;
use crate::weights::VarBuilder;
use crate::{Error, Result, Tensor};

/// Sonic's second key/value projection of an `attn2`, applied to the audio tokens
/// (`attn2.processor.to_k_ip.0` / `to_v_ip.0`, no bias).
#[derive(Clone, Debug)]
struct AudioAdapter {
    to_k_ip: Linear,
    to_v_ip: Linear,
}

/// What a cross-attention attends to. Each context tensor holds `m` entries; the `n` query
/// rows come in `m` groups of `n / m` consecutive rows, group `i` attending to entry `i`
/// (the temporal layers share one context among all spatial positions of a video).
#[derive(Clone, Copy, Debug)]
pub struct CrossContext<'a> {
    /// `[m, tokens, cross_attention_dim]`.
    pub image: &'a Tensor,
    pub audio: Option<AudioTerm<'a>>,
}

/// The audio half of Sonic's cross-attention: `scale · mask ⊙ attention(q, audio tokens)`.
#[derive(Clone, Copy, Debug)]
pub struct AudioTerm<'a> {
    /// `[m, tokens, cross_attention_dim]`.
    pub tokens: &'a Tensor,
    /// `[1, queries, 1]`, broadcast over rows and channels; `None` on temporal layers.
    pub mask: Option<&'a Tensor>,
    pub scale: f32,
}

#[derive(Clone, Debug)]
pub struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    audio: Option<AudioAdapter>,
    heads: usize,
    scale: f32,
}

impl Attention {
    /// `cross_dim`: the context width of a cross-attention, `None` for self-attention.
    /// `audio_adapter`: whether the checkpoint carries Sonic's `to_k_ip`/`to_v_ip` here.
    pub fn new(
        vb: &VarBuilder,
        query_dim: usize,
        cross_dim: Option<usize>,
        heads: usize,
        head_dim: usize,
        audio_adapter: bool,
    ) -> Result<Self> {
        let inner = heads * head_dim;
        let kv_in = cross_dim.unwrap_or(query_dim);
        let audio = match (audio_adapter, cross_dim) {
            (false, _) => None,
            (true, Some(cross)) => {
                let p = vb.pp("processor");
                Some(AudioAdapter {
                    to_k_ip: Linear::no_bias(&p.pp("to_k_ip").pp(0), cross, inner)?,
                    to_v_ip: Linear::no_bias(&p.pp("to_v_ip").pp(0), cross, inner)?,
                })
            }
            (true, None) => {
                return Err(Error::invalid(
                    "attention",
                    format!("{}: an audio adapter needs a cross-attention", vb.key("")),
                ))
            }
        };
        Ok(Attention {
            to_q: Linear::no_bias(&vb.pp("to_q"), query_dim, inner)?,
            to_k: Linear::no_bias(&vb.pp("to_k"), kv_in, inner)?,
            to_v: Linear::no_bias(&vb.pp("to_v"), kv_in, inner)?,
            to_out: Linear::new(&vb.pp("to_out").pp(0), inner, query_dim)?,
            audio,
            heads,
            scale: 1.0 / (head_dim as f32).sqrt(),
        })
    }

    /// `x [n, l, c]` attending to itself.
    pub fn self_attention(&self, x: &Tensor) -> Result<Tensor> {
        let (q, k, v) = self.qkv(x)?;
        self.to_out
            .forward(&Tensor::attention(&q, &k, &v, self.heads, self.scale)?)
    }

    /// `x [b·frames, hw, c]` attending, per pixel, to the frames of its video. Kept in the
    /// spatial layout so a backend's temporal kernel reads the projections in place.
    pub fn temporal_self_attention(&self, x: &Tensor, frames: usize) -> Result<Tensor> {
        let (q, k, v) = self.qkv(x)?;
        self.to_out.forward(&Tensor::temporal_attention(
            &q, &k, &v, frames, self.heads, self.scale,
        )?)
    }

    fn qkv(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        Ok((
            self.to_q.forward(x)?,
            self.to_k.forward(x)?,
            self.to_v.forward(x)?,
        ))
    }

    /// `x [n, l, c]` attending to `ctx`. A single image token needs neither the queries nor
    /// a softmax (its weight is exactly 1), so without an audio term no query is computed.
    pub fn cross_attention(&self, x: &Tensor, ctx: &CrossContext) -> Result<Tensor> {
        let k = self.to_k.forward(ctx.image)?;
        let v = self.to_v.forward(ctx.image)?;
        let q = if k.dims()[1] > 1 || ctx.audio.is_some() {
            Some(self.to_q.forward(x)?)
        } else {
            None
        };
        let mut out = match &q {
            Some(q) => self.grouped(q, &k, &v)?,
            None => broadcast_single_token(&v, x.dims())?,
        };
        match (&self.audio, ctx.audio) {
            (Some(adapter), Some(audio)) => {
                let q = match q {
                    Some(q) => q,
                    None => self.to_q.forward(x)?,
                };
                let k = adapter.to_k_ip.forward(audio.tokens)?;
                let v = adapter.to_v_ip.forward(audio.tokens)?;
                let mut term = self.grouped(&q, &k, &v)?;
                if let Some(mask) = audio.mask {
                    term = term.mul(mask)?;
                }
                out = out.add(&term.mul_scalar(audio.scale)?)?;
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::invalid(
                    "attention",
                    "this cross-attention has an audio adapter but no audio tokens were given",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "attention",
                    "audio tokens were given to a cross-attention without an audio adapter",
                ))
            }
        }
        self.to_out.forward(&out)
    }

    /// Attention of `q [n, lq, d]` to `k, v [m, lk, d]` with query rows grouped as in
    /// [`CrossContext`]: folding each group into the query axis shares its keys unrepeated.
    fn grouped(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (n, lq, d) = (q.dims()[0], q.dims()[1], q.dims()[2]);
        let m = k.dims()[0];
        if m == 0 || n % m != 0 {
            return Err(Error::invalid(
                "attention",
                format!(
                    "{n} query rows cannot be grouped over a context of {m} entries ({})",
                    k.shape()
                ),
            ));
        }
        let folded = q.reshape([m, n / m * lq, d])?;
        Tensor::attention(&folded, k, v, self.heads, self.scale)?.reshape([n, lq, v.dims()[2]])
    }
}

/// The attention output for a context of one token: its value, for every query.
fn broadcast_single_token(v: &Tensor, query_dims: &[usize]) -> Result<Tensor> {
    let (n, lq) = (query_dims[0], query_dims[1]);
    let (m, c) = (v.dims()[0], v.dims()[2]);
    if m == 0 || n % m != 0 {
        return Err(Error::invalid(
            "attention",
            format!("{n} query rows cannot be grouped over a context of {m} entries"),
        ));
    }
    Tensor::zeros([m, n / m * lq, 1], v.device())?
        .to_dtype(v.dtype())?
        .add(v)?
        .reshape([n, lq, c])
}

/// diffusers' `FeedForward` with GEGLU: `net.2(geglu(net.0.proj(x)))`, inner width 4·dim.
#[derive(Clone, Debug)]
pub struct FeedForward {
    proj: Linear,
    out: Linear,
}

impl FeedForward {
    pub fn new(vb: &VarBuilder, dim: usize, dim_out: usize) -> Result<Self> {
        let inner = 4 * dim;
        Ok(FeedForward {
            proj: Linear::new(&vb.pp("net").pp(0).pp("proj"), dim, 2 * inner)?,
            out: Linear::new(&vb.pp("net").pp(2), inner, dim_out)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.out.forward(&self.proj.forward(x)?.geglu()?)
    }
}
