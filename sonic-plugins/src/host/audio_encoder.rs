//! A plugin's audio encoder behind sonic-core's `AudioEncoder` trait. What the plugin says
//! about itself is checked once, at creation; every `encode` asks for a frame count that must
//! be plausible before anything is allocated, and writes into a host-allocated output that is
//! checked like a sampler's (unwritten elements, writes past the end, NaN and infinities).

use std::sync::Mutex;

use sonic_core::models::{AudioEncoder, AudioEncoderInfo};
use sonic_core::{Device, Result, Tensor};

use super::instance::{GuardedOutput, Instance};
use super::LoadedPlugin;
use crate::abi;
use crate::PluginError;

/// The only PCM rate the pipeline feeds.
pub const SAMPLE_RATE: u32 = sonic_core::audio::SAMPLE_RATE;
/// Most hidden states an encoder may return.
pub const MAX_LAYERS: u32 = 1024;
/// Widest hidden state accepted.
pub const MAX_HIDDEN_SIZE: u32 = 1 << 16;
/// Most output elements (all layers together) one `encode` may ask the host to allocate:
/// 4 GiB of f32, several hours of Whisper-sized features.
pub const MAX_OUTPUT_ELEMENTS: u64 = 1 << 30;
/// Padding a frame count may add beyond the audio's duration, in seconds: encoders that
/// work on fixed windows (Whisper's 30 s) round the audio up to whole windows.
const PADDING_SECONDS: f64 = 60.0;

pub struct PluginAudioEncoder {
    inner: Instance<abi::AudioEncoder>,
    info: AudioEncoderInfo,
    /// The ABI allows one call at a time per instance; the trait is `Sync`.
    lock: Mutex<()>,
}

// SAFETY: the ABI lets an instance be used from any thread, one thread at a time; every call
// into the instance holds `lock`.
unsafe impl Send for PluginAudioEncoder {}
unsafe impl Sync for PluginAudioEncoder {}

impl PluginAudioEncoder {
    pub(crate) fn create(
        plugin: &LoadedPlugin,
        id: &str,
        config: Option<&str>,
    ) -> std::result::Result<Self, PluginError> {
        let inner = Instance::<abi::AudioEncoder>::create(plugin, id, config)?;
        let info = read_info(&inner).map_err(|msg| PluginError::Call {
            plugin: plugin.display_name(),
            component: id.to_string(),
            msg,
        })?;
        Ok(PluginAudioEncoder {
            inner,
            info,
            lock: Mutex::new(()),
        })
    }

    /// The component id this encoder was created as.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// The plugin's frame count for `samples`, checked: an error when the call fails or the
    /// count is implausible for that much audio.
    pub fn checked_frames_for(&self, samples: usize) -> Result<usize> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.frames_locked(samples)
    }

    fn frames_locked(&self, samples: usize) -> Result<usize> {
        let f = self.inner.vtable().frames_for.expect("checked at creation");
        let mut frames = u64::MAX;
        // SAFETY: a live instance; `frames` is writable for the call.
        let status = unsafe { f(self.inner.ptr(), samples as u64, &mut frames) };
        if status != abi::OK {
            return Err(self.inner.error(format!(
                "frames_for({samples}) failed: {}",
                self.inner.failure_message(status)
            )));
        }
        let limit = max_frames(&self.info, samples);
        if frames > limit {
            return Err(self.inner.error(format!(
                "frames_for({samples}) claims {frames} frames; at most {limit} are plausible \
                 for {:.2} s at {} frames/s",
                samples as f64 / SAMPLE_RATE as f64,
                self.info.frames_per_second
            )));
        }
        Ok(frames as usize)
    }
}

/// The most frames `samples` samples can give: the duration plus padding, at the encoder's
/// frame rate, rounded up.
fn max_frames(info: &AudioEncoderInfo, samples: usize) -> u64 {
    let seconds = samples as f64 / SAMPLE_RATE as f64 + PADDING_SECONDS;
    (seconds * info.frames_per_second as f64).ceil() as u64
}

/// Asks the plugin for its info and checks it; the message says what is wrong.
fn read_info(inner: &Instance<abi::AudioEncoder>) -> std::result::Result<AudioEncoderInfo, String> {
    let f = inner.vtable().info.expect("checked at creation");
    // Poisoned: a plugin that fills nothing is caught below.
    let mut raw = abi::AudioEncoderInfo {
        struct_size: abi::size_u32::<abi::AudioEncoderInfo>(),
        sample_rate: 0,
        frames_per_second: f32::NAN,
        layers: 0,
        hidden_size: 0,
    };
    // SAFETY: a live instance; `raw` is writable for the call.
    let status = unsafe { f(inner.ptr(), &mut raw) };
    if status != abi::OK {
        return Err(format!("info failed: {}", inner.failure_message(status)));
    }
    check_info(&raw)
}

fn check_info(raw: &abi::AudioEncoderInfo) -> std::result::Result<AudioEncoderInfo, String> {
    let size = abi::size_u32::<abi::AudioEncoderInfo>();
    if raw.struct_size < size {
        return Err(format!(
            "info struct_size {} is smaller than ABI 1.0's {size} bytes",
            raw.struct_size
        ));
    }
    if raw.sample_rate != SAMPLE_RATE {
        return Err(format!(
            "the encoder takes {} Hz audio; sonic feeds {SAMPLE_RATE} Hz PCM only",
            raw.sample_rate
        ));
    }
    let fps = raw.frames_per_second;
    if !(fps.is_finite() && fps > 0.0 && fps <= SAMPLE_RATE as f32) {
        return Err(format!(
            "frames_per_second {fps} is not a rate in (0, {SAMPLE_RATE}]"
        ));
    }
    if !(1..=MAX_LAYERS).contains(&raw.layers) {
        return Err(format!("layers {} is outside 1..={MAX_LAYERS}", raw.layers));
    }
    if !(1..=MAX_HIDDEN_SIZE).contains(&raw.hidden_size) {
        return Err(format!(
            "hidden_size {} is outside 1..={MAX_HIDDEN_SIZE}",
            raw.hidden_size
        ));
    }
    Ok(AudioEncoderInfo {
        sample_rate: raw.sample_rate,
        frames_per_second: fps,
        layers: raw.layers as usize,
        hidden_size: raw.hidden_size as usize,
    })
}

impl AudioEncoder for PluginAudioEncoder {
    fn info(&self) -> AudioEncoderInfo {
        self.info
    }

    /// The plugin's frame count. The trait has no error path: a failing or implausible answer
    /// is logged and reported as 0 frames, and [`encode`](AudioEncoder::encode) then fails
    /// with the full error ([`checked_frames_for`](Self::checked_frames_for) returns it).
    fn frames_for(&self, samples: usize) -> usize {
        self.checked_frames_for(samples).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            0
        })
    }

    fn encode(&self, samples: &[f32]) -> Result<Vec<Tensor>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let frames = self.frames_locked(samples.len())?;
        let (layers, width) = (self.info.layers, self.info.hidden_size);
        let total = (frames as u64)
            .checked_mul(width as u64)
            .and_then(|n| n.checked_mul(layers as u64))
            .filter(|&n| n <= MAX_OUTPUT_ELEMENTS)
            .ok_or_else(|| {
                self.inner.error(format!(
                    "an output of {layers}×{frames}×{width} elements is more than the \
                     {MAX_OUTPUT_ELEMENTS} one call may allocate"
                ))
            })?;
        let per_layer = frames * width;
        let mut out = GuardedOutput::new(total as usize).map_err(|m| self.inner.error(m))?;
        let shape = [layers as i64, frames as i64, width as i64];
        let view = out.view(&shape);
        let f = self.inner.vtable().encode.expect("checked at creation");
        // SAFETY: `samples` and `out` live through the call; `out` is writable.
        let status = unsafe {
            f(
                self.inner.ptr(),
                samples.as_ptr(),
                samples.len() as u64,
                &view,
            )
        };
        if status != abi::OK {
            return Err(self.inner.failure(status));
        }
        let data = out.finish().map_err(|m| self.inner.error(m))?;
        if per_layer == 0 {
            return (0..layers)
                .map(|_| Tensor::zeros([frames, width], Device::Cpu))
                .collect();
        }
        data.chunks_exact(per_layer)
            .map(|layer| Tensor::from_slice(layer, [frames, width], Device::Cpu))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(sample_rate: u32, fps: f32, layers: u32, hidden_size: u32) -> abi::AudioEncoderInfo {
        abi::AudioEncoderInfo {
            struct_size: abi::size_u32::<abi::AudioEncoderInfo>(),
            sample_rate,
            frames_per_second: fps,
            layers,
            hidden_size,
        }
    }

    #[test]
    fn info_is_checked() {
        let ok = check_info(&raw(16_000, 50.0, 5, 384)).unwrap();
        assert_eq!((ok.layers, ok.hidden_size), (5, 384));
        for (bad, expected) in [
            (raw(44_100, 50.0, 5, 384), "44100 Hz"),
            (raw(16_000, f32::NAN, 5, 384), "frames_per_second"),
            (raw(16_000, 0.0, 5, 384), "frames_per_second"),
            (raw(16_000, f32::INFINITY, 5, 384), "frames_per_second"),
            (raw(16_000, 50.0, 0, 384), "layers 0"),
            (raw(16_000, 50.0, 5, 0), "hidden_size 0"),
            (
                abi::AudioEncoderInfo {
                    struct_size: 4,
                    ..raw(16_000, 50.0, 5, 384)
                },
                "struct_size 4",
            ),
        ] {
            let err = check_info(&bad).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn frame_limits_allow_whisper_padding() {
        let info = check_info(&raw(16_000, 50.0, 5, 384)).unwrap();
        // One sample gives Whisper a full 30 s window: 1500 frames.
        assert!(max_frames(&info, 1) >= 1500);
        // Ten minutes at 50 frames/s, padded to 30 s windows.
        assert!(max_frames(&info, 600 * 16_000) >= 30_000);
        assert!(max_frames(&info, 16_000) < 10_000);
    }
}
