//! Decoding every WAV sample format, rate and channel count, MP3 and FLAC, bad files, the
//! video frame count and the log-mel's shape and chunking. Parity with transformers is the
//! fixtures' job (tests/fixtures/whisper_log_mel_*).

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavSpec, WavWriter};
use tempfile::TempDir;

use super::format::{sniff, Sniffed};
use super::mel::mel_filter_bank;
use super::*;
use crate::Error;

/// A tone: frequency in Hz and amplitude.
type Tone = (f64, f64);

/// How a test WAV stores its samples.
#[derive(Clone, Copy, Debug)]
enum Pcm {
    Int(u16),
    F32,
    F64,
}

/// Interleaved frames where channel `c` is the sum of `channels[c]`'s tones.
fn tones(rate: u32, seconds: f64, channels: &[&[Tone]]) -> Vec<f64> {
    let frames = (f64::from(rate) * seconds).round() as usize;
    (0..frames)
        .flat_map(|n| {
            let t = n as f64 / f64::from(rate);
            channels.iter().map(move |tones| {
                tones
                    .iter()
                    .map(|&(f, a)| a * (2.0 * PI * f * t).sin())
                    .sum::<f64>()
            })
        })
        .collect()
}

fn write_wav(path: &Path, rate: u32, channels: u16, pcm: Pcm, interleaved: &[f64]) {
    if let Pcm::F64 = pcm {
        return write_f64_wav(path, rate, channels, interleaved);
    }
    let (bits_per_sample, sample_format) = match pcm {
        Pcm::Int(bits) => (bits, SampleFormat::Int),
        _ => (32, SampleFormat::Float),
    };
    let spec = WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample,
        sample_format,
    };
    let mut w = WavWriter::create(path, spec).unwrap();
    for &x in interleaved {
        match pcm {
            Pcm::Int(bits) => {
                let full_scale = f64::from((1u32 << (bits - 1)) - 1);
                w.write_sample((x * full_scale).round() as i32).unwrap();
            }
            _ => w.write_sample(x as f32).unwrap(),
        }
    }
    w.finalize().unwrap();
}

/// hound writes no 64-bit float WAV, so this one is written by hand.
fn write_f64_wav(path: &Path, rate: u32, channels: u16, interleaved: &[f64]) {
    let data_len = (interleaved.len() * 8) as u32;
    let block = channels * 8;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(4 + 8 + 16 + 8 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes()); // WAVE_FORMAT_IEEE_FLOAT
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    b.extend_from_slice(&block.to_le_bytes());
    b.extend_from_slice(&64u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for x in interleaved {
        b.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Least-squares sine and cosine coefficients of a tone over `x[skip..len-skip]`.
fn fit(x: &[f32], skip: usize, freq: f64) -> (f64, f64) {
    let w = 2.0 * PI * freq / f64::from(SAMPLE_RATE);
    let span = skip..x.len() - skip;
    let n = span.len() as f64;
    let (mut s, mut c) = (0.0, 0.0);
    for i in span {
        s += f64::from(x[i]) * (w * i as f64).sin();
        c += f64::from(x[i]) * (w * i as f64).cos();
    }
    (2.0 * s / n, 2.0 * c / n)
}

/// Checks that `x` is the sum of `expected` tones, each in phase with t = 0 (so any
/// resampler delay left in would show), and nothing else; returns the residual's relative RMS.
fn assert_tones(x: &[f32], expected: &[Tone], amp_tol: f64, residual_tol: f64, what: &str) {
    // The file's abrupt start and end are not band-limited; judge the steady part.
    let skip = 320;
    let mut residual: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for &(freq, amp) in expected {
        let (s, c) = fit(x, skip, freq);
        assert!(
            (s - amp).abs() < amp_tol && c.abs() < amp_tol,
            "{what}: {freq} Hz has sin {s:.5} cos {c:.5}, expected sin {amp}"
        );
        let w = 2.0 * PI * freq / f64::from(SAMPLE_RATE);
        for (i, r) in residual.iter_mut().enumerate() {
            *r -= s * (w * i as f64).sin() + c * (w * i as f64).cos();
        }
    }
    let steady = skip..x.len() - skip;
    let rms = |v: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = v.fold((0.0, 0.0), |(s, n), y| (s + y * y, n + 1.0));
        (sum / n).sqrt()
    };
    let signal = rms(&mut x[steady.clone()].iter().map(|&v| f64::from(v)));
    let rest = rms(&mut residual[steady].iter().copied());
    assert!(
        rest / signal < residual_tol,
        "{what}: residual {:.2e} of the signal",
        rest / signal
    );
}

fn expected_len(frames: usize, rate: u32) -> usize {
    (frames * SAMPLE_RATE as usize).div_ceil(rate as usize)
}

fn audio_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/audio")
        .join(name)
}

fn audio_error(path: &Path) -> (AudioErrorKind, String) {
    match load_audio(path) {
        Err(e @ Error::Audio { .. }) => {
            let msg = e.to_string();
            let Error::Audio { kind, .. } = e else {
                unreachable!()
            };
            (kind, msg)
        }
        Err(e) => panic!("{}: expected an audio error, got {e}", path.display()),
        Ok(a) => panic!("{}: decoded {} samples", path.display(), a.samples.len()),
    }
}

#[test]
fn every_wav_sample_format_decodes_at_every_rate() {
    let dir = TempDir::new().unwrap();
    let formats = [
        (Pcm::Int(8), 0.01, 0.03),
        (Pcm::Int(16), 0.002, 0.003),
        (Pcm::Int(24), 0.002, 0.003),
        (Pcm::Int(32), 0.002, 0.003),
        (Pcm::F32, 0.002, 0.003),
        (Pcm::F64, 0.002, 0.003),
    ];
    for (pcm, amp_tol, residual_tol) in formats {
        for rate in [8000, 22050, 44100, 48000] {
            let seconds = 0.75;
            let path = dir.path().join(format!("{pcm:?}_{rate}.wav"));
            let data = tones(rate, seconds, &[&[(440.0, 0.5), (1750.0, 0.25)]]);
            write_wav(&path, rate, 1, pcm, &data);
            let audio = load_audio(&path).unwrap();
            let what = format!("{pcm:?} at {rate} Hz");
            assert_eq!(audio.format, AudioFormat::Wav);
            assert_eq!(audio.source_sample_rate, rate, "{what}");
            assert_eq!(audio.source_channels, 1, "{what}");
            assert_eq!(audio.source_frames, data.len() as u64, "{what}");
            assert_eq!(
                audio.samples.len(),
                expected_len(data.len(), rate),
                "{what}"
            );
            assert_tones(
                &audio.samples,
                &[(440.0, 0.5), (1750.0, 0.25)],
                amp_tol,
                residual_tol,
                &what,
            );
        }
    }
}

#[test]
fn channels_are_averaged() {
    let dir = TempDir::new().unwrap();
    let stereo = dir.path().join("stereo.wav");
    let data = tones(44_100, 0.5, &[&[(440.0, 0.6)], &[(1000.0, 0.6)]]);
    write_wav(&stereo, 44_100, 2, Pcm::Int(16), &data);
    let audio = load_audio(&stereo).unwrap();
    assert_eq!(audio.source_channels, 2);
    assert_eq!(audio.samples.len(), 8000);
    assert_tones(
        &audio.samples,
        &[(440.0, 0.3), (1000.0, 0.3)],
        0.002,
        0.003,
        "stereo",
    );

    // Six channels (WAVE_FORMAT_EXTENSIBLE): five carry the tone, one is silent.
    let surround = dir.path().join("surround.wav");
    let tone: &[Tone] = &[(440.0, 0.6)];
    let data = tones(48_000, 0.5, &[tone, tone, tone, &[], tone, tone]);
    write_wav(&surround, 48_000, 6, Pcm::Int(24), &data);
    let audio = load_audio(&surround).unwrap();
    assert_eq!(audio.source_channels, 6);
    assert_tones(&audio.samples, &[(440.0, 0.5)], 0.002, 0.003, "6 channels");
}

#[test]
fn sixteen_khz_passes_through_unchanged() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("16k.wav");
    let data = tones(16_000, 0.3, &[&[(440.0, 0.5)]]);
    write_wav(&path, 16_000, 1, Pcm::Int(16), &data);
    let audio = load_audio(&path).unwrap();
    let expected: Vec<f32> = data
        .iter()
        .map(|x| (x * 32767.0).round() as f32 / 32768.0)
        .collect();
    assert_eq!(audio.samples, expected);
    assert_eq!(audio.duration(), std::time::Duration::from_millis(300));
    assert_eq!(audio.source_duration(), audio.duration());
    // The 16 kHz signal is the soundtrack too.
    let mut audio = audio;
    assert_eq!(audio.soundtrack, None);
    let track = audio.take_soundtrack();
    assert_eq!((track.samples, track.sample_rate), (expected, 16_000));
}

#[test]
fn the_soundtrack_keeps_the_source_rate_aac_takes() {
    let dir = TempDir::new().unwrap();
    let tone: &[Tone] = &[(5000.0, 0.4)];
    for (rate, kept) in [(44_100, true), (22_050, true), (96_000, false)] {
        let path = dir.path().join(format!("{rate}.wav"));
        let data = tones(rate, 0.25, &[tone, tone]);
        write_wav(&path, rate, 2, Pcm::Int(16), &data);
        let mut audio = load_audio(&path).unwrap();
        assert_eq!(audio.soundtrack.is_some(), kept, "{rate} Hz");
        let track = audio.take_soundtrack();
        if kept {
            // The mono downmix of two equal channels at the source rate: the samples as
            // stored, 5 kHz tone and all.
            let expected: Vec<f32> = data
                .iter()
                .step_by(2)
                .map(|x| (x * 32767.0).round() as f32 / 32768.0)
                .collect();
            assert_eq!(track.sample_rate, rate);
            assert_eq!(track.samples, expected);
        } else {
            assert_eq!(track.sample_rate, SAMPLE_RATE);
            assert_eq!(track.samples, audio.samples);
        }
    }
}

#[test]
fn odd_lengths_and_rates_give_the_rounded_up_length() {
    let dir = TempDir::new().unwrap();
    for (rate, frames) in [(44_100, 1), (44_100, 12_345), (11_025, 7), (96_000, 96_001)] {
        let path = dir.path().join(format!("{rate}_{frames}.wav"));
        let data = vec![0.25; frames];
        write_wav(&path, rate, 1, Pcm::Int(16), &data);
        let audio = load_audio(&path).unwrap();
        assert_eq!(audio.samples.len(), expected_len(frames, rate), "{rate} Hz");
    }
}

#[test]
fn flac_decodes_like_its_wav_twin() {
    // tests/fixtures/audio/gen_audio_files.py writes tone.flac from this signal.
    let data: Vec<f64> = tones(22_050, 1.0, &[&[(440.0, 0.5), (1250.0, 0.25)]])
        .into_iter()
        .map(|x| (x * 32767.0).round() / 32767.0)
        .collect();
    let dir = TempDir::new().unwrap();
    let twin = dir.path().join("twin.wav");
    write_wav(&twin, 22_050, 1, Pcm::Int(16), &data);
    let flac = load_audio(&audio_fixture("tone.flac")).unwrap();
    let wav = load_audio(&twin).unwrap();
    assert_eq!(flac.format, AudioFormat::Flac);
    assert_eq!(
        (
            flac.source_sample_rate,
            flac.source_channels,
            flac.source_frames
        ),
        (22_050, 1, 22_050)
    );
    assert_eq!(flac.samples.len(), 16_000);
    let max_diff = flac
        .samples
        .iter()
        .zip(&wav.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-4, "FLAC and WAV differ by {max_diff}");
}

#[test]
fn mp3_decodes_both_channels_of_its_source() {
    // 2 s at 44.1 kHz: left 0.6·sin(440 Hz), right 0.6·sin(1000 Hz).
    let audio = load_audio(&audio_fixture("tone.mp3")).unwrap();
    assert_eq!(audio.format, AudioFormat::Mp3);
    assert_eq!(
        (audio.source_sample_rate, audio.source_channels),
        (44_100, 2)
    );
    // The LAME tag's delay and padding are trimmed: exactly the source's length.
    assert_eq!(audio.source_frames, 88_200);
    assert_eq!(audio.samples.len(), 32_000);
    assert_tones(
        &audio.samples,
        &[(440.0, 0.3), (1000.0, 0.3)],
        0.01,
        0.05,
        "MP3",
    );
}

#[test]
fn format_comes_from_the_content_not_the_name() {
    let dir = TempDir::new().unwrap();
    let disguised = dir.path().join("really_an_mp3.wav");
    std::fs::copy(audio_fixture("tone.mp3"), &disguised).unwrap();
    assert_eq!(load_audio(&disguised).unwrap().format, AudioFormat::Mp3);

    // An ID3v2 tag in front of the stream is skipped.
    let tagged = dir.path().join("tagged.mp3");
    let mut bytes = b"ID3\x04\x00\x00\x00\x00\x00\x10".to_vec();
    bytes.extend_from_slice(&[0u8; 16]);
    bytes.extend(std::fs::read(audio_fixture("tone.mp3")).unwrap());
    std::fs::write(&tagged, bytes).unwrap();
    assert_eq!(load_audio(&tagged).unwrap().samples.len(), 32_000);
}

#[test]
fn sniffing_names_what_it_recognises() {
    assert_eq!(
        sniff(b"RIFF\0\0\0\0WAVEfmt "),
        Sniffed::Supported(AudioFormat::Wav)
    );
    assert_eq!(
        sniff(b"fLaC\0\0\0\x22"),
        Sniffed::Supported(AudioFormat::Flac)
    );
    assert_eq!(
        sniff(&[0xFF, 0xFB, 0x90, 0x44]),
        Sniffed::Supported(AudioFormat::Mp3)
    );
    assert_eq!(sniff(b"OggS\0\x02"), Sniffed::Other("Ogg"));
    assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Sniffed::Other("MP4/M4A"));
    assert_eq!(sniff(b"FORM\0\0\0\0AIFF"), Sniffed::Other("AIFF"));
    assert_eq!(
        sniff(&[0xFF, 0xF1, 0x50, 0x80]),
        Sniffed::Other("AAC (ADTS)")
    );
    assert_eq!(
        sniff(b"RIFF\0\0\0\0AVI "),
        Sniffed::Other("RIFF without WAVE data")
    );
    assert_eq!(sniff(b"hello"), Sniffed::Unknown);
    assert_eq!(sniff(b""), Sniffed::Unknown);
}

#[test]
fn bad_files_name_the_file_and_the_problem() {
    let dir = TempDir::new().unwrap();
    let at = |name: &str| dir.path().join(name);
    let mp3 = std::fs::read(audio_fixture("tone.mp3")).unwrap();
    let flac = std::fs::read(audio_fixture("tone.flac")).unwrap();

    std::fs::write(at("empty.wav"), b"").unwrap();
    let (kind, msg) = audio_error(&at("empty.wav"));
    assert!(matches!(kind, AudioErrorKind::Empty), "{msg}");
    assert!(msg.ends_with("empty.wav: empty file"), "{msg}");

    write_wav(&at("no_data.wav"), 44_100, 2, Pcm::Int(16), &[]);
    let (kind, msg) = audio_error(&at("no_data.wav"));
    assert!(matches!(kind, AudioErrorKind::NoSamples), "{msg}");
    assert!(msg.ends_with("no_data.wav: no audio samples"), "{msg}");

    write_wav(
        &at("whole.wav"),
        44_100,
        2,
        Pcm::Int(16),
        &vec![0.1; 44_100],
    );
    let whole = std::fs::read(at("whole.wav")).unwrap();
    std::fs::write(at("truncated.wav"), &whole[..whole.len() / 2 + 1]).unwrap();
    let (kind, msg) = audio_error(&at("truncated.wav"));
    assert!(matches!(kind, AudioErrorKind::Truncated { .. }), "{msg}");
    assert!(msg.contains("truncated.wav: truncated WAV data"), "{msg}");

    std::fs::write(at("header_only.wav"), &whole[..30]).unwrap();
    let (kind, msg) = audio_error(&at("header_only.wav"));
    assert!(matches!(kind, AudioErrorKind::Corrupt { .. }), "{msg}");

    std::fs::write(at("truncated.mp3"), &mp3[..mp3.len() / 2]).unwrap();
    let (kind, msg) = audio_error(&at("truncated.mp3"));
    assert!(matches!(kind, AudioErrorKind::Truncated { .. }), "{msg}");
    assert!(msg.contains("truncated.mp3: truncated MP3 data"), "{msg}");

    std::fs::write(at("truncated.flac"), &flac[..flac.len() / 2]).unwrap();
    let (kind, msg) = audio_error(&at("truncated.flac"));
    assert!(matches!(kind, AudioErrorKind::Truncated { .. }), "{msg}");

    let mut damaged = flac.clone();
    let mid = damaged.len() / 2;
    for b in &mut damaged[mid..mid + 64] {
        *b ^= 0x5A;
    }
    std::fs::write(at("corrupt.flac"), &damaged).unwrap();
    let (kind, msg) = audio_error(&at("corrupt.flac"));
    assert!(matches!(kind, AudioErrorKind::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("corrupt.flac: corrupt or truncated FLAC data"),
        "{msg}"
    );

    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(at("noise.wav"), &noise).unwrap();
    let (kind, msg) = audio_error(&at("noise.wav"));
    assert!(matches!(kind, AudioErrorKind::Unrecognised), "{msg}");
    assert!(msg.contains("noise.wav: unrecognised content"), "{msg}");

    let mut ogg = b"OggS\0\x02\0\0\0\0\0\0\0\0".to_vec();
    ogg.extend_from_slice(&noise[..256]);
    std::fs::write(at("speech.ogg"), &ogg).unwrap();
    let (kind, msg) = audio_error(&at("speech.ogg"));
    assert!(
        matches!(kind, AudioErrorKind::UnsupportedFormat { .. }),
        "{msg}"
    );
    assert!(
        msg.ends_with("speech.ogg: unsupported audio format Ogg (supported: WAV, MP3, FLAC)"),
        "{msg}"
    );

    write_wav(
        &at("absurd_rate.wav"),
        1_000_000,
        1,
        Pcm::Int(16),
        &[0.1; 16],
    );
    let (kind, msg) = audio_error(&at("absurd_rate.wav"));
    assert!(
        matches!(kind, AudioErrorKind::UnsupportedEncoding { .. }),
        "{msg}"
    );
    assert!(msg.contains("sample rate 1000000 Hz"), "{msg}");

    let missing = at("missing.wav");
    let err = load_audio(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn mp3_with_garbage_frames_is_an_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let mut mp3 = std::fs::read(audio_fixture("tone.mp3")).unwrap();
    let mid = mp3.len() / 2;
    for (i, b) in mp3[mid..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2];
    }
    let path = dir.path().join("garbage.mp3");
    std::fs::write(&path, &mp3).unwrap();
    let (kind, msg) = audio_error(&path);
    assert!(
        matches!(
            kind,
            AudioErrorKind::Corrupt { .. } | AudioErrorKind::Truncated { .. }
        ),
        "{msg}"
    );
}

#[test]
fn video_frames_follow_the_reference() {
    assert_eq!(video_frames(0), 0);
    assert_eq!(video_frames(1279), 0);
    assert_eq!(video_frames(1280), 1);
    assert_eq!(video_frames(10 * 16_000), 125);
    assert_eq!(video_frames(60 * 16_000), 750);
    // The reference caps at 400 s (5000 frames); this does not.
    assert_eq!(video_frames(400 * 16_000), 5000);
    assert_eq!(video_frames(600 * 16_000), 7500);
}

#[test]
fn mel_filter_bank_matches_transformers() {
    let bank = mel_filter_bank();
    assert_eq!((bank.len(), bank[0].len()), (80, 201));
    // Spot values of transformers' mel_filter_bank(201, 80, 0, 8000, 16000, "slaney", "slaney").
    let spots = [
        (0, 1, 2.486_259_5e-2_f32),
        (1, 2, 2.287_177_2e-2),
        (40, 43, 1.473_556_55e-2),
        (40, 25, 0.0),
        (79, 196, 1.795_036_1e-3),
    ];
    for (m, k, want) in spots {
        let got = bank[m][k] as f32;
        assert_eq!(got, want, "mel {m} bin {k}: {got} vs {want}");
    }
}

#[test]
fn log_mel_has_3000_frames_per_started_chunk() {
    for (len, frames) in [
        (1, 3000),
        (480_000, 3000),
        (480_001, 6000),
        (1_000_000, 9000),
    ] {
        let mel = whisper_log_mel(&vec![0.0; len]).unwrap();
        assert_eq!(mel.dims(), &[N_MELS, frames], "{len} samples");
    }
    assert!(whisper_log_mel(&[]).is_err());
    assert!(log_mel_chunk(&vec![0.0; CHUNK_SAMPLES + 1]).is_err());
}

#[test]
fn silence_is_the_clamped_floor() {
    let mel = log_mel_chunk(&[0.0; 100]).unwrap().to_vec().unwrap();
    assert!(mel.iter().all(|&v| v == -1.5), "(log10(1e-10) + 4) / 4");
}

#[test]
fn each_chunk_is_normalised_on_its_own() {
    let loud: Vec<f32> = (0..CHUNK_SAMPLES + 8000)
        .map(|i| {
            let quiet_tail = if i < CHUNK_SAMPLES { 1.0 } else { 1e-3 };
            quiet_tail * (i as f32 * 0.07).sin()
        })
        .collect();
    let all = whisper_log_mel(&loud).unwrap().to_vec().unwrap();
    let tail = log_mel_chunk(&loud[CHUNK_SAMPLES..])
        .unwrap()
        .to_vec()
        .unwrap();
    let width = 2 * CHUNK_FRAMES;
    for m in 0..N_MELS {
        assert_eq!(
            &all[m * width + CHUNK_FRAMES..(m + 1) * width],
            &tail[m * CHUNK_FRAMES..(m + 1) * CHUNK_FRAMES]
        );
    }
}
