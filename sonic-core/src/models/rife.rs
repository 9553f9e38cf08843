//! RIFE frame interpolation as the reference runs it: the "HDv3" `IFNet` (three flow blocks,
//! no context net or refinement UNet) producing the midpoint of two frames.
//!
//! Each `IFBlock` sees both frames warped by the current flow, the current mask logit and the
//! flow, at 1/scale resolution, and predicts a flow and mask residual. Every level runs twice,
//! the second time with the frames swapped, and the two estimates are averaged, which makes
//! the midpoint symmetric in its inputs.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::backend::{GridPadding, ResizeMode};
use crate::nn::{Conv, ConvTranspose2d, PRelu};
use crate::weights::{LoadReport, VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Tensor};

/// Channels an `IFBlock` reads: both warped frames (3 + 3), the mask logit (1), and the flow
/// of both directions (4).
const BLOCK_INPUTS: usize = 3 + 3 + 1 + 4;

/// The shape of an `IFNet`. [`Default`] is the released checkpoint's.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RifeConfig {
    /// Width `c` of every block; the stride-2 stem and the upsampling heads use `c / 2`.
    pub channels: usize,
    /// Residual groups after the stem, each `convs_per_group` conv + PReLU pairs.
    pub residual_groups: usize,
    pub convs_per_group: usize,
    /// Downscale factor of each block, coarse to fine; one block per entry.
    pub scale_list: Vec<usize>,
    /// Frames are zero-padded on the right and bottom to a multiple of this, then cropped.
    pub pad_multiple: usize,
    /// Checkpoint prefixes that are present but not part of inference (the distillation
    /// teacher `block_tea`).
    #[serde(default = "default_unused")]
    pub unused_prefixes: Vec<String>,
}

fn default_unused() -> Vec<String> {
    vec!["block_tea.".to_string()]
}

impl Default for RifeConfig {
    fn default() -> Self {
        RifeConfig {
            channels: 90,
            residual_groups: 4,
            convs_per_group: 2,
            scale_list: vec![4, 2, 1],
            pad_multiple: 32,
            unused_prefixes: default_unused(),
        }
    }
}

impl RifeConfig {
    fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::invalid("rife config", msg.to_string()));
        if self.channels < 2 || self.residual_groups == 0 || self.convs_per_group == 0 {
            return bad("channels must be at least 2, groups and convs at least 1");
        }
        if self.scale_list.is_empty() || self.scale_list.contains(&0) {
            return bad("scale_list must be non-empty with positive factors");
        }
        // The stem halves twice and the heads double twice, so each level needs its input
        // divisible by 4 to come back to the same size.
        if self
            .scale_list
            .iter()
            .any(|s| self.pad_multiple == 0 || !self.pad_multiple.is_multiple_of(4 * s))
        {
            return bad("pad_multiple must be a multiple of 4·scale for every scale");
        }
        Ok(())
    }
}

/// Conv 3×3 followed by PReLU: the reference's `conv()` helper, keys `<i>.0` and `<i>.1`.
#[derive(Clone, Debug)]
struct ConvAct {
    conv: Conv,
    act: PRelu,
}

impl ConvAct {
    fn new(vb: &VarBuilder, in_ch: usize, out_ch: usize, stride: usize) -> Result<Self> {
        Ok(ConvAct {
            conv: Conv::new(&vb.pp(0), in_ch, out_ch, &[3, 3], stride, &[1, 1], true)?,
            act: PRelu::new(&vb.pp(1), out_ch)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.act.forward(&self.conv.forward(x)?)
    }
}

/// ConvT 4/2 → PReLU → ConvT 4/2: back from 1/4 to the block's working resolution.
#[derive(Clone, Debug)]
struct Head {
    up: ConvTranspose2d,
    act: PRelu,
    out: ConvTranspose2d,
}

impl Head {
    fn new(vb: &VarBuilder, c: usize, out_ch: usize) -> Result<Self> {
        Ok(Head {
            up: ConvTranspose2d::new(&vb.pp(0), c, c / 2, 4, 2, 1)?,
            act: PRelu::new(&vb.pp(1), c / 2)?,
            out: ConvTranspose2d::new(&vb.pp(2), c / 2, out_ch, 4, 2, 1)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.out.forward(&self.act.forward(&self.up.forward(x)?)?)
    }
}

/// One `IFBlock`: keys `conv0.{0,1}`, `convblock<g>.<k>`, `conv1` (flow head, 4 channels)
/// and `conv2` (mask head, 1 channel).
#[derive(Clone, Debug)]
struct IfBlock {
    stem: Vec<ConvAct>,
    groups: Vec<Vec<ConvAct>>,
    flow_head: Head,
    mask_head: Head,
}

impl IfBlock {
    fn new(vb: &VarBuilder, cfg: &RifeConfig) -> Result<Self> {
        let c = cfg.channels;
        let stem = vec![
            ConvAct::new(&vb.pp("conv0").pp(0), BLOCK_INPUTS, c / 2, 2)?,
            ConvAct::new(&vb.pp("conv0").pp(1), c / 2, c, 2)?,
        ];
        let groups = (0..cfg.residual_groups)
            .map(|g| {
                let vb = vb.pp(format!("convblock{g}"));
                (0..cfg.convs_per_group)
                    .map(|k| ConvAct::new(&vb.pp(k), c, c, 1))
                    .collect()
            })
            .collect::<Result<_>>()?;
        Ok(IfBlock {
            stem,
            groups,
            flow_head: Head::new(&vb.pp("conv1"), c, 4)?,
            mask_head: Head::new(&vb.pp("conv2"), c, 1)?,
        })
    }

    /// `x [n, 7, H, W]` and `flow [n, 4, H, W]` → flow and mask residuals at `H×W`.
    fn forward(&self, x: &Tensor, flow: &Tensor, scale: usize) -> Result<(Tensor, Tensor)> {
        let (h, w) = (x.dims()[2], x.dims()[3]);
        let down = |t: &Tensor| t.resize2d(h / scale, w / scale, ResizeMode::Bilinear, false);
        let up = |t: &Tensor| t.resize2d(h, w, ResizeMode::Bilinear, false);
        let (x, flow) = if scale == 1 {
            (x.clone(), flow.clone())
        } else {
            (down(x)?, down(flow)?.mul_scalar(1.0 / scale as f32)?)
        };
        let mut feat = Tensor::cat(&[&x, &flow], 1)?;
        for layer in &self.stem {
            feat = layer.forward(&feat)?;
        }
        for group in &self.groups {
            let mut y = feat.clone();
            for layer in group {
                y = layer.forward(&y)?;
            }
            feat = y.add(&feat)?;
        }
        let flow = self.flow_head.forward(&feat)?;
        let mask = self.mask_head.forward(&feat)?;
        if scale == 1 {
            return Ok((flow, mask));
        }
        Ok((up(&flow)?.mul_scalar(scale as f32)?, up(&mask)?))
    }
}

/// The flow, mask logit and blended frame of one `IFNet` pass.
#[derive(Clone, Debug)]
pub struct IfNetOutput {
    /// `[n, 4, H, W]`: pixels from the midpoint to frame 0 (channels 0–1) and to frame 1 (2–3).
    pub flow: Tensor,
    /// `[n, 1, H, W]`: logit of frame 0's blend weight.
    pub mask: Tensor,
    /// `[n, 3, H, W]`, clamped to [0, 1].
    pub frame: Tensor,
}

/// The "HDv3" `IFNet`: `block0`, `block1`, … one per scale.
#[derive(Clone, Debug)]
pub struct IfNet {
    pub config: RifeConfig,
    blocks: Vec<IfBlock>,
}

/// Flow halves swapped: the other direction's view of the same motion.
fn swap_flow(flow: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[&flow.narrow(1, 2, 2)?, &flow.narrow(1, 0, 2)?], 1)
}

/// `torch.linspace(-1, 1, n)` in f32, computed the way torch does (from both ends).
fn linspace(n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![-1.0];
    }
    let step = 2.0f32 / (n - 1) as f32;
    (0..n)
        .map(|i| {
            if i < n / 2 {
                -1.0 + step * i as f32
            } else {
                1.0 - step * (n - 1 - i) as f32
            }
        })
        .collect()
}

/// RIFE's backward warp: `img [n, c, H, W]` sampled at each pixel plus `flow [n, 2, H, W]`
/// (in pixels), bilinear, edge pixels repeated outside the frame.
pub fn warp(img: &Tensor, flow: &Tensor) -> Result<Tensor> {
    if img.rank() != 4 || flow.rank() != 4 || flow.dims()[1] != 2 {
        return Err(Error::invalid(
            "warp",
            format!(
                "image {} and flow {} are not [n, c, H, W] and [n, 2, H, W]",
                img.shape(),
                flow.shape()
            ),
        ));
    }
    let (n, h, w) = (flow.dims()[0], flow.dims()[2], flow.dims()[3]);
    if img.dims()[0] != n || img.dims()[2] != h || img.dims()[3] != w || h < 2 || w < 2 {
        return Err(Error::invalid(
            "warp",
            format!(
                "image {} and flow {} differ in size or are under 2×2",
                img.shape(),
                flow.shape()
            ),
        ));
    }
    let (xs, ys) = (linspace(w), linspace(h));
    let mut base = Vec::with_capacity(2 * h * w);
    base.extend((0..h).flat_map(|_| xs.iter().copied()));
    base.extend(ys.iter().flat_map(|&y| std::iter::repeat_n(y, w)));
    let base = Tensor::from_vec(base, [1, 2, h, w], img.device())?;
    let fx = flow.narrow(1, 0, 1)?.mul_scalar(2.0 / (w as f32 - 1.0))?;
    let fy = flow.narrow(1, 1, 1)?.mul_scalar(2.0 / (h as f32 - 1.0))?;
    let grid = Tensor::cat(&[&fx, &fy], 1)?
        .add(&base)?
        .permute(&[0, 2, 3, 1])?;
    img.grid_sample(&grid, GridPadding::Border, true)
}

impl IfNet {
    pub fn new(config: RifeConfig, vb: &VarBuilder) -> Result<Self> {
        config.validate()?;
        let blocks = (0..config.scale_list.len())
            .map(|i| IfBlock::new(&vb.pp(format!("block{i}")), &config))
            .collect::<Result<_>>()?;
        Ok(IfNet { config, blocks })
    }

    /// Both frames `[n, 3, H, W]` with `H` and `W` multiples of `pad_multiple`.
    pub fn forward(&self, img0: &Tensor, img1: &Tensor) -> Result<IfNetOutput> {
        let dims = img0.dims();
        if dims.len() != 4 || dims[1] != 3 || img1.dims() != dims {
            return Err(Error::invalid(
                "rife",
                format!(
                    "frames {} and {} are not both [n, 3, H, W]",
                    img0.shape(),
                    img1.shape()
                ),
            ));
        }
        let m = self.config.pad_multiple;
        if !dims[2].is_multiple_of(m) || !dims[3].is_multiple_of(m) {
            return Err(Error::invalid(
                "rife",
                format!(
                    "frame size {}x{} is not a multiple of {m}",
                    dims[3], dims[2]
                ),
            ));
        }
        let (n, h, w) = (dims[0], dims[2], dims[3]);
        let device = img0.device();
        let mut flow = Tensor::zeros([n, 4, h, w], device)?;
        let mut mask = Tensor::zeros([n, 1, h, w], device)?;
        let (mut warped0, mut warped1) = (img0.clone(), img1.clone());
        for (block, &scale) in self.blocks.iter().zip(&self.config.scale_list) {
            let fwd = Tensor::cat(&[&warped0, &warped1, &mask], 1)?;
            let (f0, m0) = block.forward(&fwd, &flow, scale)?;
            let bwd = Tensor::cat(&[&warped1, &warped0, &mask.neg()?], 1)?;
            let (f1, m1) = block.forward(&bwd, &swap_flow(&flow)?, scale)?;
            flow = flow.add(&f0.add(&swap_flow(&f1)?)?.mul_scalar(0.5)?)?;
            mask = mask.add(&m0.sub(&m1)?.mul_scalar(0.5)?)?;
            warped0 = warp(img0, &flow.narrow(1, 0, 2)?)?;
            warped1 = warp(img1, &flow.narrow(1, 2, 2)?)?;
        }
        let weight = mask.sigmoid()?;
        let inverse = weight.neg()?.add_scalar(1.0)?;
        let frame = warped0
            .mul(&weight)?
            .add(&warped1.mul(&inverse)?)?
            .clamp(0.0, 1.0)?;
        Ok(IfNetOutput { flow, mask, frame })
    }
}

/// Produces the frame halfway between two frames.
pub trait FrameInterpolator {
    /// `a` and `b` are `[1, 3, H, W]` in [0, 1]; the result has the same shape and range.
    fn interpolate(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;
}

/// Doubles the frame rate of a stream: for `F` frames pushed it emits `2F − 1`, each new
/// frame preceded by its midpoint with the previous one. Holds one frame between calls.
pub struct FrameDoubler<'a> {
    interpolator: &'a dyn FrameInterpolator,
    previous: Option<Tensor>,
}

impl<'a> FrameDoubler<'a> {
    pub fn new(interpolator: &'a dyn FrameInterpolator) -> Self {
        FrameDoubler {
            interpolator,
            previous: None,
        }
    }

    /// The frames to emit after `frame` arrives: `[frame]` for the first, then
    /// `[midpoint, frame]`.
    pub fn push(&mut self, frame: Tensor) -> Result<Vec<Tensor>> {
        let out = match &self.previous {
            None => vec![frame.clone()],
            Some(prev) => vec![self.interpolator.interpolate(prev, &frame)?, frame.clone()],
        };
        self.previous = Some(frame);
        Ok(out)
    }
}

/// Runs every frame of `frames` through a [`FrameDoubler`], handing each output frame to
/// `emit` as soon as it exists; returns how many were emitted.
pub fn interpolate_stream(
    interpolator: &dyn FrameInterpolator,
    frames: impl IntoIterator<Item = Result<Tensor>>,
    mut emit: impl FnMut(Tensor) -> Result<()>,
) -> Result<usize> {
    let mut doubler = FrameDoubler::new(interpolator);
    let mut count = 0;
    for frame in frames {
        for out in doubler.push(frame?)? {
            emit(out)?;
            count += 1;
        }
    }
    Ok(count)
}

/// RIFE: an [`IfNet`] that pads arbitrary frame sizes and crops the result back.
#[derive(Clone, Debug)]
pub struct Rife {
    net: IfNet,
    report: LoadReport,
}

impl Rife {
    /// Builds from weights under `vb` (keys `block0.…`); the load report lists the configured
    /// unused prefixes (the teacher block) as expected.
    pub fn new(config: RifeConfig, vb: &VarBuilder) -> Result<Self> {
        let net = IfNet::new(config, vb)?;
        let prefixes: Vec<String> = net
            .config
            .unused_prefixes
            .iter()
            .map(|p| vb.key(p))
            .collect();
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let report = vb.report().expect_unused(&prefixes);
        Ok(Rife { net, report })
    }

    /// Loads the released checkpoint: `flownet.pkl` as downloaded (a `torch.save` of a
    /// `DataParallel` state dict, keys prefixed `module.`) or a safetensors file with or
    /// without the prefix. Weights are f32, as the reference runs RIFE.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        Self::load_with(path, RifeConfig::default(), device)
    }

    pub fn load_with(path: &Path, config: RifeConfig, device: Device) -> Result<Self> {
        let store = Arc::new(WeightStore::open(&[path])?);
        let wrapped = store.keys().any(|k| k.starts_with("module."));
        let vb = VarBuilder::new(store, DType::F32, device);
        let vb = if wrapped { vb.pp("module") } else { vb };
        Self::new(config, &vb)
    }

    pub fn net(&self) -> &IfNet {
        &self.net
    }

    /// What the load read, with the teacher block under `expected_unused`.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The `IFNet` output for frames of any size: zero-padded right and bottom to
    /// `pad_multiple` (as the reference's video script does), run, and cropped back.
    pub fn run(&self, a: &Tensor, b: &Tensor) -> Result<IfNetOutput> {
        if a.rank() != 4 || a.dims() != b.dims() || a.dims()[2] == 0 || a.dims()[3] == 0 {
            return Err(Error::invalid(
                "rife",
                format!("frames {} and {} differ or are empty", a.shape(), b.shape()),
            ));
        }
        let (h, w) = (a.dims()[2], a.dims()[3]);
        let m = self.net.config.pad_multiple;
        let (ph, pw) = (h.div_ceil(m) * m, w.div_ceil(m) * m);
        let out = self.net.forward(&pad_to(a, ph, pw)?, &pad_to(b, ph, pw)?)?;
        let crop = |t: Tensor| t.narrow(2, 0, h)?.narrow(3, 0, w);
        Ok(IfNetOutput {
            flow: crop(out.flow)?,
            mask: crop(out.mask)?,
            frame: crop(out.frame)?,
        })
    }
}

/// Zeros appended on the right and bottom of `[n, c, h, w]` up to `[n, c, ph, pw]`.
fn pad_to(x: &Tensor, ph: usize, pw: usize) -> Result<Tensor> {
    let (n, c, h, w) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
    let device = x.device();
    let x = if pw > w {
        Tensor::cat(&[x, &Tensor::zeros([n, c, h, pw - w], device)?], 3)?
    } else {
        x.clone()
    };
    if ph > h {
        Tensor::cat(&[&x, &Tensor::zeros([n, c, ph - h, pw], device)?], 2)
    } else {
        Ok(x)
    }
}

impl FrameInterpolator for Rife {
    fn interpolate(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(self.run(a, b)?.frame)
    }
}

/// Fixture kind `model.rife-ifnet`: `config.json` plus `flownet.pkl` (the released layout)
/// or `weights.safetensors`, frames `img0`/`img1` → `flow`, `mask`, `frame`.
pub fn verify_fixture(
    fx: &crate::verify::Fixture,
    device: Device,
) -> Result<std::collections::BTreeMap<String, Tensor>> {
    let config_path = fx.dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let config: RifeConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: config_path,
        msg: e.to_string(),
    })?;
    let pkl = fx.dir.join("flownet.pkl");
    let weights = if pkl.is_file() {
        pkl
    } else {
        fx.dir.join("weights.safetensors")
    };
    let rife = Rife::load_with(&weights, config, device)?;
    if !rife.report().is_clean() || !rife.report().unused.is_empty() {
        return Err(Error::file(
            weights,
            format!("unexpected load report: {}", rife.report()),
        ));
    }
    let out = rife.run(&fx.tensor("img0", device)?, &fx.tensor("img1", device)?)?;
    Ok([
        ("flow".to_string(), out.flow),
        ("mask".to_string(), out.mask),
        ("frame".to_string(), out.frame),
    ]
    .into())
}

/// Fixture kind `op.warp`: `img` warped by `flow`.
pub fn verify_warp_fixture(
    fx: &crate::verify::Fixture,
    device: Device,
) -> Result<std::collections::BTreeMap<String, Tensor>> {
    let out = warp(&fx.tensor("img", device)?, &fx.tensor("flow", device)?)?;
    Ok([("warped".to_string(), out)].into())
}

#[cfg(test)]
mod tests;
