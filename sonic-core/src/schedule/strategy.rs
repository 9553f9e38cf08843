//! The built-in strategies and their parameters, parsed from specs such as
//! `shift:alpha=7,edge=reflect` or `overlap:o=8,weights=pyramid`.

use std::fmt;

use super::plan::{Layout, Plan, Window};
use crate::{Error, Result};

/// How window indices beyond the sequence are mapped back into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Indices wrap modulo the length: the sequence is a ring (the reference).
    Ring,
    /// Mirror padding; padded slots give the denoiser context but do not vote in fusion.
    Reflect,
    /// The first or last frame is repeated; padded slots do not vote either.
    Clamp,
}

/// Where the windows' results are fused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    /// Denoised estimates are blended per frame, then one sampler step moves the whole
    /// sequence: works with every sampler.
    FuseThenStep,
    /// Each window takes its own sampler step and the stepped latents are averaged per frame,
    /// as the reference does; only for single-evaluation stateless samplers (Euler).
    SonicCompat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    Flat,
    /// Slot k of a window of length f weighs min(k + 1, f − k): edges count least.
    Pyramid,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    /// Non-overlapping windows whose start moves by `alpha` frames every step.
    Shift {
        alpha: usize,
        edge: Edge,
        fusion: Fusion,
    },
    /// Sliding windows overlapping by `overlap` frames, the last pulled back to end at the end.
    Overlap {
        overlap: usize,
        weights: Weights,
        fusion: Fusion,
    },
    /// Clip by clip, each clip starting with `overlap` latents carried from the previous one.
    MotionFrames { overlap: usize },
    /// Fixed non-overlapping windows: the baseline without shift fusion.
    Tiles { edge: Edge, fusion: Fusion },
}

impl Strategy {
    pub fn fusion(&self) -> Fusion {
        match self {
            Strategy::Shift { fusion, .. }
            | Strategy::Overlap { fusion, .. }
            | Strategy::Tiles { fusion, .. } => *fusion,
            Strategy::MotionFrames { .. } => Fusion::FuseThenStep,
        }
    }

    /// The windows of every step for `frames` frames, windows of `window`, over `steps` steps.
    pub fn plan(&self, frames: usize, window: usize, steps: usize) -> Result<Plan> {
        if frames == 0 || window == 0 || steps == 0 {
            return Err(Error::invalid(
                "schedule",
                format!(
                    "frames ({frames}), window ({window}) and steps ({steps}) must all be positive"
                ),
            ));
        }
        let layout = match *self {
            Strategy::Shift { alpha, edge, .. } => Layout::Fused {
                steps: (0..steps)
                    .map(|i| shifted(frames, window, alpha * i, edge))
                    .collect(),
            },
            Strategy::Tiles { edge, .. } => Layout::Fused {
                steps: vec![shifted(frames, window, 0, edge); steps],
            },
            Strategy::Overlap {
                overlap, weights, ..
            } => {
                check_overlap(overlap, window)?;
                Layout::Fused {
                    steps: vec![overlapping(frames, window, overlap, weights); steps],
                }
            }
            Strategy::MotionFrames { overlap } => {
                check_overlap(overlap, window)?;
                Layout::Clips {
                    clips: clips(frames, window, overlap),
                    steps,
                }
            }
        };
        let plan = Plan {
            frames,
            window,
            layout,
        };
        plan.validate()
            .map_err(|e| Error::invalid("schedule", format!("{self}: {e}")))?;
        Ok(plan)
    }
}

fn check_overlap(overlap: usize, window: usize) -> Result<()> {
    if overlap >= window {
        return Err(Error::invalid(
            "schedule",
            format!("overlap {overlap} must be below the window length {window}"),
        ));
    }
    Ok(())
}

/// Maps a virtual index onto the sequence; `None` for padding under reflect/clamp.
fn map_edge(v: isize, n: usize, edge: Edge) -> (usize, bool) {
    let n = n as isize;
    let inside = (0..n).contains(&v);
    let index = match edge {
        Edge::Ring => v.rem_euclid(n),
        Edge::Clamp => v.clamp(0, n - 1),
        Edge::Reflect if n == 1 => 0,
        Edge::Reflect => {
            let period = 2 * (n - 1);
            let m = v.rem_euclid(period);
            if m < n {
                m
            } else {
                period - m
            }
        }
    };
    (index as usize, inside || edge == Edge::Ring)
}

/// Non-overlapping windows shifted back by `shift` frames. On a ring this keeps ⌈N/f⌉
/// windows; otherwise the shift is taken modulo f and one more window may be needed.
fn shifted(n: usize, f: usize, shift: usize, edge: Edge) -> Vec<Window> {
    let (offset, count) = match edge {
        Edge::Ring => (shift % n, n.div_ceil(f)),
        Edge::Reflect | Edge::Clamp => {
            let phase = shift % f;
            (phase, (n + phase).div_ceil(f))
        }
    };
    (0..count)
        .map(|j| {
            let start = (j * f) as isize - offset as isize;
            let (frames, weights) = (0..f as isize)
                .map(|k| {
                    let (idx, votes) = map_edge(start + k, n, edge);
                    (idx, if votes { 1.0 } else { 0.0 })
                })
                .unzip();
            Window {
                frames,
                weights,
                carried: 0,
            }
        })
        .collect()
}

fn slot_weights(len: usize, weights: Weights) -> Vec<f32> {
    match weights {
        Weights::Flat => vec![1.0; len],
        Weights::Pyramid => (0..len).map(|k| (k + 1).min(len - k) as f32).collect(),
    }
}

fn overlapping(n: usize, f: usize, o: usize, weights: Weights) -> Vec<Window> {
    if n <= f {
        return vec![Window {
            frames: (0..n).collect(),
            weights: slot_weights(n, weights),
            carried: 0,
        }];
    }
    let stride = f - o;
    let mut starts: Vec<usize> = (0..)
        .map(|j| j * stride)
        .take_while(|&s| s + f < n)
        .collect();
    starts.push(n - f);
    starts
        .into_iter()
        .map(|s| Window {
            frames: (s..s + f).collect(),
            weights: slot_weights(f, weights),
            carried: 0,
        })
        .collect()
}

fn clips(n: usize, f: usize, o: usize) -> Vec<Window> {
    let mut out = vec![Window::flat((0..f.min(n)).collect())];
    let mut next = f.min(n);
    while next < n {
        let fresh = (f - o).min(n - next);
        let carried = o.min(next);
        let frames: Vec<usize> = (next - carried..next + fresh).collect();
        out.push(Window {
            weights: vec![1.0; frames.len()],
            frames,
            carried,
        });
        next += fresh;
    }
    out
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fusion = |x: &Fusion| match x {
            Fusion::FuseThenStep => "fuse-then-step",
            Fusion::SonicCompat => "sonic-compat",
        };
        let edge = |e: &Edge| match e {
            Edge::Ring => "ring",
            Edge::Reflect => "reflect",
            Edge::Clamp => "clamp",
        };
        match self {
            Strategy::Shift {
                alpha,
                edge: e,
                fusion: x,
            } => {
                write!(
                    f,
                    "shift:alpha={alpha},edge={},fusion={}",
                    edge(e),
                    fusion(x)
                )
            }
            Strategy::Overlap {
                overlap,
                weights,
                fusion: x,
            } => {
                let w = if *weights == Weights::Flat {
                    "flat"
                } else {
                    "pyramid"
                };
                write!(f, "overlap:o={overlap},weights={w},fusion={}", fusion(x))
            }
            Strategy::MotionFrames { overlap } => write!(f, "motion-frames:o={overlap}"),
            Strategy::Tiles { edge: e, fusion: x } => {
                write!(f, "tiles:edge={},fusion={}", edge(e), fusion(x))
            }
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let bad = |msg: String| Error::invalid("schedule", format!("`{spec}`: {msg}"));
        let (name, params) = spec.trim().split_once(':').unwrap_or((spec.trim(), ""));
        let mut pairs = Vec::new();
        for item in params.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("`{item}` is not key=value")))?;
            pairs.push((k.trim().to_string(), v.trim().to_string()));
        }
        let mut take = |keys: &[&str]| -> Option<String> {
            let pos = pairs.iter().position(|(k, _)| keys.contains(&k.as_str()))?;
            Some(pairs.remove(pos).1)
        };
        let number = |v: Option<String>, default: usize, key: &str| -> Result<usize> {
            v.map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| bad(format!("{key}={v} is not a whole number")))
            })
        };
        let edge = |v: Option<String>| -> Result<Edge> {
            match v.as_deref().unwrap_or("ring") {
                "ring" | "circular" => Ok(Edge::Ring),
                "reflect" => Ok(Edge::Reflect),
                "clamp" => Ok(Edge::Clamp),
                other => Err(bad(format!(
                    "edge={other} (expected ring, reflect or clamp)"
                ))),
            }
        };
        let fusion = |v: Option<String>| -> Result<Fusion> {
            match v.as_deref().unwrap_or("fuse-then-step") {
                "fuse-then-step" => Ok(Fusion::FuseThenStep),
                "sonic-compat" => Ok(Fusion::SonicCompat),
                other => Err(bad(format!(
                    "fusion={other} (expected fuse-then-step or sonic-compat)"
                ))),
            }
        };
        let strategy = match name {
            "shift" => Strategy::Shift {
                alpha: number(take(&["alpha", "a"]), 7, "alpha")?,
                edge: edge(take(&["edge"]))?,
                fusion: fusion(take(&["fusion"]))?,
            },
            "overlap" => Strategy::Overlap {
                overlap: number(take(&["o", "overlap"]), 8, "o")?,
                weights: match take(&["weights", "w"]).as_deref().unwrap_or("flat") {
                    "flat" => Weights::Flat,
                    "pyramid" => Weights::Pyramid,
                    other => {
                        return Err(bad(format!("weights={other} (expected flat or pyramid)")))
                    }
                },
                fusion: fusion(take(&["fusion"]))?,
            },
            "motion-frames" => Strategy::MotionFrames {
                overlap: number(take(&["o", "overlap"]), 4, "o")?,
            },
            "tiles" => Strategy::Tiles {
                edge: edge(take(&["edge"]))?,
                fusion: fusion(take(&["fusion"]))?,
            },
            other => {
                return Err(bad(format!(
                    "unknown strategy `{other}` (built in: shift, overlap, motion-frames, tiles)"
                )))
            }
        };
        if let Some((k, _)) = pairs.first() {
            return Err(bad(format!("unknown parameter `{k}` for {name}")));
        }
        Ok(strategy)
    }
}
