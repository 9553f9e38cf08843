//! The components `sonic animate` runs, loaded together: from a weights folder in the
//! reference's layout, or the demo model compiled into the binary.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::layout::WeightPaths;
use crate::models::audio2bucket::{Audio2Bucket, Audio2BucketConfig};
use crate::models::audio_proj::{AudioProjConfig, AudioProjModel};
use crate::models::clip_vision::{ClipVision, ClipVisionConfig};
use crate::models::face::{FaceDetector, SkinFaceDetector, YoloFaceDetector};
use crate::models::rife::{FrameInterpolator, Rife, RifeConfig};
use crate::models::sonic_audio::{AudioConditioner, SonicAudioConditioner};
use crate::models::unet::{UNetConfig, UNetSpatioTemporalConditionModel};
use crate::models::vae::{AutoencoderKLTemporalDecoder, Vae, VaeConfig};
use crate::models::whisper::{WhisperAudioEncoder, WhisperConfig, WhisperEncoder};
use crate::models::{AudioEncoder, ChunkedMelEncoder, ImageEncoder};
use crate::weights::{read_config, LoadReport, VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result};

/// Where a model set came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// The tiny untrained model compiled into the binary.
    Demo,
    /// Real checkpoints.
    Weights { paths: Box<WeightPaths> },
}

/// Every model of the pipeline.
pub struct ModelSet {
    pub unet: UNetSpatioTemporalConditionModel,
    pub vae: Box<dyn Vae>,
    pub image_encoder: Box<dyn ImageEncoder>,
    pub audio_encoder: Box<dyn AudioEncoder>,
    /// The name the audio encoder is registered under ("whisper" for the built-in).
    pub audio_encoder_name: String,
    pub conditioner: Box<dyn AudioConditioner>,
    /// Finds the face when no box is given.
    pub face_detector: Box<dyn FaceDetector>,
    /// Doubles the frame rate; `None` without RIFE weights.
    pub interpolator: Option<Box<dyn FrameInterpolator>>,
    pub source: ModelSource,
    /// The working size's short side when none is asked for.
    pub short_side: usize,
    /// Where the UNet, VAE and image encoder run.
    pub device: Device,
}

/// The demo model's configs (`assets/demo-model/model.json`, written by its generate.py).
#[derive(Deserialize)]
struct DemoSpec {
    short_side: usize,
    unet: UNetConfig,
    vae: VaeConfig,
    image_encoder: ClipVisionConfig,
    whisper: WhisperConfig,
    audio2token: AudioProjConfig,
    audio2bucket: Audio2BucketConfig,
    rife: RifeConfig,
}

const DEMO_SPEC: &str = include_str!("../../assets/demo-model/model.json");
static DEMO_WEIGHTS: &[u8] = include_bytes!("../../assets/demo-model/weights.safetensors");

/// The reference's working size: short side 512.
const REFERENCE_SHORT_SIDE: usize = 512;

impl ModelSet {
    /// The embedded demo model: every component in a tiny configuration with fixed random
    /// weights. It runs the whole pipeline with nothing downloaded; it is untrained.
    pub fn demo(device: Device) -> Result<Self> {
        let spec: DemoSpec = serde_json::from_str(DEMO_SPEC).map_err(|e| Error::Config {
            path: "demo-model/model.json".into(),
            msg: e.to_string(),
        })?;
        let store = Arc::new(WeightStore::from_static_safetensors(
            "demo-model/weights.safetensors",
            DEMO_WEIGHTS,
        )?);
        let vb = VarBuilder::new(store, DType::F32, device);
        let whisper = WhisperEncoder::new(&spec.whisper, &vb.pp("whisper"))?;
        let model = ModelSet {
            unet: UNetSpatioTemporalConditionModel::new(spec.unet, &vb.pp("unet"))?,
            vae: Box::new(AutoencoderKLTemporalDecoder::new(spec.vae, &vb.pp("vae"))?),
            image_encoder: Box::new(ClipVision::new(
                &spec.image_encoder,
                &vb.pp("image_encoder"),
            )?),
            audio_encoder: Box::new(ChunkedMelEncoder::new(whisper)?),
            audio_encoder_name: crate::registry::BUILTIN_AUDIO_ENCODER.into(),
            conditioner: Box::new(SonicAudioConditioner::new(
                AudioProjModel::new(spec.audio2token, &vb.pp("audio2token"))?,
                Audio2Bucket::new(spec.audio2bucket, &vb.pp("audio2bucket"))?,
            )?),
            face_detector: Box::new(SkinFaceDetector::default()),
            interpolator: Some(Box::new(Rife::new(spec.rife, &vb.pp("rife"))?)),
            source: ModelSource::Demo,
            short_side: spec.short_side,
            device,
        };
        let report = vb.report();
        if !report.is_clean() {
            return Err(Error::invalid(
                "demo model",
                format!("the embedded weights do not match their configs: {report}"),
            ));
        }
        Ok(model)
    }

    /// Loads the real checkpoints: Sonic's UNet (with SVD's UNet config), SVD's VAE and CLIP
    /// image encoder, whisper-tiny, audio2token and audio2bucket. Whisper and the audio
    /// models stay in f32, as in the reference; `dtype` is the others' storage. `loaded`
    /// hears each component's name as it finishes.
    pub fn load(
        paths: &WeightPaths,
        dtype: DType,
        device: Device,
        loaded: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        let unet = {
            let store = Arc::new(WeightStore::open(&[&paths.unet]).map_err(in_file(&paths.unet))?);
            let config: UNetConfig = read_config(&paths.unet_config)?;
            let vb = VarBuilder::new(store, dtype, device);
            let unet =
                UNetSpatioTemporalConditionModel::new(config, &vb).map_err(in_file(&paths.unet))?;
            warn_unused("unet", &vb.report());
            unet
        };
        if !unet.has_audio_adapters() {
            return Err(Error::file(
                &paths.unet,
                "has no audio adapters (to_k_ip keys): this is not Sonic's unet.pth",
            ));
        }
        loaded("unet");
        let vae = load_folder(
            &paths.vae,
            Some("fp16"),
            dtype,
            device,
            |c: VaeConfig, vb| AutoencoderKLTemporalDecoder::new(c, vb),
        )?;
        loaded("vae");
        let (clip, report) = ClipVision::load(&paths.image_encoder, Some("fp16"), dtype, device)
            .map_err(in_file(&paths.image_encoder))?;
        warn_unused("image_encoder", &report);
        loaded("image_encoder");
        let (whisper, _) =
            WhisperEncoder::load(&paths.whisper, device).map_err(in_file(&paths.whisper))?;
        let audio_encoder: WhisperAudioEncoder = ChunkedMelEncoder::new(whisper)?;
        loaded("whisper");
        let conditioner = SonicAudioConditioner::load(
            &paths.audio2token,
            &paths.audio2bucket,
            (AudioProjConfig::default(), Audio2BucketConfig::default()),
            device,
        )?;
        loaded("audio2token+audio2bucket");
        let interpolator: Option<Box<dyn FrameInterpolator>> = match &paths.rife {
            Some(file) => Some(Box::new(Rife::load(file, device).map_err(in_file(file))?)),
            None => None,
        };
        let face_detector: Box<dyn FaceDetector> = match &paths.yolo_face {
            Some(file) => Box::new(YoloFaceDetector::load(file, device).map_err(in_file(file))?),
            None => Box::new(SkinFaceDetector::default()),
        };
        Ok(ModelSet {
            unet,
            vae: Box::new(vae),
            image_encoder: Box::new(clip),
            audio_encoder: Box::new(audio_encoder),
            audio_encoder_name: crate::registry::BUILTIN_AUDIO_ENCODER.into(),
            conditioner: Box::new(conditioner),
            face_detector,
            interpolator,
            source: ModelSource::Weights {
                paths: Box::new(paths.clone()),
            },
            short_side: REFERENCE_SHORT_SIDE,
            device,
        })
    }

    /// Whether the weights were trained (the demo model's are not).
    pub fn trained(&self) -> bool {
        self.source != ModelSource::Demo
    }

    /// Replaces the audio encoder, e.g. with a plugin's registered under `name`.
    pub fn with_audio_encoder(mut self, name: &str, encoder: Box<dyn AudioEncoder>) -> Self {
        self.audio_encoder = encoder;
        self.audio_encoder_name = name.to_string();
        self
    }
}

/// Puts the file's name on a load error, so the message says which checkpoint is wrong.
fn in_file(path: &Path) -> impl Fn(Error) -> Error + '_ {
    move |e| Error::file(path, e.to_string())
}

fn load_folder<C: serde::de::DeserializeOwned, M>(
    dir: &Path,
    variant: Option<&str>,
    dtype: DType,
    device: Device,
    build: impl FnOnce(C, &VarBuilder) -> Result<M>,
) -> Result<M> {
    let config: C = read_config(dir)?;
    let files = crate::weights::find_weight_files(dir, variant)?;
    let store = WeightStore::open(&files).map_err(in_file(dir))?;
    let vb = VarBuilder::new(Arc::new(store), dtype, device);
    let model = build(config, &vb).map_err(in_file(dir))?;
    warn_unused(&dir.display().to_string(), &vb.report());
    Ok(model)
}

fn warn_unused(what: &str, report: &LoadReport) {
    if !report.unused.is_empty() {
        tracing::warn!(
            "{what}: {} stored tensors were not used (first: {})",
            report.unused.len(),
            report.unused[0]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_model_loads_every_embedded_tensor() {
        let demo = ModelSet::demo(Device::Cpu).unwrap();
        assert!(!demo.trained());
        assert!(demo.unet.has_audio_adapters());
        let info = demo.audio_encoder.info();
        assert_eq!((info.layers, info.hidden_size), (3, 64));
        assert_eq!(demo.image_encoder.embedding_dim(), 64);
        assert_eq!(demo.unet.config.num_frames, 25);
    }
}
