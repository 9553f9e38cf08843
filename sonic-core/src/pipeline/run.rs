//! One animation: inputs checked and prepared, encoders, the long-video denoising loop,
//! and chunked decoding handed frame by frame to the caller.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::models::ModelSet;
use super::options::{default_face_box, AnimateOptions, Interpolate};
use super::progress::{Progress, Stage};
use crate::audio::{load_audio, video_frames, Audio16k, SAMPLE_RATE};
use crate::image::{crop_to_face, load_image, FaceBox, ImagePrep, PreparedImage, FACE_MASK_SCALE};
use crate::models::face::largest_face;
use crate::models::rife::{FrameDoubler, FrameInterpolator};
use crate::models::unet::{SonicConditioning, SonicDenoiser};
use crate::rng::FrameNoise;
use crate::sampling::{GuidanceSchedule, MultiCondGuidance, SvdSchedule};
use crate::schedule::{scheduler, Counting, WindowDenoiser};
use crate::{registry, Error, Result, Shape, Tensor};

/// Generated frames per second: one per two 40 ms audio units, as the reference.
pub const OUTPUT_FPS: f32 = 12.5;

/// Where the face box came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceSource {
    Given,
    Detected,
    /// Nothing was detected: the default box.
    Default,
}

/// The inputs of a run, checked and preprocessed on the CPU.
pub struct Prepared {
    pub image: PreparedImage,
    pub audio: Audio16k,
    /// The face in the (cropped) portrait's pixels.
    pub face_box: FaceBox,
    pub face_source: FaceSource,
    /// Video frames the audio gives.
    pub frames: usize,
}

impl Prepared {
    pub fn width(&self) -> usize {
        self.image.image.width()
    }

    pub fn height(&self) -> usize {
        self.image.image.height()
    }
}

/// Everything the denoiser is conditioned on, and the latent the video starts from.
pub struct Encoded {
    pub conditioning: SonicConditioning,
    /// The reference's latent mean × the VAE's scaling factor, `[1, C, h, w]`.
    pub reference_latent: Tensor,
}

/// Seconds spent in each stage.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageTimings {
    pub prepare_s: f64,
    pub encode_s: f64,
    pub denoise_s: f64,
    pub decode_s: f64,
}

/// What a run did, for `--json` and logs.
#[derive(Clone, Debug, Serialize)]
pub struct AnimateReport {
    /// Frames generated, one per 80 ms of audio.
    pub frames: usize,
    /// Frames written: with interpolation 2·frames (RIFE's 2·frames − 1 and the last one
    /// held for a frame period).
    pub output_frames: usize,
    pub fps: f32,
    pub interpolated: bool,
    pub width: usize,
    pub height: usize,
    pub audio_seconds: f64,
    pub seed: u64,
    pub steps: usize,
    pub schedule: String,
    pub sampler: String,
    pub audio_encoder: String,
    pub face_box: FaceBox,
    pub face_source: FaceSource,
    pub denoiser_calls: usize,
    pub frame_evaluations: usize,
    /// False for the demo model, whose video is not a talking face.
    pub trained: bool,
    pub timings: StageTimings,
}

/// The Sonic pipeline over a loaded model set.
pub struct SonicPipeline {
    pub models: ModelSet,
}

impl SonicPipeline {
    pub fn new(models: ModelSet) -> Self {
        SonicPipeline { models }
    }

    /// Loads and checks the portrait and the audio: a missing, unreadable, tiny or corrupt
    /// file, audio shorter than one frame or longer than the limit, or a face box outside
    /// the image is an error naming the file and the problem.
    pub fn prepare(&self, image: &Path, audio: &Path, opts: &AnimateOptions) -> Result<Prepared> {
        check_options(opts)?;
        let mut portrait = load_image(image)?;
        let (w, h) = (portrait.width(), portrait.height());
        let (mut face_box, face_source) = match opts.face_box {
            Some(b) => (check_face_box(b, w, h)?, FaceSource::Given),
            None => match largest_face(self.models.face_detector.as_ref(), &portrait)? {
                Some(b) => (b, FaceSource::Detected),
                None => {
                    tracing::warn!(
                        "{}: no face found; using the default box (the middle half of the width, 15-75 % of the height); pass --face-box x,y,w,h to place it",
                        image.display()
                    );
                    (default_face_box(w, h), FaceSource::Default)
                }
            },
        };
        if opts.crop {
            let (cropped, at) = crop_to_face(&portrait, &face_box)?;
            portrait = cropped;
            face_box.x -= at.x1 as f64;
            face_box.y -= at.y1 as f64;
        }
        let short_side = opts.short_side.unwrap_or(self.models.short_side);
        let prep = ImagePrep {
            short_side,
            mask_scale: FACE_MASK_SCALE,
        };
        let image_prepared = prep.prepare(&portrait, &face_box)?;
        let audio_data = load_audio(audio)?;
        let seconds = audio_data.duration().as_secs_f64();
        if seconds > opts.max_audio_seconds {
            return Err(Error::file(
                audio,
                format!(
                    "the audio is {seconds:.1} s long, over the limit of {} s (raise it with --max-audio-seconds)",
                    opts.max_audio_seconds
                ),
            ));
        }
        let frames = video_frames(audio_data.samples.len());
        if frames == 0 {
            return Err(Error::file(
                audio,
                format!(
                    "the audio is {:.3} s long; one video frame needs 0.08 s",
                    seconds
                ),
            ));
        }
        Ok(Prepared {
            image: image_prepared,
            audio: audio_data,
            face_box,
            face_source,
            frames,
        })
    }

    /// Runs the encoders: CLIP on the portrait, the VAE on the reference, the audio encoder
    /// and the audio conditioner on the audio.
    pub fn encode(
        &self,
        prepared: &Prepared,
        opts: &AnimateOptions,
        progress: &mut dyn Progress,
    ) -> Result<Encoded> {
        let m = &self.models;
        let device = m.device;
        progress.begin(Stage::Encode, 4);
        let clip_input = prepared.image.clip_pixel_values.to_device(device)?;
        if m.image_encoder.image_size() != clip_input.dims()[2] {
            return Err(Error::invalid(
                "image encoder",
                format!(
                    "takes {0}×{0} images; the pipeline prepares {1}×{1}",
                    m.image_encoder.image_size(),
                    clip_input.dims()[2]
                ),
            ));
        }
        let image_embeds = m.image_encoder.encode(&clip_input)?;
        progress.advance(1);
        let latent_mean = m.vae.encode(&prepared.image.reference.to_device(device)?)?;
        let reference_latent = latent_mean.mul_scalar(m.vae.scaling_factor())?;
        progress.advance(1);
        let info = m.audio_encoder.info();
        if info.sample_rate != SAMPLE_RATE {
            return Err(Error::invalid(
                "audio encoder",
                format!(
                    "`{}` takes {} Hz audio; the pipeline feeds {SAMPLE_RATE} Hz",
                    m.audio_encoder_name, info.sample_rate
                ),
            ));
        }
        let samples = &prepared.audio.samples;
        let hidden = m.audio_encoder.encode(samples)?;
        progress.advance(1);
        let audio =
            m.conditioner
                .condition(&hidden, samples.len(), &image_embeds, opts.dynamic_scale);
        let audio = audio.map_err(|e| {
            Error::invalid(
                "audio encoder",
                format!(
                    "`{}` gives {} hidden states of width {}, which the audio conditioner cannot take: {e}",
                    m.audio_encoder_name, info.layers, info.hidden_size
                ),
            )
        })?;
        drop(hidden);
        progress.advance(1);
        progress.end();
        Ok(Encoded {
            conditioning: SonicConditioning {
                image_embeds,
                image_latent: latent_mean,
                audio_tokens: audio.tokens,
                uncond_audio_tokens: audio.uncond_tokens,
                buckets: audio.buckets,
                face_mask: Some(prepared.image.face_mask.to_device(device)?),
                fps: opts.fps,
                audio_scale: opts.audio_scale,
            },
            reference_latent,
        })
    }

    /// The guided UNet over `encoded`'s conditioning, as the long-video scheduler sees it.
    pub fn denoiser(&self, encoded: &Encoded, opts: &AnimateOptions) -> Result<SonicDenoiser<'_>> {
        let guidance = MultiCondGuidance {
            image: GuidanceSchedule::constant(opts.image_cfg),
            audio: GuidanceSchedule::constant(opts.audio_cfg),
        };
        SonicDenoiser::new(
            &self.models.unet,
            encoded.conditioning.clone(),
            guidance,
            opts.steps,
        )
    }

    /// The interpolator the run uses, if any: an error when RIFE is asked for without weights.
    pub fn interpolator(&self, opts: &AnimateOptions) -> Result<Option<&dyn FrameInterpolator>> {
        let available = self.models.interpolator.as_deref();
        match (opts.interpolate, available) {
            (Interpolate::None, _) => Ok(None),
            (Interpolate::Auto, found) => Ok(found),
            (Interpolate::Rife, Some(rife)) => Ok(Some(rife)),
            (Interpolate::Rife, None) => Err(Error::invalid(
                "interpolate",
                "rife needs its weights: put RIFE/flownet.pkl in the weights folder or pass --rife FILE",
            )),
        }
    }

    /// Frames per second of the written video: doubled by interpolation.
    pub fn output_fps(&self, opts: &AnimateOptions) -> Result<f32> {
        Ok(match self.interpolator(opts)? {
            Some(_) => 2.0 * OUTPUT_FPS,
            None => OUTPUT_FPS,
        })
    }

    /// The whole run after [`prepare`](Self::prepare): frames go to `frame` as packed RGB8
    /// rows (`width·height·3` bytes) in order, as each decoded chunk is ready.
    pub fn generate(
        &self,
        prepared: &Prepared,
        opts: &AnimateOptions,
        progress: &mut dyn Progress,
        frame: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<AnimateReport> {
        let mut timings = StageTimings::default();
        let clock = Instant::now();
        let encoded = self.encode(prepared, opts, progress)?;
        timings.encode_s = clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let schedule = scheduler(&opts.schedule)?;
        let mut sampler = registry::sampler(&opts.sampler)?;
        let sigmas = SvdSchedule::default().sigmas(opts.steps);
        let mut denoiser = self.denoiser(&encoded, opts)?;
        let window = denoiser.native_window();
        let frames = prepared.frames;
        let cost = schedule.cost(frames, window, sampler.as_ref(), &sigmas)?;
        let start = initial_latents(&encoded.reference_latent, frames, sigmas[0], opts.seed)?;
        progress.begin(Stage::Denoise, cost.denoiser_calls as u64);
        let mut ticking = Ticking {
            inner: &mut denoiser,
            progress: &mut *progress,
        };
        let mut counting = Counting {
            inner: &mut ticking,
            calls: 0,
            frames: 0,
        };
        let latents = schedule.run(
            start,
            window,
            &sigmas,
            sampler.as_mut(),
            &mut counting,
            opts.seed,
        )?;
        let (calls, evaluations) = (counting.calls, counting.frames);
        progress.end();
        drop(denoiser);
        timings.denoise_s = clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let interpolator = self.interpolator(opts)?;
        let mut doubler = interpolator.map(FrameDoubler::new);
        // RIFE gives 2F − 1 frames; the last is held for one more frame period so the video
        // spans the F generated frames' 80 ms each, and ends with the audio as without it.
        let output_frames = match doubler {
            Some(_) => 2 * frames,
            None => frames,
        };
        progress.begin(Stage::Decode, output_frames as u64);
        let mut rgb = Vec::new();
        let mut emit = |f: &Tensor| -> Result<()> {
            if progress.cancelled() {
                return Err(Error::invalid("animate", "interrupted"));
            }
            to_rgb8(&f.to_vec()?, &mut rgb);
            frame(&rgb)?;
            progress.advance(1);
            Ok(())
        };
        self.models
            .vae
            .decode_chunks(&latents, opts.decode_chunk, &mut |chunk| {
                let n = chunk.dims()[0];
                let unit = chunk.affine(0.5, 0.5)?.clamp(0.0, 1.0)?;
                for i in 0..n {
                    let one = unit.narrow(0, i, 1)?;
                    match doubler.as_mut() {
                        Some(d) => d.push(one)?.iter().try_for_each(&mut emit)?,
                        None => emit(&one)?,
                    }
                }
                Ok(())
            })?;
        if doubler.is_some() {
            frame(&rgb)?;
            progress.advance(1);
        }
        progress.end();
        timings.decode_s = clock.elapsed().as_secs_f64();

        Ok(AnimateReport {
            frames,
            output_frames,
            fps: self.output_fps(opts)?,
            interpolated: interpolator.is_some(),
            width: prepared.width(),
            height: prepared.height(),
            audio_seconds: prepared.audio.duration().as_secs_f64(),
            seed: opts.seed,
            steps: opts.steps,
            schedule: schedule.spec(),
            sampler: opts.sampler.clone(),
            audio_encoder: self.models.audio_encoder_name.clone(),
            face_box: prepared.face_box,
            face_source: prepared.face_source,
            denoiser_calls: calls,
            frame_evaluations: evaluations,
            trained: self.models.trained(),
            timings,
        })
    }
}

fn check_options(opts: &AnimateOptions) -> Result<()> {
    let bad = |what: &str| Err(Error::invalid("animate", what.to_string()));
    if opts.steps == 0 {
        return bad("--steps must be at least 1");
    }
    if opts.decode_chunk == 0 {
        return bad("the decode chunk must be at least 1 frame");
    }
    for (name, v) in [
        ("--image-cfg", opts.image_cfg),
        ("--audio-cfg", opts.audio_cfg),
        ("--dynamic-scale", opts.dynamic_scale),
        ("--audio-scale", opts.audio_scale),
    ] {
        if !v.is_finite() {
            return bad(&format!("{name} must be a finite number"));
        }
    }
    if !(opts.fps.is_finite() && opts.fps > 0.0) {
        return bad("--fps must be a positive number");
    }
    if opts.max_audio_seconds.is_nan() || opts.max_audio_seconds <= 0.0 {
        return bad("--max-audio-seconds must be positive");
    }
    if opts.short_side.is_some_and(|s| s < 64) {
        return bad("--size must be at least 64");
    }
    Ok(())
}

/// A given face box must have a positive size and overlap the image.
fn check_face_box(b: FaceBox, width: usize, height: usize) -> Result<FaceBox> {
    let finite = [b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite());
    let overlaps = b.x < width as f64 && b.y < height as f64 && b.x + b.w > 0.0 && b.y + b.h > 0.0;
    if !finite || b.w <= 0.0 || b.h <= 0.0 || !overlaps {
        return Err(Error::invalid(
            "face box",
            format!(
                "{},{},{},{} is not a box inside the {width}×{height} portrait (x,y,w,h in pixels)",
                b.x, b.y, b.w, b.h
            ),
        ));
    }
    Ok(b)
}

/// `reference + σ_0 · noise`, the noise drawn per frame from the seed (the reference's
/// `add_noise` at the first step).
fn initial_latents(reference: &Tensor, frames: usize, sigma0: f32, seed: u64) -> Result<Tensor> {
    let frame_shape = Shape::new(reference.dims()[1..].to_vec());
    FrameNoise::new(seed)
        .frames(0, frames, &frame_shape, reference.device())?
        .mul_scalar(sigma0)?
        .add(reference)
}

/// `[3, H, W]` in [0, 1] → packed RGB8, as the reference saves: `uint8(x · 255)`, truncating.
fn to_rgb8(chw: &[f32], out: &mut Vec<u8>) {
    let plane = chw.len() / 3;
    out.clear();
    out.reserve(chw.len());
    for i in 0..plane {
        for c in 0..3 {
            out.push((chw[c * plane + i].clamp(0.0, 1.0) * 255.0) as u8);
        }
    }
}

/// Reports each denoiser call as progress and stops the run when the caller cancels.
struct Ticking<'a> {
    inner: &'a mut dyn WindowDenoiser,
    progress: &'a mut dyn Progress,
}

impl WindowDenoiser for Ticking<'_> {
    fn denoise_window(
        &mut self,
        x: &Tensor,
        sigma: f32,
        step: usize,
        frames: &[usize],
    ) -> Result<Tensor> {
        if self.progress.cancelled() {
            return Err(Error::invalid("animate", "interrupted"));
        }
        let out = self.inner.denoise_window(x, sigma, step, frames)?;
        self.progress.advance(1);
        Ok(out)
    }
}
