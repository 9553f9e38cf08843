//! The YOLOv5-face network (deepcam-cn/yolov5-face) built from its model description: the
//! `depth_multiple`/`width_multiple`/`anchors`/`backbone`/`head` of the upstream yaml, as
//! JSON. Layers are `model.<i>` as in the upstream state dict, so a state dict saved from the
//! released model loads unchanged: either with BatchNorm (`<conv>.bn.*`, folded here) or
//! already fused by upstream's `model.fuse()` (`<conv>.conv.bias`, no `bn`).

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use super::YOLO_ROW;
use crate::nn::{Activation, Conv};
use crate::weights::{LoadReport, VarBuilder};
use crate::{Error, Result, Tensor};

/// Input sides must be multiples of the coarsest head's stride.
pub const YOLO_STRIDE_MULTIPLE: usize = 32;

/// One `[from, number, module, args]` entry of the yaml.
pub type LayerSpec = (Value, usize, String, Vec<Value>);

/// The model description. [`Default`] is yolov5m-face (`yoloface_v5m.pt`).
#[derive(Clone, Debug, Deserialize)]
pub struct YoloConfig {
    pub nc: usize,
    pub depth_multiple: f64,
    pub width_multiple: f64,
    /// Anchor `w, h` pairs in input pixels, one list per detection level.
    pub anchors: Vec<Vec<f64>>,
    pub backbone: Vec<LayerSpec>,
    pub head: Vec<LayerSpec>,
    /// Upstream's `initialize_weights` sets every BatchNorm's eps to 1e-3.
    #[serde(default = "default_bn_eps")]
    pub bn_eps: f32,
    #[serde(default = "default_activation")]
    pub activation: String,
}

fn default_bn_eps() -> f32 {
    1e-3
}

fn default_activation() -> String {
    "silu".into()
}

/// yolov5-face's `models/yolov5m.yaml`.
const YOLOV5M_FACE: &str = r#"{
  "nc": 1, "depth_multiple": 0.67, "width_multiple": 0.75,
  "anchors": [[4, 5, 8, 10, 13, 16], [23, 29, 43, 55, 73, 105], [146, 217, 231, 300, 335, 433]],
  "backbone": [
    [-1, 1, "StemBlock", [64, 3, 2]],
    [-1, 3, "C3", [128]],
    [-1, 1, "Conv", [256, 3, 2]],
    [-1, 9, "C3", [256]],
    [-1, 1, "Conv", [512, 3, 2]],
    [-1, 9, "C3", [512]],
    [-1, 1, "Conv", [1024, 3, 2]],
    [-1, 1, "SPP", [1024, [3, 5, 7]]],
    [-1, 3, "C3", [1024, false]]
  ],
  "head": [
    [-1, 1, "Conv", [512, 1, 1]],
    [-1, 1, "nn.Upsample", [null, 2, "nearest"]],
    [[-1, 5], 1, "Concat", [1]],
    [-1, 3, "C3", [512, false]],
    [-1, 1, "Conv", [256, 1, 1]],
    [-1, 1, "nn.Upsample", [null, 2, "nearest"]],
    [[-1, 3], 1, "Concat", [1]],
    [-1, 3, "C3", [256, false]],
    [-1, 1, "Conv", [256, 3, 2]],
    [[-1, 13], 1, "Concat", [1]],
    [-1, 3, "C3", [512, false]],
    [-1, 1, "Conv", [512, 3, 2]],
    [[-1, 9], 1, "Concat", [1]],
    [-1, 3, "C3", [1024, false]],
    [[16, 19, 22], 1, "Detect", ["nc", "anchors"]]
  ]
}"#;

impl Default for YoloConfig {
    fn default() -> Self {
        serde_json::from_str(YOLOV5M_FACE).expect("the built-in yolov5m-face description parses")
    }
}

/// Upstream's `make_divisible(x, 8)`: channels scaled by the width multiple, rounded up to 8.
fn make_divisible(x: f64) -> usize {
    ((x / 8.0).ceil() as usize) * 8
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid("yolo config", msg.into())
}

fn arg_usize(args: &[Value], i: usize, default: Option<usize>, layer: usize) -> Result<usize> {
    match args.get(i) {
        Some(v) => v
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| bad(format!("layer {layer}: argument {i} ({v}) is not a count"))),
        None => default.ok_or_else(|| bad(format!("layer {layer}: argument {i} is missing"))),
    }
}

/// Upstream `Conv`: conv (no bias) → BatchNorm → activation, padding `k / 2`.
#[derive(Clone, Debug)]
struct ConvBn {
    conv: Conv,
    act: Activation,
}

impl ConvBn {
    fn new(
        vb: &VarBuilder,
        net: &NetCtx,
        c1: usize,
        c2: usize,
        k: usize,
        s: usize,
    ) -> Result<Self> {
        let cv = vb.pp("conv");
        let mut conv = Conv::new(&cv, c1, c2, &[k, k], s, &[k / 2, k / 2], false)?;
        if vb.pp("bn").contains_prefix() {
            let bn = vb.pp("bn");
            let gamma = bn.get([c2], "weight")?;
            let beta = bn.get([c2], "bias")?;
            let mean = bn.get([c2], "running_mean")?;
            let var = bn.get([c2], "running_var")?;
            let scale = gamma.div(&var.add_scalar(net.bn_eps)?.sqrt()?)?;
            conv.weight = conv.weight.mul(&scale.reshape([c2, 1, 1, 1])?)?;
            conv.bias = Some(beta.sub(&mean.mul(&scale)?)?);
        } else {
            conv.bias = Some(cv.get([c2], "bias")?);
        }
        Ok(ConvBn { conv, act: net.act })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.act.forward(&self.conv.forward(x)?)
    }
}

/// What every layer needs besides its own arguments.
struct NetCtx {
    bn_eps: f32,
    act: Activation,
}

#[derive(Clone, Debug)]
struct Bottleneck {
    cv1: ConvBn,
    cv2: ConvBn,
    add: bool,
}

impl Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.cv2.forward(&self.cv1.forward(x)?)?;
        if self.add {
            x.add(&y)
        } else {
            Ok(y)
        }
    }
}

/// CSP bottleneck with three convs: `cv3(cat(m(cv1(x)), cv2(x)))`.
#[derive(Clone, Debug)]
struct C3 {
    cv1: ConvBn,
    cv2: ConvBn,
    cv3: ConvBn,
    m: Vec<Bottleneck>,
}

impl C3 {
    fn new(
        vb: &VarBuilder,
        net: &NetCtx,
        c1: usize,
        c2: usize,
        n: usize,
        shortcut: bool,
    ) -> Result<Self> {
        let c = c2 / 2;
        let m = (0..n)
            .map(|i| {
                let vb = vb.pp("m").pp(i);
                Ok(Bottleneck {
                    cv1: ConvBn::new(&vb.pp("cv1"), net, c, c, 1, 1)?,
                    cv2: ConvBn::new(&vb.pp("cv2"), net, c, c, 3, 1)?,
                    add: shortcut,
                })
            })
            .collect::<Result<_>>()?;
        Ok(C3 {
            cv1: ConvBn::new(&vb.pp("cv1"), net, c1, c, 1, 1)?,
            cv2: ConvBn::new(&vb.pp("cv2"), net, c1, c, 1, 1)?,
            cv3: ConvBn::new(&vb.pp("cv3"), net, 2 * c, c2, 1, 1)?,
            m,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.cv1.forward(x)?;
        for b in &self.m {
            y = b.forward(&y)?;
        }
        self.cv3
            .forward(&Tensor::cat(&[&y, &self.cv2.forward(x)?], 1)?)
    }
}

/// yolov5-face's stem: a strided conv, then a conv branch and a 2×2 max-pool branch, merged.
#[derive(Clone, Debug)]
struct StemBlock {
    stem_1: ConvBn,
    stem_2a: ConvBn,
    stem_2b: ConvBn,
    stem_3: ConvBn,
}

impl StemBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s1 = self.stem_1.forward(x)?;
        let b = self.stem_2b.forward(&self.stem_2a.forward(&s1)?)?;
        // Upstream pools in ceil mode; inputs are multiples of 32, so the sides here are
        // even and floor mode gives the same windows.
        let p = s1.max_pool2d(2, 2, 0)?;
        self.stem_3.forward(&Tensor::cat(&[&b, &p], 1)?)
    }
}

/// Spatial pyramid pooling: `cv2(cat(x, pool_k(x)…))` with `x = cv1(input)`, stride-1 pools.
#[derive(Clone, Debug)]
struct Spp {
    cv1: ConvBn,
    cv2: ConvBn,
    kernels: Vec<usize>,
}

impl Spp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.cv1.forward(x)?;
        let mut parts = vec![x.clone()];
        for &k in &self.kernels {
            parts.push(x.max_pool2d(k, 1, k / 2)?);
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        self.cv2.forward(&Tensor::cat(&refs, 1)?)
    }
}

/// The output of [`YoloFaceNet::forward`].
#[derive(Clone, Debug)]
pub struct YoloOutput {
    /// Per level, the head's conv output as upstream returns it: `[1, na, ny, nx, no]`.
    pub raw: Vec<Tensor>,
    /// `[1, N, no]` decoded rows, levels in order, each `(anchor, y, x)`-major:
    /// `cx, cy, w, h` in input pixels, sigmoid objectness, landmarks in input pixels,
    /// sigmoid class scores.
    pub rows: Tensor,
}

/// The Detect layer: one 1×1 conv per level, anchors in input pixels.
#[derive(Clone, Debug)]
struct Detect {
    convs: Vec<Conv>,
    /// Per level, `na` (w, h) pairs.
    anchor_grid: Vec<Vec<[f32; 2]>>,
    no: usize,
}

impl Detect {
    fn new(vb: &VarBuilder, cfg: &YoloConfig, ch: &[usize]) -> Result<Self> {
        let nl = cfg.anchors.len();
        let na = cfg.anchors[0].len() / 2;
        let no = cfg.nc + 5 + 10;
        let convs = ch
            .iter()
            .enumerate()
            .map(|(i, &c)| Conv::new(&vb.pp("m").pp(i), c, na * no, &[1, 1], 1, &[0, 0], true))
            .collect::<Result<_>>()?;
        // The checkpoint's `anchor_grid` holds the anchors training settled on (autoanchor
        // may change them); `anchors` is the same divided by the stride.
        let stored = vb.get_opt([nl, 1, na, 1, 1, 2], "anchor_grid")?;
        vb.get_opt([nl, na, 2], "anchors")?;
        let flat: Vec<f32> = match stored {
            Some(t) => t.to_vec()?,
            None => cfg.anchors.iter().flatten().map(|&v| v as f32).collect(),
        };
        let anchor_grid = flat
            .chunks_exact(2 * na)
            .map(|level| level.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
            .collect();
        Ok(Detect {
            convs,
            anchor_grid,
            no,
        })
    }

    fn forward(&self, xs: &[&Tensor], input: (usize, usize)) -> Result<YoloOutput> {
        let mut raw = Vec::with_capacity(xs.len());
        let mut rows = Vec::new();
        for ((conv, anchors), x) in self.convs.iter().zip(&self.anchor_grid).zip(xs) {
            let y = conv.forward(x)?;
            let (ny, nx) = (y.dims()[2], y.dims()[3]);
            let na = anchors.len();
            let stride = input.1 / ny;
            if stride * ny != input.1 || stride * nx != input.0 {
                return Err(Error::invalid(
                    "yolo detect",
                    format!("feature map {nx}x{ny} is not the input {input:?} over a stride"),
                ));
            }
            let y = y
                .reshape([1, na, self.no, ny, nx])?
                .permute(&[0, 1, 3, 4, 2])?;
            self.decode(&y.to_vec()?, anchors, (nx, ny), stride as f32, &mut rows);
            raw.push(y);
        }
        let n = rows.len() / self.no;
        let device = xs.first().map_or(crate::Device::Cpu, |x| x.device());
        Ok(YoloOutput {
            raw,
            rows: Tensor::from_vec(rows, [1, n, self.no], device)?,
        })
    }

    /// Upstream's inference branch of `Detect.forward`: boxes as in YOLOv5
    /// (`xy = (2σ − 0.5 + grid)·stride`, `wh = (2σ)²·anchor`), landmarks without a sigmoid
    /// (`raw·anchor + grid·stride`), sigmoid on objectness and classes.
    fn decode(
        &self,
        raw: &[f32],
        anchors: &[[f32; 2]],
        (nx, ny): (usize, usize),
        stride: f32,
        rows: &mut Vec<f32>,
    ) {
        let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
        for (i, r) in raw.chunks_exact(self.no).enumerate() {
            let a = i / (ny * nx);
            let (gy, gx) = (((i / nx) % ny) as f32, (i % nx) as f32);
            let [aw, ah] = anchors[a];
            let grid = [gx, gy];
            let anchor = [aw, ah];
            for (k, &v) in r.iter().enumerate() {
                let out = match k {
                    0 | 1 => (sigmoid(v) * 2.0 - 0.5 + grid[k]) * stride,
                    2 | 3 => (sigmoid(v) * 2.0).powi(2) * anchor[k - 2],
                    5..=14 => v * anchor[(k - 5) % 2] + grid[(k - 5) % 2] * stride,
                    _ => sigmoid(v),
                };
                rows.push(out);
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Layer {
    Conv(ConvBn),
    Stem(StemBlock),
    C3(C3),
    Spp(Spp),
    Upsample(usize),
    Concat,
    Detect(Detect),
}

#[derive(Clone, Debug)]
struct Node {
    /// Absolute indices of the layers this one reads.
    from: Vec<usize>,
    layer: Layer,
}

/// The YOLOv5-face network; its last layer must be `Detect`.
#[derive(Clone, Debug)]
pub struct YoloFaceNet {
    pub config: YoloConfig,
    nodes: Vec<Node>,
    /// Layers whose output a later layer reads other than its predecessor.
    save: BTreeSet<usize>,
}

fn parse_from(v: &Value, i: usize) -> Result<Vec<usize>> {
    let one = |v: &Value| -> Result<usize> {
        let f = v
            .as_i64()
            .ok_or_else(|| bad(format!("layer {i}: `from` {v} is not an index")))?;
        let abs = if f < 0 { i as i64 + f } else { f };
        if abs < 0 || abs >= i as i64 {
            return Err(bad(format!(
                "layer {i} reads layer {f}, which is not before it"
            )));
        }
        Ok(abs as usize)
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

impl YoloFaceNet {
    /// Builds the layers upstream's `parse_model` would, reading `model.<i>.…` under `vb`.
    pub fn new(config: YoloConfig, vb: &VarBuilder) -> Result<Self> {
        let na = config.anchors.first().map_or(0, |a| a.len() / 2);
        if na == 0 || config.anchors.iter().any(|a| a.len() != 2 * na) {
            return Err(bad(
                "anchors must be non-empty lists of equally many (w, h) pairs",
            ));
        }
        let net = NetCtx {
            bn_eps: config.bn_eps,
            act: Activation::from_config(&config.activation)?,
        };
        let vb = vb.pp("model");
        // Channels out of each layer; the input image is the implicit layer before 0.
        let mut ch: Vec<usize> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let specs: Vec<&LayerSpec> = config.backbone.iter().chain(&config.head).collect();
        for (i, (from, number, module, args)) in specs.into_iter().enumerate() {
            let from = if i == 0 {
                if from != &Value::from(-1) {
                    return Err(bad("layer 0 must read the image (from -1)"));
                }
                vec![]
            } else {
                parse_from(from, i)?
            };
            let c1 = from.first().map_or(3, |&f| ch[f]);
            let n = if *number > 1 {
                ((*number as f64) * config.depth_multiple)
                    .round_ties_even()
                    .max(1.0) as usize
            } else {
                *number
            };
            let width = |layer: usize| -> Result<usize> {
                let c = arg_usize(args, 0, None, layer)?;
                Ok(make_divisible(c as f64 * config.width_multiple))
            };
            let lvb = vb.pp(i);
            let (layer, c2) = match module.as_str() {
                "Conv" => {
                    let c2 = width(i)?;
                    let k = arg_usize(args, 1, Some(1), i)?;
                    let s = arg_usize(args, 2, Some(1), i)?;
                    (Layer::Conv(ConvBn::new(&lvb, &net, c1, c2, k, s)?), c2)
                }
                "StemBlock" => {
                    let c2 = width(i)?;
                    let k = arg_usize(args, 1, Some(3), i)?;
                    let s = arg_usize(args, 2, Some(2), i)?;
                    let stem = StemBlock {
                        stem_1: ConvBn::new(&lvb.pp("stem_1"), &net, c1, c2, k, s)?,
                        stem_2a: ConvBn::new(&lvb.pp("stem_2a"), &net, c2, c2 / 2, 1, 1)?,
                        stem_2b: ConvBn::new(&lvb.pp("stem_2b"), &net, c2 / 2, c2, 3, 2)?,
                        stem_3: ConvBn::new(&lvb.pp("stem_3"), &net, 2 * c2, c2, 1, 1)?,
                    };
                    (Layer::Stem(stem), c2)
                }
                "C3" => {
                    let c2 = width(i)?;
                    let shortcut = args.get(1).and_then(Value::as_bool).unwrap_or(true);
                    (Layer::C3(C3::new(&lvb, &net, c1, c2, n, shortcut)?), c2)
                }
                "SPP" => {
                    let c2 = width(i)?;
                    let kernels: Vec<usize> = match args.get(1) {
                        None => vec![5, 9, 13],
                        Some(v) => serde_json::from_value(v.clone())
                            .map_err(|e| bad(format!("layer {i}: SPP kernels: {e}")))?,
                    };
                    if kernels.iter().any(|k| k.is_multiple_of(2)) {
                        return Err(bad(format!("layer {i}: SPP kernels must be odd")));
                    }
                    let c = c1 / 2;
                    let spp = Spp {
                        cv1: ConvBn::new(&lvb.pp("cv1"), &net, c1, c, 1, 1)?,
                        cv2: ConvBn::new(&lvb.pp("cv2"), &net, c * (kernels.len() + 1), c2, 1, 1)?,
                        kernels,
                    };
                    (Layer::Spp(spp), c2)
                }
                "nn.Upsample" => {
                    let scale = arg_usize(args, 1, None, i)?;
                    if args.get(2).and_then(Value::as_str) != Some("nearest") || scale == 0 {
                        return Err(bad(format!(
                            "layer {i}: only nearest upsampling by an integer"
                        )));
                    }
                    (Layer::Upsample(scale), c1)
                }
                "Concat" => {
                    if arg_usize(args, 0, Some(1), i)? != 1 {
                        return Err(bad(format!("layer {i}: only channel concatenation")));
                    }
                    (Layer::Concat, from.iter().map(|&f| ch[f]).sum())
                }
                "Detect" => {
                    if from.len() != config.anchors.len() {
                        return Err(bad(format!(
                            "layer {i}: Detect reads {} levels but there are {} anchor sets",
                            from.len(),
                            config.anchors.len()
                        )));
                    }
                    let level_ch: Vec<usize> = from.iter().map(|&f| ch[f]).collect();
                    (Layer::Detect(Detect::new(&lvb, &config, &level_ch)?), 0)
                }
                other => return Err(bad(format!("layer {i}: unsupported module `{other}`"))),
            };
            if n > 1 && !matches!(layer, Layer::C3(_)) {
                return Err(bad(format!("layer {i}: only C3 repeats (number {number})")));
            }
            ch.push(c2);
            nodes.push(Node { from, layer });
        }
        if !matches!(
            nodes.last(),
            Some(Node {
                layer: Layer::Detect(_),
                ..
            })
        ) {
            return Err(bad("the last layer must be Detect"));
        }
        let save = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.from.iter().copied().filter(move |&f| f + 1 != i))
            .collect();
        Ok(YoloFaceNet {
            config,
            nodes,
            save,
        })
    }

    /// `image [1, 3, H, W]`, RGB in [0, 1], `H` and `W` multiples of 32.
    pub fn forward(&self, image: &Tensor) -> Result<YoloOutput> {
        let d = image.dims();
        if d.len() != 4
            || d[0] != 1
            || d[1] != 3
            || !d[2].is_multiple_of(YOLO_STRIDE_MULTIPLE)
            || !d[3].is_multiple_of(YOLO_STRIDE_MULTIPLE)
            || d[2] == 0
            || d[3] == 0
        {
            return Err(Error::invalid(
                "yolo face",
                format!(
                    "input {} is not [1, 3, H, W] with sides multiples of {YOLO_STRIDE_MULTIPLE}",
                    image.shape()
                ),
            ));
        }
        let mut saved: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        let mut x = image.clone();
        for (i, node) in self.nodes.iter().enumerate() {
            let input = |f: usize| -> &Tensor {
                if f + 1 == i {
                    &x
                } else {
                    saved[f]
                        .as_ref()
                        .expect("every layer read out of order is saved")
                }
            };
            x = match &node.layer {
                Layer::Conv(c) => c.forward(&x)?,
                Layer::Stem(s) => s.forward(&x)?,
                Layer::C3(c) => c.forward(&x)?,
                Layer::Spp(s) => s.forward(&x)?,
                Layer::Upsample(s) => x.upsample_nearest2d(*s, *s)?,
                Layer::Concat => {
                    let parts: Vec<&Tensor> = node.from.iter().map(|&f| input(f)).collect();
                    Tensor::cat(&parts, 1)?
                }
                Layer::Detect(det) => {
                    let levels: Vec<&Tensor> = node.from.iter().map(|&f| input(f)).collect();
                    return det.forward(&levels, (d[3], d[2]));
                }
            };
            if self.save.contains(&i) {
                saved[i] = Some(x.clone());
            }
        }
        Err(Error::invalid(
            "yolo face",
            "the network has no Detect layer",
        ))
    }

    /// Values per output row.
    pub fn row_len(&self) -> usize {
        self.config.nc + 5 + 10
    }
}

/// The load report of a network under `vb`, with BatchNorm's `num_batches_tracked` counters
/// (training state the network does not read) listed as expected.
pub fn yolo_load_report(vb: &VarBuilder) -> LoadReport {
    let mut report = vb.report();
    let (counters, rest) = report
        .unused
        .into_iter()
        .partition(|k| k.ends_with(".num_batches_tracked"));
    report.unused = rest;
    report.expected_unused.extend::<Vec<String>>(counters);
    report
}

/// Rows of the reference's face layout, the only one [`super::YoloDecode`] reads.
pub fn check_face_rows(net: &YoloFaceNet) -> Result<()> {
    if net.row_len() != YOLO_ROW {
        return Err(Error::invalid(
            "yolo face",
            format!(
                "{} classes give rows of {}, not {YOLO_ROW}",
                net.config.nc,
                net.row_len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::face::{yolo_input, FaceDetector, YoloDecode, YoloFaceDetector};
    use crate::verify::testing::{assert_passes, fixture};
    use crate::Device;

    fn tiny_config() -> YoloConfig {
        let text = std::fs::read_to_string(fixture("yolo_face").join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn tiny_detector() -> YoloFaceDetector {
        let path = fixture("yolo_face").join("weights.safetensors");
        YoloFaceDetector::load_with(&path, tiny_config(), Device::Cpu).unwrap()
    }

    #[test]
    fn fixture_matches_pytorch() {
        assert_passes("yolo_face");
    }

    #[test]
    fn default_config_is_yolov5m_face() {
        let c = YoloConfig::default();
        assert_eq!(c.backbone.len() + c.head.len(), 24);
        assert_eq!((c.depth_multiple, c.width_multiple), (0.67, 0.75));
        assert_eq!(c.bn_eps, 1e-3);
        // 64·0.75 = 48 and 1024·0.75 = 768 are already multiples of 8; 4·0.25 is not.
        assert_eq!(make_divisible(64.0 * 0.75), 48);
        assert_eq!(make_divisible(1.0), 8);
    }

    #[test]
    fn detector_rescales_rows_to_the_image() {
        let mut det = tiny_detector();
        assert!(det.report().is_clean() && det.report().unused.is_empty());
        assert!(!det.report().expected_unused.is_empty());
        let data = (0..60 * 90 * 3).map(|i| (i * 37 % 251) as u8).collect();
        let img = RgbImage::new(90, 60, data).unwrap();
        let input = yolo_input(&img).unwrap();
        // Short side 60 → 416; 90·416/60 = 624, + 31 → 640.
        assert_eq!(input.dims(), &[1, 3, 416, 640]);
        let rows = det.net().forward(&input).unwrap().rows.to_vec().unwrap();
        det.decode = YoloDecode {
            obj_threshold: 0.0,
            conf_threshold: 0.0,
            nms_iou: 1.0,
        };
        let found = det.detect(&img).unwrap();
        assert_eq!(found.len(), rows.len() / YOLO_ROW);
        let best = rows
            .chunks_exact(YOLO_ROW)
            .max_by(|a, b| (a[4] * a[15]).total_cmp(&(b[4] * b[15])))
            .unwrap();
        let (sx, sy) = (90.0 / 640.0, 60.0 / 416.0);
        let face = &found[0].face;
        assert!(
            (face.w - f64::from(best[2]) * sx).abs() < 1e-6,
            "{face:?} {best:?}"
        );
        assert!((face.y - f64::from(best[1] - best[3] / 2.0) * sy).abs() < 1e-4);
    }

    #[test]
    fn bad_descriptions_and_inputs_are_rejected() {
        let vb = fixture_vb();
        let mut c = tiny_config();
        c.head[2].0 = serde_json::json!([-1, 30]);
        assert!(YoloFaceNet::new(c, &vb).is_err());
        let mut c = tiny_config();
        c.backbone[1].2 = "BottleneckCSP".into();
        let err = YoloFaceNet::new(c, &vb).unwrap_err().to_string();
        assert!(err.contains("BottleneckCSP"), "{err}");
        let mut c = tiny_config();
        c.head.pop();
        assert!(YoloFaceNet::new(c, &vb).is_err());
        let net = YoloFaceNet::new(tiny_config(), &vb).unwrap();
        let odd = Tensor::zeros([1, 3, 48, 64], Device::Cpu).unwrap();
        assert!(net.forward(&odd).is_err());
    }

    /// The fixture's state dict as upstream's `model.fuse()` leaves it: each BatchNorm
    /// folded into its conv as `conv.bias`, the `bn` entries gone.
    fn fused_fixture(dir: &std::path::Path) -> std::path::PathBuf {
        let vb = fixture_vb();
        let store = vb.store();
        let load = |k: &str| {
            let shape = store.raw(k).unwrap().shape.clone();
            (
                store
                    .load(k, &shape.clone().into(), crate::DType::F32, Device::Cpu)
                    .unwrap()
                    .to_vec()
                    .unwrap(),
                shape,
            )
        };
        let mut out: Vec<(String, Vec<f32>, Vec<usize>)> = Vec::new();
        for key in store.keys().filter(|k| !k.contains(".bn.")) {
            let (mut w, shape) = load(key);
            if let Some(prefix) = key.strip_suffix(".conv.weight") {
                let bn = |name: &str| load(&format!("{prefix}.bn.{name}")).0;
                let (g, b, m, v) = (
                    bn("weight"),
                    bn("bias"),
                    bn("running_mean"),
                    bn("running_var"),
                );
                let scale: Vec<f32> = g
                    .iter()
                    .zip(&v)
                    .map(|(g, v)| g / (v + 1e-3).sqrt())
                    .collect();
                let per_out = w.len() / scale.len();
                for (o, chunk) in w.chunks_mut(per_out).enumerate() {
                    chunk.iter_mut().for_each(|x| *x *= scale[o]);
                }
                let bias = (0..scale.len()).map(|o| b[o] - m[o] * scale[o]).collect();
                out.push((format!("{prefix}.conv.bias"), bias, vec![scale.len()]));
            }
            out.push((key.to_string(), w, shape));
        }
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = out
            .into_iter()
            .map(|(k, v, s)| (k, v.iter().flat_map(|x| x.to_le_bytes()).collect(), s))
            .collect();
        let views: std::collections::HashMap<String, safetensors::tensor::TensorView> = bytes
            .iter()
            .map(|(k, b, s)| {
                let view =
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b);
                (k.clone(), view.unwrap())
            })
            .collect();
        let path = dir.join("fused.safetensors");
        safetensors::serialize_to_file(views, None, &path).unwrap();
        path
    }

    #[test]
    fn fused_state_dict_gives_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let fused =
            YoloFaceDetector::load_with(&fused_fixture(dir.path()), tiny_config(), Device::Cpu)
                .unwrap();
        assert!(fused.report().is_clean() && fused.report().unused.is_empty());
        let image = Tensor::from_vec(
            (0..3 * 64 * 96).map(|i| (i % 97) as f32 / 97.0).collect(),
            [1, 3, 64, 96],
            Device::Cpu,
        )
        .unwrap();
        let a = tiny_detector()
            .net()
            .forward(&image)
            .unwrap()
            .rows
            .to_vec()
            .unwrap();
        let b = fused.net().forward(&image).unwrap().rows.to_vec().unwrap();
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{worst}");
    }

    #[test]
    fn torchscript_archive_gives_the_same_rows() {
        let path = fixture("yolo_face").join("weights.pt");
        let script = YoloFaceDetector::load_with(&path, tiny_config(), Device::Cpu).unwrap();
        let report = script.report();
        assert!(report.is_clean() && report.unused.is_empty(), "{report}");
        let image = Tensor::from_vec(
            (0..3 * 64 * 96).map(|i| (i % 89) as f32 / 89.0).collect(),
            [1, 3, 64, 96],
            Device::Cpu,
        )
        .unwrap();
        let rows = |det: &YoloFaceDetector| det.net().forward(&image).unwrap().rows.to_vec();
        assert_eq!(rows(&script).unwrap(), rows(&tiny_detector()).unwrap());
    }

    fn fixture_vb() -> VarBuilder {
        let store =
            crate::weights::WeightStore::open(&[fixture("yolo_face").join("weights.safetensors")])
                .unwrap();
        VarBuilder::new(std::sync::Arc::new(store), crate::DType::F32, Device::Cpu)
    }

    use crate::image::RgbImage;
}
