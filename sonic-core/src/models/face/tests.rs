use std::path::Path;

use super::*;
use crate::image::load_image;

fn det(x1: f64, y1: f64, x2: f64, y2: f64, score: f32) -> Detection {
    Detection {
        face: FaceBox::from_corners(x1, y1, x2, y2),
        score,
    }
}

#[test]
fn iou_of_known_boxes() {
    let a = FaceBox::from_corners(0.0, 0.0, 10.0, 10.0);
    assert_eq!(iou(&a, &a), 1.0);
    assert_eq!(iou(&a, &FaceBox::from_corners(10.0, 0.0, 20.0, 10.0)), 0.0);
    // Half overlap: 50 / (100 + 100 − 50).
    assert!((iou(&a, &FaceBox::from_corners(5.0, 0.0, 15.0, 10.0)) - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(iou(&a, &FaceBox::from_corners(3.0, 3.0, 3.0, 8.0)), 0.0);
}

#[test]
fn nms_keeps_the_best_of_each_cluster() {
    let boxes = vec![
        det(0.0, 0.0, 10.0, 10.0, 0.8),
        // IoU with the first 81/100 = 0.81: dropped.
        det(1.0, 1.0, 10.0, 10.0, 0.9),
        // IoU with the 0.9 box: 9·5 / (81 + 100 − 45) ≈ 0.33: kept.
        det(5.0, 1.0, 15.0, 11.0, 0.7),
        // Far away: kept.
        det(50.0, 50.0, 60.0, 60.0, 0.6),
        // IoU exactly 0.5 with the 0.6 box… above 0.45: dropped.
        det(50.0, 50.0, 60.0, 55.0, 0.55),
    ];
    let kept = nms(boxes, NMS_IOU);
    let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
    assert_eq!(scores, [0.9, 0.7, 0.6]);
    assert!(nms(Vec::new(), NMS_IOU).is_empty());
}

/// A detector that returns fixed boxes, for the selection logic.
struct Fixed(Vec<Detection>);

impl FaceDetector for Fixed {
    fn detect(&self, _: &RgbImage) -> Result<Vec<Detection>> {
        Ok(self.0.clone())
    }
}

#[test]
fn largest_face_is_the_largest_not_the_reference_pick() {
    let img = RgbImage::filled(8, 8, [0, 0, 0]).unwrap();
    // The reference's loop keeps the last box larger than the *first* (area 100): the
    // 400 one; the largest is 900.
    let fixed = Fixed(vec![
        det(0.0, 0.0, 10.0, 10.0, 0.9),
        det(0.0, 0.0, 30.0, 30.0, 0.8),
        det(0.0, 0.0, 20.0, 20.0, 0.7),
    ]);
    let face = largest_face(&fixed, &img).unwrap().unwrap();
    assert_eq!(face.w, 30.0);
    assert_eq!(largest_face(&Fixed(Vec::new()), &img).unwrap(), None);
}

/// A drawing surface for synthetic portraits.
struct Canvas {
    w: usize,
    h: usize,
    data: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize, bg: impl Fn(usize, usize) -> [u8; 3]) -> Self {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                data.extend(bg(x, y));
            }
        }
        Canvas { w, h, data }
    }

    /// Fills the ellipse with centre (cx, cy) and radii (rx, ry); `paint` gets the pixel and
    /// its normalised radius (0 at the centre, 1 on the rim).
    fn ellipse(&mut self, cx: f64, cy: f64, rx: f64, ry: f64, paint: impl Fn(f64) -> [u8; 3]) {
        for y in 0..self.h {
            for x in 0..self.w {
                let (dx, dy) = ((x as f64 - cx) / rx, (y as f64 - cy) / ry);
                let r = (dx * dx + dy * dy).sqrt();
                if r <= 1.0 {
                    self.data[(y * self.w + x) * 3..][..3].copy_from_slice(&paint(r));
                }
            }
        }
    }

    fn rect(&mut self, x1: usize, y1: usize, x2: usize, y2: usize, c: [u8; 3]) {
        for y in y1..y2.min(self.h) {
            for x in x1..x2.min(self.w) {
                self.data[(y * self.w + x) * 3..][..3].copy_from_slice(&c);
            }
        }
    }

    fn image(self) -> RgbImage {
        RgbImage::new(self.w, self.h, self.data).unwrap()
    }
}

struct Face {
    cx: f64,
    cy: f64,
    rx: f64,
    ry: f64,
    skin: [u8; 3],
    /// Darkens the skin toward the rim, like a rendered sphere.
    shaded: bool,
    hair: bool,
    outline: bool,
    clothes: bool,
}

impl Face {
    /// Draws neck, shoulders, hair, face, eyes and mouth; returns the box a face detector
    /// should report: the visible skin of the head, from the hairline to the chin.
    fn draw(&self, c: &mut Canvas) -> FaceBox {
        let Face {
            cx,
            cy,
            rx,
            ry,
            skin,
            ..
        } = *self;
        let shade = |r: f64, k: f64| {
            let f = if self.shaded { 1.0 - 0.4 * r * r } else { 1.0 };
            let f = f * k;
            [skin[0], skin[1], skin[2]].map(|v| (v as f64 * f).round() as u8)
        };
        if self.clothes {
            c.ellipse(cx, cy + 2.2 * ry, 2.0 * rx, ry, |_| [50, 60, 110]);
        }
        c.rect(
            (cx - 0.35 * rx) as usize,
            (cy + 0.5 * ry) as usize,
            (cx + 0.35 * rx) as usize,
            (cy + 1.4 * ry) as usize,
            shade(0.5, 0.93),
        );
        if self.outline {
            c.ellipse(cx, cy, rx + 4.0, ry + 4.0, |_| [10, 10, 10]);
        }
        let hairline = if self.hair {
            c.ellipse(cx, cy - 0.15 * ry, 1.08 * rx, 0.95 * ry, |_| [55, 35, 25]);
            cy - 0.6 * ry
        } else {
            cy - ry
        };
        c.ellipse(cx, cy, rx, ry, |r| shade(r, 1.0));
        if self.hair {
            c.rect(
                (cx - rx) as usize,
                (cy - 1.2 * ry) as usize,
                (cx + rx) as usize + 1,
                hairline as usize,
                [55, 35, 25],
            );
        }
        for ex in [cx - 0.4 * rx, cx + 0.4 * rx] {
            c.ellipse(ex, cy - 0.1 * ry, 0.2 * rx, 0.1 * ry, |_| [245, 245, 245]);
            c.ellipse(ex, cy - 0.1 * ry, 0.08 * rx, 0.08 * ry, |_| [30, 30, 30]);
        }
        c.ellipse(cx, cy + 0.5 * ry, 0.4 * rx, 0.1 * ry, |_| [160, 40, 50]);
        FaceBox::from_corners(cx - rx, hairline, cx + rx, cy + ry)
    }
}

fn face(cx: f64, cy: f64, rx: f64, ry: f64, skin: [u8; 3]) -> Face {
    Face {
        cx,
        cy,
        rx,
        ry,
        skin,
        shaded: false,
        hair: false,
        outline: false,
        clothes: true,
    }
}

fn assert_found(what: &str, img: &RgbImage, expected: &FaceBox) {
    let found = largest_face(&SkinFaceDetector::default(), img)
        .unwrap()
        .unwrap_or_else(|| panic!("{what}: no face found"));
    let overlap = iou(&found, expected);
    println!("{what}: found {found:?}, expected {expected:?}, IoU {overlap:.3}");
    assert!(overlap >= 0.5, "{what}: IoU {overlap}");
}

#[test]
fn finds_the_sample_portrait() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sonic-cli/assets/portrait.png");
    let img = load_image(&path).unwrap();
    // The drawn face: skin from below the fringe (y ≈ 165) to the chin (430), x 156–356.
    assert_found(
        "portrait.png",
        &img,
        &FaceBox::from_corners(156.0, 165.0, 356.0, 430.0),
    );
}

#[test]
fn finds_synthetic_faces_with_known_boxes() {
    let blue = |_: usize, y: usize| [70, 110 + (y / 8) as u8, 160];
    let cases = [
        (
            "light skin, hair",
            480,
            600,
            blue as fn(usize, usize) -> [u8; 3],
            Face {
                hair: true,
                ..face(240.0, 260.0, 110.0, 150.0, [240, 200, 170])
            },
        ),
        (
            "dark skin on grey",
            640,
            480,
            |_, _| [200, 200, 200],
            Face {
                hair: true,
                ..face(300.0, 200.0, 80.0, 105.0, [120, 75, 50])
            },
        ),
        (
            "shaded render, off centre",
            640,
            480,
            |x, _| [40, 120 + (x / 10) as u8, 70],
            Face {
                shaded: true,
                ..face(470.0, 170.0, 60.0, 80.0, [230, 180, 150])
            },
        ),
        (
            "outlined cartoon on white",
            400,
            400,
            |_, _| [255, 255, 255],
            Face {
                outline: true,
                ..face(200.0, 170.0, 90.0, 110.0, [255, 214, 170])
            },
        ),
    ];
    for (what, w, h, bg, f) in cases {
        let mut canvas = Canvas::new(w, h, bg);
        let expected = f.draw(&mut canvas);
        assert_found(what, &canvas.image(), &expected);
    }
}

#[test]
fn bare_shoulders_below_the_neck_are_not_face() {
    let skin = [225, 180, 150];
    let mut canvas = Canvas::new(512, 640, |_, y| [60, 80, 100 + (y / 10) as u8]);
    // Shoulders and chest in skin colour, wider than the face, joined to it by the neck.
    canvas.ellipse(256.0, 640.0, 250.0, 170.0, |_| skin);
    canvas.rect(120, 600, 392, 640, [70, 40, 90]);
    let expected = Face {
        hair: true,
        clothes: false,
        ..face(256.0, 260.0, 95.0, 125.0, skin)
    }
    .draw(&mut canvas);
    assert_found("bare shoulders", &canvas.image(), &expected);
}

#[test]
fn picks_the_larger_of_two_faces_and_finds_none_without_one() {
    let mut canvas = Canvas::new(640, 400, |_, _| [60, 90, 140]);
    let small = face(150.0, 150.0, 40.0, 52.0, [235, 190, 160]).draw(&mut canvas);
    let big = face(430.0, 170.0, 90.0, 115.0, [200, 150, 120]).draw(&mut canvas);
    let img = canvas.image();
    let all = SkinFaceDetector::default().detect(&img).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|d| iou(&d.face, &small) >= 0.5));
    assert_found("two faces", &img, &big);

    let mut empty = Canvas::new(320, 240, |x, y| [(x / 2) as u8, 100, (y / 2) as u8 + 80]);
    empty.rect(40, 40, 120, 200, [30, 60, 200]);
    empty.ellipse(220.0, 120.0, 50.0, 60.0, |_| [90, 200, 90]);
    let none = SkinFaceDetector::default().detect(&empty.image()).unwrap();
    assert!(none.is_empty(), "{none:?}");
    let flat = RgbImage::filled(64, 64, [230, 190, 160]).unwrap();
    let whole = SkinFaceDetector::default().detect(&flat).unwrap();
    assert!(
        whole.is_empty(),
        "a skin-coloured wall is not a face: {whole:?}"
    );
}
