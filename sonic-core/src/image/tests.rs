use std::path::{Path, PathBuf};

use ::image::{
    DynamicImage, GrayAlphaImage, GrayImage as CrateGray, ImageBuffer, ImageFormat, Rgb, Rgba,
    RgbaImage,
};

use super::*;
use crate::Error;

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

fn save(dir: &Path, name: &str, img: DynamicImage, format: ImageFormat) -> PathBuf {
    let path = dir.join(name);
    img.save_with_format(&path, format)
        .expect("encode test image");
    path
}

/// A deterministic noisy RGB image (noise compresses badly, so truncation hits pixel data).
fn noise_rgb(width: u32, height: u32) -> DynamicImage {
    let mut state = 0x2545_f491_u32;
    let data = (0..width * height * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    DynamicImage::ImageRgb8(ImageBuffer::from_raw(width, height, data).expect("buffer"))
}

fn image_error(result: crate::Result<RgbImage>) -> (ImageError, String) {
    match result {
        Err(Error::Image(e)) => {
            let msg = e.to_string();
            (e, msg)
        }
        other => panic!("expected an image error, got {other:?}"),
    }
}

#[test]
fn missing_file_is_an_io_error_naming_the_file() {
    let dir = temp_dir();
    let path = dir.path().join("absent.png");
    match load_image(&path) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("absent.png"), "{e}"),
        other => panic!("expected an io error, got {other:?}"),
    }
}

#[test]
fn empty_file_is_reported_as_empty() {
    let dir = temp_dir();
    let path = write_bytes(dir.path(), "empty.png", b"");
    let (e, msg) = image_error(load_image(&path));
    assert!(matches!(e, ImageError::Empty { .. }), "{msg}");
    assert!(msg.contains("empty.png"), "{msg}");
}

#[test]
fn random_bytes_are_not_an_image() {
    let dir = temp_dir();
    let mut bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // No format's signature starts with text.
    bytes[..4].copy_from_slice(b"junk");
    let path = write_bytes(dir.path(), "noise.jpg", &bytes);
    let (e, msg) = image_error(load_image(&path));
    assert!(matches!(e, ImageError::UnknownFormat { .. }), "{msg}");
    assert!(msg.contains("noise.jpg"), "{msg}");
}

#[test]
fn a_format_without_a_decoder_is_named() {
    let dir = temp_dir();
    let path = write_bytes(
        dir.path(),
        "anim.png",
        b"GIF89a\x40\x00\x40\x00\x00\x00\x00;",
    );
    let (e, msg) = image_error(load_image(&path));
    assert!(matches!(e, ImageError::UnsupportedFormat { .. }), "{msg}");
    assert!(msg.contains("Gif") && msg.contains("anim.png"), "{msg}");
}

#[test]
fn truncated_png_is_corrupt() {
    let dir = temp_dir();
    let full = save(dir.path(), "full.png", noise_rgb(96, 80), ImageFormat::Png);
    let bytes = std::fs::read(&full).expect("read back");
    let path = write_bytes(dir.path(), "cut.png", &bytes[..bytes.len() / 2]);
    let (e, msg) = image_error(load_image(&path));
    assert!(matches!(e, ImageError::Corrupt { .. }), "{msg}");
    assert!(msg.contains("cut.png"), "{msg}");
}

#[test]
fn tiny_image_is_too_small_for_a_portrait() {
    let dir = temp_dir();
    let path = save(dir.path(), "tiny.png", noise_rgb(10, 10), ImageFormat::Png);
    let (e, msg) = image_error(load_image(&path));
    assert!(
        matches!(
            e,
            ImageError::TooSmall {
                width: 10,
                height: 10,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("tiny.png") && msg.contains("10×10") && msg.contains("at least 64×64"),
        "{msg}"
    );
    // One side at the minimum and the other below is still refused.
    let path = save(dir.path(), "thin.png", noise_rgb(64, 63), ImageFormat::Png);
    assert!(matches!(
        image_error(load_image(&path)).0,
        ImageError::TooSmall { .. }
    ));
}

#[test]
fn rgb_png_loads_unchanged() {
    let dir = temp_dir();
    let src = noise_rgb(70, 65);
    let path = save(dir.path(), "rgb.png", src.clone(), ImageFormat::Png);
    let img = load_image(&path).expect("load");
    assert_eq!((img.width(), img.height()), (70, 65));
    assert_eq!(img.data(), src.as_bytes());
}

#[test]
fn grayscale_is_replicated_to_rgb() {
    let dir = temp_dir();
    let gray = CrateGray::from_fn(64, 66, |x, y| [((x * 3 + y) % 256) as u8].into());
    let path = save(dir.path(), "gray.png", gray.into(), ImageFormat::Png);
    let img = load_image(&path).expect("load");
    assert_eq!(img.pixel(5, 7), Some([22, 22, 22]));
    assert_eq!(img.pixel(63, 65), Some([254, 254, 254]));

    let gray_alpha = GrayAlphaImage::from_fn(64, 64, |x, _| [x as u8, 0].into());
    let path = save(dir.path(), "la.png", gray_alpha.into(), ImageFormat::Png);
    assert_eq!(
        load_image(&path).expect("load").pixel(9, 3),
        Some([9, 9, 9])
    );
}

#[test]
fn alpha_is_dropped_not_composited() {
    let dir = temp_dir();
    let rgba = RgbaImage::from_fn(64, 64, |x, y| Rgba([x as u8, y as u8, 200, (x * 4) as u8]));
    let path = save(dir.path(), "rgba.png", rgba.into(), ImageFormat::Png);
    let img = load_image(&path).expect("load");
    // Fully transparent pixels keep their colour, as with Pillow's convert("RGB").
    assert_eq!(img.pixel(0, 5), Some([0, 5, 200]));
    assert_eq!(img.pixel(40, 2), Some([40, 2, 200]));
}

#[test]
fn sixteen_bit_samples_keep_their_high_byte() {
    let dir = temp_dir();
    let rgb16 = ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(64, 64, |x, _| {
        Rgb([0x80ff, 0x00ff, (x as u16) << 10])
    });
    let path = save(dir.path(), "deep.png", rgb16.into(), ImageFormat::Png);
    let img = load_image(&path).expect("load");
    assert_eq!(img.pixel(3, 0), Some([0x80, 0x00, 12]));
}

#[test]
fn bmp_and_webp_load() {
    let dir = temp_dir();
    let src = noise_rgb(64, 72);
    for (name, format) in [("p.bmp", ImageFormat::Bmp), ("p.webp", ImageFormat::WebP)] {
        let path = save(dir.path(), name, src.clone(), format);
        let img = load_image(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.data(), src.as_bytes(), "{name} is lossless");
    }
}

#[test]
fn jpeg_loads_at_its_size() {
    let dir = temp_dir();
    let path = save(dir.path(), "p.jpg", noise_rgb(80, 64), ImageFormat::Jpeg);
    let img = load_image(&path).expect("load");
    assert_eq!((img.width(), img.height()), (80, 64));
}

#[test]
fn resize_dims_round_ties_to_even() {
    // 800/64 = 12.5 rounds down to 12, 864/64 = 13.5 up to 14, 672/64 = 10.5 down to 10.
    assert_eq!(sonic_resize_dims(512, 800, 512).unwrap(), (512, 768));
    assert_eq!(sonic_resize_dims(512, 864, 512).unwrap(), (512, 896));
    assert_eq!(sonic_resize_dims(672, 512, 512).unwrap(), (640, 512));
    // Scaled first: 400·2/64 = 12.5.
    assert_eq!(sonic_resize_dims(256, 400, 512).unwrap(), (512, 768));
    // The short side itself: 100/64 = 1.5625 rounds to 2.
    assert_eq!(sonic_resize_dims(100, 100, 100).unwrap(), (128, 128));
}

#[test]
fn resize_dims_of_common_sizes() {
    assert_eq!(sonic_resize_dims(1920, 1080, 512).unwrap(), (896, 512));
    assert_eq!(sonic_resize_dims(1080, 1920, 512).unwrap(), (512, 896));
    assert_eq!(sonic_resize_dims(640, 480, 512).unwrap(), (704, 512));
    assert_eq!(sonic_resize_dims(1000, 1000, 512).unwrap(), (512, 512));
    assert_eq!(sonic_resize_dims(157, 211, 128).unwrap(), (128, 192));
}

#[test]
fn resize_dims_refuse_empty_results() {
    assert!(sonic_resize_dims(0, 100, 512).is_err());
    assert!(sonic_resize_dims(100, 100, 0).is_err());
    // 16/64 rounds to 0.
    assert!(sonic_resize_dims(100, 100, 16).is_err());
}

#[test]
fn resize_to_the_same_size_is_a_copy() {
    let img = RgbImage::new(5, 4, (0..60).collect()).unwrap();
    assert_eq!(resize_lanczos(&img, 5, 4).unwrap(), img);
}

#[test]
fn resize_rounds_halves_up_like_pillow() {
    // Halving 2 → 1 pixel weighs both by one half: (10 + 21) / 2 = 15.5 becomes 16.
    let img = GrayImage::new(2, 1, vec![10, 21]).unwrap();
    assert_eq!(resize_bicubic(&img, 1, 1).unwrap().data(), &[16]);
}

#[test]
fn resize_keeps_flat_images_flat() {
    for value in [0u8, 77, 255] {
        let img = RgbImage::filled(37, 23, [value, 255 - value, value / 2]).unwrap();
        for (w, h) in [(11, 7), (90, 51), (37, 9), (5, 23)] {
            for filter in [Filter::Lanczos, Filter::Bicubic] {
                let out = resize(&img, w, h, filter).unwrap();
                assert_eq!(
                    out,
                    RgbImage::filled(w, h, [value, 255 - value, value / 2]).unwrap()
                );
            }
        }
    }
}

#[test]
fn resize_refuses_an_empty_target() {
    let img = RgbImage::filled(8, 8, [1, 2, 3]).unwrap();
    assert!(resize_lanczos(&img, 0, 8).is_err());
    assert!(resize_bicubic(&img, 8, 0).is_err());
}

#[test]
fn image_new_checks_the_buffer() {
    assert!(RgbImage::new(2, 2, vec![0; 11]).is_err());
    assert!(RgbImage::new(0, 2, vec![]).is_err());
    assert!(GrayImage::new(3, 2, vec![0; 6]).is_ok());
    assert!(RgbImage::filled(usize::MAX, 2, [0; 3]).is_err());
    let img = GrayImage::filled(4, 4, [9]).unwrap();
    assert!(resize_lanczos(&img, usize::MAX, 2).is_err());
}

/// Rows and columns where the mask is set: (first, end) of each.
fn mask_extent(mask: &GrayImage) -> ((usize, usize), (usize, usize)) {
    let (w, h) = (mask.width(), mask.height());
    let set: Vec<(usize, usize)> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| mask.pixel(x, y) == Some([255]))
        .collect();
    let xs = set.iter().map(|p| p.0);
    let ys = set.iter().map(|p| p.1);
    let cols = (xs.clone().min().unwrap(), xs.max().unwrap() + 1);
    let rows = (ys.clone().min().unwrap(), ys.max().unwrap() + 1);
    // Everything inside the extent is set: it is one rectangle.
    assert_eq!(set.len(), (cols.1 - cols.0) * (rows.1 - rows.0));
    (cols, rows)
}

#[test]
fn mask_is_clamped_at_the_top_left() {
    let face = FaceBox {
        x: 0.0,
        y: 0.0,
        w: 20.0,
        h: 30.0,
    };
    // Centre (10, 15), half sizes 22//2 = 11 and 33//2 = 16.
    let mask = face_mask_image(&face, 100, 90, 1.1).unwrap();
    assert_eq!(mask_extent(&mask), ((0, 21), (0, 31)));
}

#[test]
fn mask_is_clamped_at_the_bottom_right() {
    let face = FaceBox {
        x: 90.0,
        y: 80.0,
        w: 20.0,
        h: 30.0,
    };
    // Centre (100, 95): columns 89..111 and rows 79..111, cut at the image's 100 × 90.
    let mask = face_mask_image(&face, 100, 90, 1.1).unwrap();
    assert_eq!(mask_extent(&mask), ((89, 100), (79, 90)));
}

#[test]
fn mask_centre_and_half_sizes_are_floored() {
    let face = FaceBox {
        x: 10.5,
        y: 20.0,
        w: 5.0,
        h: 9.0,
    };
    // Centre floor(13.0) = 13, floor(24.5) = 24; half sizes floor(2.75) = 2, floor(4.95) = 4.
    let mask = face_mask_image(&face, 64, 64, 1.1).unwrap();
    assert_eq!(mask_extent(&mask), ((11, 15), (20, 28)));
}

#[test]
fn mask_tensor_is_zeros_and_ones() {
    let face = FaceBox {
        x: 8.0,
        y: 4.0,
        w: 10.0,
        h: 6.0,
    };
    let t = face_mask(&face, 32, 16, FACE_MASK_SCALE).unwrap();
    assert_eq!(t.dims(), &[1, 1, 16, 32]);
    let v = t.to_vec().unwrap();
    assert!(v.iter().all(|&x| x == 0.0 || x == 1.0));
    assert_eq!(v[7 * 32 + 13], 1.0);
    assert_eq!(v[0], 0.0);
}

#[test]
fn mask_refuses_boxes_it_cannot_draw() {
    let bad = [
        FaceBox {
            x: 200.0,
            y: 10.0,
            w: 20.0,
            h: 20.0,
        },
        FaceBox {
            x: -80.0,
            y: 10.0,
            w: 20.0,
            h: 20.0,
        },
        FaceBox {
            x: f64::NAN,
            y: 10.0,
            w: 20.0,
            h: 20.0,
        },
        FaceBox {
            x: 10.0,
            y: 10.0,
            w: 0.0,
            h: 20.0,
        },
    ];
    for face in bad {
        assert!(face_mask_image(&face, 100, 100, 1.1).is_err(), "{face:?}");
    }
}

#[test]
fn reference_tensor_is_channel_first_in_minus_one_to_one() {
    let img = RgbImage::new(2, 1, vec![0, 255, 128, 10, 20, 30]).unwrap();
    let t = reference_tensor(&img).unwrap();
    assert_eq!(t.dims(), &[1, 3, 1, 2]);
    let v = t.to_vec().unwrap();
    let f = |b: u8| (f32::from(b) / 255.0 - 0.5) / 0.5;
    assert_eq!(v, [-1.0, f(10), 1.0, f(20), f(128), f(30)]);
}

#[test]
fn clip_pixel_values_are_224_square_and_normalised() {
    let img = RgbImage::filled(100, 60, [255, 0, 128]).unwrap();
    let t = clip_pixel_values(&img).unwrap();
    assert_eq!(t.dims(), &[1, 3, CLIP_SIZE, CLIP_SIZE]);
    let v = t.to_vec().unwrap();
    let plane = CLIP_SIZE * CLIP_SIZE;
    let expect =
        |c: usize, b: u8| ((f64::from(b) * (1.0 / 255.0)) as f32 - CLIP_MEAN[c]) / CLIP_STD[c];
    assert_eq!(v[0], expect(0, 255));
    assert_eq!(v[plane + 17], expect(1, 0));
    assert_eq!(v[2 * plane + plane - 1], expect(2, 128));
}

#[test]
fn prepare_at_the_working_size_keeps_image_and_hard_mask() {
    let img = RgbImage::filled(512, 640, [90, 60, 30]).unwrap();
    let face = FaceBox {
        x: 200.0,
        y: 200.0,
        w: 100.0,
        h: 120.0,
    };
    let prepared = ImagePrep::default().prepare(&img, &face).unwrap();
    assert_eq!(prepared.image, img);
    assert_eq!(prepared.reference.dims(), &[1, 3, 640, 512]);
    assert_eq!(prepared.clip_pixel_values.dims(), &[1, 3, 224, 224]);
    let mask = prepared.face_mask.to_vec().unwrap();
    assert!(mask.iter().all(|&x| x == 0.0 || x == 1.0));
}

#[test]
fn prepare_resizes_image_and_mask_together() {
    let img = RgbImage::filled(300, 400, [90, 60, 30]).unwrap();
    let face = FaceBox {
        x: 100.0,
        y: 120.0,
        w: 100.0,
        h: 120.0,
    };
    let prepared = ImagePrep::default().prepare(&img, &face).unwrap();
    // 512/300 scales 400 to 682.7, which is 10.67 × 64 → 11 × 64.
    assert_eq!(
        (prepared.image.width(), prepared.image.height()),
        (512, 704)
    );
    assert_eq!(prepared.face_mask.dims(), &[1, 1, 704, 512]);
    let mask = prepared.face_mask.to_vec().unwrap();
    // LANCZOS leaves soft edges between 0 and 1.
    assert!(mask.iter().any(|&x| x > 0.0 && x < 1.0));
    assert!(mask.iter().all(|&x| (0.0..=1.0).contains(&x)));
}
