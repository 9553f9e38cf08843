//! A face detector without learned weights: skin-coloured regions, cut below the face where
//! the region narrows into a neck, scored by how face-like they are.
//!
//! What it finds: frontal or three-quarter faces whose skin lies in the usual YCbCr skin
//! range — photographs under roughly neutral light, and drawn or rendered portraits with
//! natural skin tones, which is what talking-portrait inputs mostly are.
//!
//! What it misses or gets wrong, by construction:
//! - faces whose colour is not a skin tone (green, blue or grey characters, black-and-white
//!   photos, strong coloured lighting), and skin darker than luma 60 (deep shadow, very dark
//!   skin in dim light);
//! - hair, wood, sand or walls of skin-like colour touching the face: the box grows into them
//!   (light-brown and blond hair are the common case: the box then includes the hair);
//! - faces split by something dark across them (thick glasses, a hand), which may come out
//!   as two regions or be scored low;
//! - profile views and very small faces (under about 1/40 of the image side).
//!
//! Where a face matters, prefer a learned detector; this one keeps `sonic animate` usable
//! with no extra download, and the caller falls back to its default box when it finds nothing.

use super::{nms, Detection, FaceDetector, NMS_IOU};
use crate::image::{FaceBox, RgbImage};
use crate::Result;

/// The skin-region face detector. [`Default`] suits portraits of any size.
#[derive(Clone, Debug)]
pub struct SkinFaceDetector {
    /// Cells along the longer image side of the analysis grid; each cell averages a square
    /// of pixels, which removes noise and texture before the colour test.
    pub grid: usize,
    /// Detections scoring below this are dropped.
    pub min_score: f32,
    /// Smallest face box, as a fraction of the image area.
    pub min_area: f64,
}

impl Default for SkinFaceDetector {
    fn default() -> Self {
        SkinFaceDetector {
            grid: 160,
            min_score: 0.35,
            min_area: 0.002,
        }
    }
}

/// Chroma in the classic skin range (Cb 77–127, Cr 133–173), red above blue, and bright
/// enough that dark-brown hair (luma about 50) is not taken for skin.
fn is_skin([r, g, b]: [f32; 3]) -> bool {
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    y >= 60.0 && (77.0..=127.0).contains(&cb) && (133.0..=173.0).contains(&cr) && r > b
}

/// The image averaged over `cell`×`cell` squares (partial squares at the right and bottom).
struct Grid {
    w: usize,
    h: usize,
    cell: usize,
    skin: Vec<bool>,
}

impl Grid {
    fn new(img: &RgbImage, cells: usize) -> Grid {
        let (iw, ih) = (img.width(), img.height());
        let cell = iw.max(ih).div_ceil(cells.max(1)).max(1);
        let (w, h) = (iw.div_ceil(cell), ih.div_ceil(cell));
        let mut sums = vec![[0.0f32; 4]; w * h];
        for (y, row) in img.data().chunks_exact(iw * 3).enumerate() {
            let line = &mut sums[(y / cell) * w..][..w];
            for (x, px) in row.chunks_exact(3).enumerate() {
                let s = &mut line[x / cell];
                s[0] += f32::from(px[0]);
                s[1] += f32::from(px[1]);
                s[2] += f32::from(px[2]);
                s[3] += 1.0;
            }
        }
        let skin = sums
            .iter()
            .map(|s| is_skin([s[0] / s[3], s[1] / s[3], s[2] / s[3]]))
            .collect();
        Grid { w, h, cell, skin }
    }

    /// 4-connected regions of skin cells: a label per cell (0 = background) and the count.
    fn regions(&self) -> (Vec<u32>, u32) {
        let mut labels = vec![0u32; self.skin.len()];
        let mut next = 0;
        let mut stack = Vec::new();
        for start in 0..self.skin.len() {
            if !self.skin[start] || labels[start] != 0 {
                continue;
            }
            next += 1;
            labels[start] = next;
            stack.push(start);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % self.w, i / self.w);
                let neighbours = [
                    (x > 0).then(|| i - 1),
                    (x + 1 < self.w).then(|| i + 1),
                    (y > 0).then(|| i - self.w),
                    (y + 1 < self.h).then(|| i + self.w),
                ];
                for j in neighbours.into_iter().flatten() {
                    if self.skin[j] && labels[j] == 0 {
                        labels[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        (labels, next)
    }
}

/// Regions smaller than this many cells are noise, not faces (and skipping them keeps the
/// per-region scans few).
const MIN_REGION_CELLS: usize = 16;

/// A candidate face in grid cells, rows `top..=bottom`, columns `left..=right`.
struct Candidate {
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
    score: f32,
}

/// 1 inside `[lo, hi]`, falling linearly to 0 at `zero_lo` and `zero_hi`.
fn plateau(v: f64, zero_lo: f64, lo: f64, hi: f64, zero_hi: f64) -> f64 {
    if v < lo {
        ((v - zero_lo) / (lo - zero_lo)).clamp(0.0, 1.0)
    } else if v > hi {
        ((zero_hi - v) / (zero_hi - hi)).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

fn median(mut v: Vec<usize>) -> usize {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The face part of one skin region and its score, or `None` for a region too small to be one.
fn candidate(grid: &Grid, labels: &[u32], label: u32) -> Option<Candidate> {
    // Column extent of the region in each row it touches.
    let mut extents: Vec<Option<(usize, usize)>> = vec![None; grid.h];
    for (i, _) in labels.iter().enumerate().filter(|(_, &l)| l == label) {
        let (x, y) = (i % grid.w, i / grid.w);
        let e = extents[y].get_or_insert((x, x));
        e.0 = e.0.min(x);
        e.1 = e.1.max(x);
    }
    let top = extents.iter().position(Option::is_some)?;
    let last = extents.iter().rposition(Option::is_some)?;
    let width = |r: usize| extents[r].map_or(0, |(a, b)| b - a + 1);
    // Scanning down, the first run of rows much narrower than the face above it is the
    // neck; what lies below it (shoulders, chest, arms) is not part of the face, however wide.
    let (mut widest, mut max_w, mut neck) = (top, 0, None);
    for r in top..=last {
        if width(r) > max_w {
            (widest, max_w) = (r, width(r));
        } else if (width(r) as f64) < 0.55 * max_w as f64 && 2 * (r - top) >= max_w {
            neck = Some(r);
            break;
        }
    }
    if max_w < 4 || last - top < 4 {
        return None;
    }
    // The face ends where the region has narrowed to the neck's width: the chin.
    let narrow = |r: usize| (width(r) as f64) < 0.55 * max_w as f64;
    let bottom = match neck {
        None => last,
        Some(neck) => {
            let run: Vec<usize> = (neck..=last)
                .take_while(|&r| narrow(r))
                .map(width)
                .collect();
            let neck_w = median(run) as f64;
            (widest..neck)
                .find(|&r| width(r) as f64 <= 1.05 * neck_w)
                .unwrap_or(neck)
        }
    };
    let rows = top..=bottom;
    let left = rows.clone().filter_map(|r| extents[r]).map(|e| e.0).min()?;
    let right = rows.clone().filter_map(|r| extents[r]).map(|e| e.1).max()?;
    let (bw, bh) = (right - left + 1, bottom - top + 1);

    // Inside each row's extent: cells of the region, and other cells (eyes, brows, mouth).
    let (mut own, mut inside) = (0usize, 0usize);
    for r in rows {
        if let Some((a, b)) = extents[r] {
            inside += b - a + 1;
            own += labels[r * grid.w + a..=r * grid.w + b]
                .iter()
                .filter(|&&l| l == label)
                .count();
        }
    }
    let holes = 1.0 - own as f64 / inside.max(1) as f64;
    let fill = own as f64 / (bw * bh) as f64;
    let aspect = bh as f64 / bw as f64;
    let edges = [
        left == 0,
        top == 0,
        right + 1 >= grid.w,
        bottom + 1 >= grid.h,
    ]
    .iter()
    .filter(|&&e| e)
    .count();
    let score = plateau(aspect, 0.4, 0.8, 1.9, 3.0)
        * plateau(fill, 0.25, 0.5, 0.92, 1.1)
        * (0.3 + 0.7 * (holes / 0.02).min(1.0))
        * plateau(holes, 0.0, 0.0, 0.35, 0.6)
        * [1.0, 0.9, 0.6, 0.3, 0.2][edges];
    Some(Candidate {
        top,
        bottom,
        left,
        right,
        score: score as f32,
    })
}

impl FaceDetector for SkinFaceDetector {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let grid = Grid::new(img, self.grid);
        let (labels, count) = grid.regions();
        let (iw, ih) = (img.width() as f64, img.height() as f64);
        let cell = grid.cell as f64;
        let mut sizes = vec![0usize; count as usize + 1];
        for &l in &labels {
            sizes[l as usize] += 1;
        }
        let found = (1..=count)
            .filter(|&label| sizes[label as usize] >= MIN_REGION_CELLS)
            .filter_map(|label| candidate(&grid, &labels, label))
            .filter(|c| c.score >= self.min_score)
            .map(|c| {
                let x = c.left as f64 * cell;
                let y = c.top as f64 * cell;
                let face = FaceBox {
                    x,
                    y,
                    w: ((c.right + 1) as f64 * cell).min(iw) - x,
                    h: ((c.bottom + 1) as f64 * cell).min(ih) - y,
                };
                Detection {
                    face,
                    score: c.score,
                }
            })
            .filter(|d| d.face.w * d.face.h >= self.min_area * iw * ih)
            .collect();
        Ok(nms(found, NMS_IOU))
    }
}
