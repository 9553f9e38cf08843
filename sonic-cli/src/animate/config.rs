//! `sonic animate`'s settings from three layers: the reference's defaults, a TOML file
//! (`--config`), and the command line, each overriding the one before.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use sonic_core::image::FaceBox;
use sonic_core::pipeline::{AnimateOptions, WeightOverrides};

/// Every setting of a run. On the command line each is a flag; in the TOML file each is a
/// key of the same name (`image-cfg = 2.0`), with paths relative to the file.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// The portrait: PNG, JPEG, WebP or BMP.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// The speech or song: WAV, MP3 or FLAC.
    #[arg(long, value_name = "FILE")]
    pub audio: Option<PathBuf>,
    /// The video to write (.mp4 or .gif), or the folder of PNG frames with --format png.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// mp4, png or gif; by default from the output's extension.
    #[arg(long)]
    pub format: Option<String>,
    /// Replace an existing output.
    #[arg(long)]
    #[serde(default)]
    pub overwrite: bool,

    /// A folder laid out as the reference downloads it (Sonic/, stable-video-diffusion-img2vid-xt/,
    /// whisper-tiny/). Without it, the embedded untrained demo model runs.
    #[arg(long, value_name = "DIR")]
    pub weights: Option<PathBuf>,
    /// The folder with unet, audio2token and audio2bucket (.pth or .safetensors).
    #[arg(long, value_name = "DIR")]
    pub sonic_dir: Option<PathBuf>,
    /// The Stable Video Diffusion img2vid-xt folder (vae/, image_encoder/, unet/config.json).
    #[arg(long, value_name = "DIR")]
    pub svd_dir: Option<PathBuf>,
    /// The whisper-tiny folder.
    #[arg(long, value_name = "DIR")]
    pub whisper_dir: Option<PathBuf>,
    /// RIFE's flownet.pkl [default: RIFE/flownet.pkl in --weights, when present].
    #[arg(long, value_name = "FILE")]
    pub rife: Option<PathBuf>,
    /// YOLOv5m-face weights: yoloface_v5m.pt as downloaded, or a state dict export [default:
    /// yoloface_v5m.pt in --weights, when present; else the built-in skin-tone detector].
    #[arg(long, value_name = "FILE")]
    pub yolo_face: Option<PathBuf>,

    /// cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Weight storage of the UNet, VAE and image encoder: f32 (the CPU's only choice), f16, bf16.
    #[arg(long)]
    pub dtype: Option<String>,

    /// Denoising steps [default: 25].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Long-video schedule, e.g. shift:alpha=7, overlap:o=8, tiles [default: shift:alpha=7].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Sampler: euler, euler-ancestral, heun, dpmpp-2m or a plugin's [default: euler].
    #[arg(long)]
    pub sampler: Option<String>,
    /// Audio encoder: whisper (from the weights) or a plugin's [default: whisper].
    #[arg(long)]
    pub audio_encoder: Option<String>,
    /// Image guidance scale [default: 2.0].
    #[arg(long)]
    pub image_cfg: Option<f32>,
    /// Audio guidance scale [default: 7.5].
    #[arg(long)]
    pub audio_cfg: Option<f32>,
    /// Motion strength: multiplies both motion buckets [default: 1.0].
    #[arg(long)]
    pub dynamic_scale: Option<f32>,
    /// Noise seed; a random one is drawn and printed when not given.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The fps conditioning given to the UNet [default: 12.5]. Frames always follow the audio
    /// at 12.5 per second.
    #[arg(long)]
    pub fps: Option<f32>,
    /// Short side of the working size, rounded to multiples of 64 [default: the model's,
    /// 512 for the real weights, 192 for the demo model].
    #[arg(long)]
    pub size: Option<usize>,
    /// The face in the portrait's pixels as x,y,w,h [default: the middle half of the width,
    /// 15%–75% of the height].
    #[arg(long, value_name = "X,Y,W,H")]
    pub face_box: Option<String>,
    /// Frames per VAE decode call [default: 8].
    #[arg(long)]
    pub decode_chunk: Option<usize>,
    /// Refuse longer audio [default: 900].
    #[arg(long)]
    pub max_audio_seconds: Option<f64>,
    /// Crop the portrait to a square around the face first, as the reference's --crop.
    #[arg(long)]
    #[serde(default)]
    pub crop: bool,
    /// Frame interpolation to 25 fps: auto (RIFE when its weights are there), rife or none
    /// [default: auto].
    #[arg(long)]
    pub interpolate: Option<String>,
}

impl Settings {
    /// Reads a TOML settings file; its relative paths are taken from the file's folder.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the config file", path.display()))?;
        let mut s: Settings = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for p in [
            &mut s.image,
            &mut s.audio,
            &mut s.output,
            &mut s.weights,
            &mut s.sonic_dir,
            &mut s.svd_dir,
            &mut s.whisper_dir,
            &mut s.rife,
            &mut s.yolo_face,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(s)
    }

    /// `self` with every setting it lacks taken from `base`.
    pub fn over(self, base: Settings) -> Settings {
        macro_rules! pick {
            ($($f:ident),*) => { Settings {
                $($f: self.$f.or(base.$f),)*
                overwrite: self.overwrite || base.overwrite,
                crop: self.crop || base.crop,
            } };
        }
        pick!(
            image,
            audio,
            output,
            format,
            weights,
            sonic_dir,
            svd_dir,
            whisper_dir,
            rife,
            yolo_face,
            device,
            dtype,
            steps,
            schedule,
            sampler,
            audio_encoder,
            image_cfg,
            audio_cfg,
            dynamic_scale,
            seed,
            fps,
            size,
            face_box,
            decode_chunk,
            max_audio_seconds,
            interpolate
        )
    }

    /// The pipeline options, with `seed` standing in for a missing one.
    pub fn options(&self, seed: u64) -> anyhow::Result<AnimateOptions> {
        let d = AnimateOptions::default();
        Ok(AnimateOptions {
            steps: self.steps.unwrap_or(d.steps),
            schedule: self.schedule.clone().unwrap_or(d.schedule),
            sampler: self.sampler.clone().unwrap_or(d.sampler),
            audio_encoder: self.audio_encoder.clone().unwrap_or(d.audio_encoder),
            image_cfg: self.image_cfg.unwrap_or(d.image_cfg),
            audio_cfg: self.audio_cfg.unwrap_or(d.audio_cfg),
            dynamic_scale: self.dynamic_scale.unwrap_or(d.dynamic_scale),
            audio_scale: d.audio_scale,
            seed: self.seed.unwrap_or(seed),
            fps: self.fps.unwrap_or(d.fps),
            short_side: self.size,
            face_box: self.face_box.as_deref().map(parse_face_box).transpose()?,
            decode_chunk: self.decode_chunk.unwrap_or(d.decode_chunk),
            max_audio_seconds: self.max_audio_seconds.unwrap_or(d.max_audio_seconds),
            crop: self.crop,
            interpolate: match &self.interpolate {
                Some(i) => i.parse()?,
                None => d.interpolate,
            },
        })
    }

    pub fn weight_overrides(&self) -> WeightOverrides {
        WeightOverrides {
            sonic: self.sonic_dir.clone(),
            svd: self.svd_dir.clone(),
            whisper: self.whisper_dir.clone(),
            rife: self.rife.clone(),
            yolo_face: self.yolo_face.clone(),
        }
    }

    /// Whether real weights were asked for.
    pub fn wants_weights(&self) -> bool {
        self.weights.is_some()
            || self.sonic_dir.is_some()
            || self.svd_dir.is_some()
            || self.whisper_dir.is_some()
            || self.rife.is_some()
            || self.yolo_face.is_some()
    }
}

fn parse_face_box(s: &str) -> anyhow::Result<FaceBox> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--face-box {s}: expected four numbers x,y,w,h"))?;
    match v[..] {
        [x, y, w, h] => Ok(FaceBox { x, y, w, h }),
        _ => anyhow::bail!("--face-box {s}: expected four numbers x,y,w,h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.toml");
        std::fs::write(
            &file,
            "image = \"face.png\"\nsteps = 10\nimage-cfg = 1.5\nface-box = \"1,2,30,40\"\noverwrite = true\n",
        )
        .unwrap();
        let from_file = Settings::from_file(&file).unwrap();
        assert_eq!(from_file.image, Some(dir.path().join("face.png")));
        let cli = Settings {
            steps: Some(4),
            ..Settings::default()
        };
        let merged = cli.over(from_file);
        let opts = merged.options(9).unwrap();
        assert_eq!((opts.steps, opts.image_cfg, opts.audio_cfg), (4, 1.5, 7.5));
        assert_eq!(opts.seed, 9);
        assert_eq!(
            opts.face_box,
            Some(FaceBox {
                x: 1.0,
                y: 2.0,
                w: 30.0,
                h: 40.0
            })
        );
        assert!(merged.overwrite);

        std::fs::write(&file, "stepz = 3\n").unwrap();
        let err = Settings::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("stepz"), "{err}");
        assert!(parse_face_box("1,2,3").is_err());
    }
}
