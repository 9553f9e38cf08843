//! H.264 encoding with OpenH264, producing MP4-ready samples.
//!
//! OpenH264 emits Annex B NAL units (start-code prefixed) with the parameter sets in front of
//! every IDR frame. MP4 wants them apart: SPS and PPS go once into the `avcC` box, and each
//! sample holds its NAL units with 4-byte length prefixes.

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, QpRange,
    RateControlMode, SpsPpsStrategy, UsageType, VuiConfig,
};
use openh264::OpenH264API;

use super::yuv::Yuv420;
use super::Fps;

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

/// Quality is held by the quantiser, not a bitrate: OpenH264's buffer-based mode settles at
/// the bottom of this range and rises at most to its top, and never drops frames (its other
/// modes can only honour a bitrate by skipping frames). QP 20–22 keeps detailed 512×512
/// test frames above 37 dB PSNR at roughly 0.15 bits per pixel.
const QP_RANGE: (u8, u8) = (20, 22);
/// Nominal rate for the encoder's level and buffer sizing; it does not steer quality here.
const BITS_PER_PIXEL: f64 = 0.3;
/// A key frame every two seconds bounds seeking cost without costing much size.
const KEYFRAME_INTERVAL_S: f64 = 2.0;

/// One encoded frame in MP4 form.
pub(super) struct Sample {
    /// Length-prefixed NAL units, parameter sets removed.
    pub data: Vec<u8>,
    /// An IDR frame: decoding can start here.
    pub sync: bool,
}

pub(super) struct H264Encoder {
    encoder: Encoder,
    yuv: Yuv420,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl H264Encoder {
    pub fn new(width: u32, height: u32, fps: Fps) -> Result<H264Encoder, String> {
        let pixels_per_s = f64::from(width) * f64::from(height) * fps.as_f64();
        let bitrate = (pixels_per_s * BITS_PER_PIXEL).clamp(100_000.0, 50_000_000.0) as u32;
        let gop = (fps.as_f64() * KEYFRAME_INTERVAL_S).round().max(1.0) as u32;
        let config = EncoderConfig::new()
            // The bundled OpenH264 rejects the non-real-time camera usage.
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bufferbased)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps.as_f64() as f32))
            .qp(QpRange::new(QP_RANGE.0, QP_RANGE.1))
            .complexity(Complexity::High)
            .intra_frame_period(IntraFramePeriod::from_num_frames(gop))
            // Every frame should come out; a skipped one would stutter (it is shown longer).
            .skip_frames(false)
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            // One thread keeps the output bytes deterministic.
            .num_threads(1)
            .vui(VuiConfig::bt601());
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| e.to_string())?;
        Ok(H264Encoder {
            encoder,
            yuv: Yuv420::new(width as usize, height as usize),
            sps: None,
            pps: None,
        })
    }

    /// Encodes one RGB8 frame of the encoder's size. `None` when the encoder produced no
    /// picture for it.
    pub fn encode(&mut self, rgb: &[u8]) -> Result<Option<Sample>, String> {
        self.yuv.fill_from_rgb(rgb);
        let stream = self.encoder.encode(&self.yuv).map_err(|e| e.to_string())?;
        let mut sample = Sample {
            data: Vec::new(),
            sync: false,
        };
        for layer in (0..stream.num_layers()).filter_map(|i| stream.layer(i)) {
            for nal in (0..layer.nal_count()).filter_map(|i| layer.nal_unit(i)) {
                let nal = strip_start_code(nal);
                let Some(&header) = nal.first() else { continue };
                match header & 0x1f {
                    NAL_SPS => keep_parameter_set(&mut self.sps, nal, "SPS")?,
                    NAL_PPS => keep_parameter_set(&mut self.pps, nal, "PPS")?,
                    kind => {
                        sample.sync |= kind == NAL_IDR;
                        let len = u32::try_from(nal.len()).map_err(|_| "NAL unit over 4 GiB")?;
                        sample.data.extend_from_slice(&len.to_be_bytes());
                        sample.data.extend_from_slice(nal);
                    }
                }
            }
        }
        Ok((!sample.data.is_empty()).then_some(sample))
    }

    /// The sequence and picture parameter sets, once the first frame is encoded.
    pub fn parameter_sets(&self) -> Option<(&[u8], &[u8])> {
        Some((self.sps.as_deref()?, self.pps.as_deref()?))
    }
}

/// The `avcC` box stores one SPS and one PPS; with constant ids OpenH264 repeats the same ones
/// at each IDR, and a different one would need a second sample description.
fn keep_parameter_set(slot: &mut Option<Vec<u8>>, nal: &[u8], what: &str) -> Result<(), String> {
    match slot {
        None => {
            *slot = Some(nal.to_vec());
            Ok(())
        }
        Some(kept) if kept == nal => Ok(()),
        Some(_) => Err(format!("the encoder changed its {what} mid-stream")),
    }
}

fn strip_start_code(nal: &[u8]) -> &[u8] {
    nal.strip_prefix(&[0, 0, 0, 1])
        .or_else(|| nal.strip_prefix(&[0, 0, 1]))
        .unwrap_or(nal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_codes_are_stripped() {
        assert_eq!(strip_start_code(&[0, 0, 0, 1, 0x67, 1]), [0x67, 1]);
        assert_eq!(strip_start_code(&[0, 0, 1, 0x68]), [0x68]);
        assert_eq!(strip_start_code(&[0x65, 0]), [0x65, 0]);
    }

    #[test]
    fn first_frame_is_a_length_prefixed_idr() {
        let (w, h) = (64u32, 32u32);
        let mut encoder = H264Encoder::new(w, h, Fps::new(25, 2).unwrap()).unwrap();
        assert!(encoder.parameter_sets().is_none());
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let first = encoder.encode(&rgb).unwrap().unwrap();
        assert!(first.sync);
        let (sps, pps) = encoder.parameter_sets().unwrap();
        assert_eq!(sps[0] & 0x1f, NAL_SPS);
        assert_eq!(pps[0] & 0x1f, NAL_PPS);

        // Walk the length prefixes: they must tile the sample exactly.
        let mut rest = &first.data[..];
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            assert!(len > 0 && len + 4 <= rest.len());
            let kind = rest[4] & 0x1f;
            assert!(kind != NAL_SPS && kind != NAL_PPS);
            rest = &rest[4 + len..];
        }
        let second = encoder.encode(&rgb).unwrap().unwrap();
        assert!(!second.sync);
    }
}
