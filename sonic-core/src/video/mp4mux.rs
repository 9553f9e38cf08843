//! A small MP4 (ISO/IEC 14496-12 and -15) writer: one H.264 and one AAC track at most, samples
//! streamed into `mdat` as they come, the `moov` index written after them at the end.
//!
//! Memory holds only the sample tables (offset, size, duration per sample). `mdat` always uses
//! the 64-bit size form and chunk offsets switch to `co64` past 4 GiB, so long videos need no
//! second pass. There are no B-frames (OpenH264 does not make them), hence no `ctts`.

use std::io::{self, Seek, SeekFrom, Write};

/// Movie-level times (`mvhd`, `tkhd`, `elst`) are in milliseconds, like most muxers write them.
const MOVIE_TIMESCALE: u32 = 1000;

/// How a track's samples are to be decoded.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum SampleEntry {
    /// H.264 with 4-byte NAL length prefixes.
    Avc {
        width: u16,
        height: u16,
        sps: Vec<u8>,
        pps: Vec<u8>,
    },
    /// MPEG-4 AAC, raw access units.
    Aac {
        sample_rate: u32,
        channels: u16,
        /// AudioSpecificConfig.
        config: Vec<u8>,
        avg_bitrate: u32,
        max_bitrate: u32,
        max_frame_bytes: u32,
    },
}

/// Plays `duration` media units starting at media time `media_time` (both in the track's
/// timescale); used to skip an audio encoder's priming samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Edit {
    pub media_time: u64,
    pub duration: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TrackId(usize);

#[derive(Clone, Copy, Debug)]
struct Sample {
    offset: u64,
    size: u32,
    duration: u32,
    sync: bool,
}

struct Track {
    timescale: u32,
    entry: Option<SampleEntry>,
    edit: Option<Edit>,
    samples: Vec<Sample>,
}

impl Track {
    fn media_duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }

    /// The presented duration in movie units: the edit's, else the media's.
    fn movie_duration(&self) -> u64 {
        let media = self.edit.map_or(self.media_duration(), |e| e.duration);
        to_movie_time(media, self.timescale)
    }
}

fn to_movie_time(media: u64, timescale: u32) -> u64 {
    let scaled = u128::from(media) * u128::from(MOVIE_TIMESCALE);
    ((scaled + u128::from(timescale) / 2) / u128::from(timescale)) as u64
}

pub(super) struct Mp4Writer<W: Write + Seek> {
    out: W,
    /// Where the next byte goes; tracked rather than asked for on every write.
    pos: u64,
    mdat_start: u64,
    tracks: Vec<Track>,
}

impl<W: Write + Seek> Mp4Writer<W> {
    /// Writes `ftyp` and the `mdat` header to an empty `out`.
    pub fn new(mut out: W) -> io::Result<Mp4Writer<W>> {
        let mut head = Vec::new();
        put_box(&mut head, b"ftyp", |b| {
            b.extend_from_slice(b"isom");
            put_u32(b, 0x200);
            for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
                b.extend_from_slice(brand);
            }
        });
        let mdat_start = head.len() as u64;
        // size 1 = "the real size follows as 64 bits", patched in `finish`.
        put_u32(&mut head, 1);
        head.extend_from_slice(b"mdat");
        put_u64(&mut head, 0);
        out.write_all(&head)?;
        Ok(Mp4Writer {
            out,
            pos: head.len() as u64,
            mdat_start,
            tracks: Vec::new(),
        })
    }

    /// Adds a track whose sample durations are in units of 1/`timescale` s.
    pub fn add_track(&mut self, timescale: u32) -> TrackId {
        self.tracks.push(Track {
            timescale: timescale.max(1),
            entry: None,
            edit: None,
            samples: Vec::new(),
        });
        TrackId(self.tracks.len() - 1)
    }

    /// Sets how the track decodes; needed before `finish`.
    pub fn set_entry(&mut self, track: TrackId, entry: SampleEntry) {
        self.tracks[track.0].entry = Some(entry);
    }

    pub fn set_edit(&mut self, track: TrackId, edit: Edit) {
        self.tracks[track.0].edit = Some(edit);
    }

    /// Appends one sample to `mdat`.
    pub fn write_sample(
        &mut self,
        track: TrackId,
        data: &[u8],
        duration: u32,
        sync: bool,
    ) -> io::Result<()> {
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sample over 4 GiB"))?;
        self.out.write_all(data)?;
        self.tracks[track.0].samples.push(Sample {
            offset: self.pos,
            size,
            duration,
            sync,
        });
        self.pos += u64::from(size);
        Ok(())
    }

    /// Lengthens the track's last sample, e.g. when the encoder dropped the frame after it.
    /// Returns false when the track has no sample yet.
    pub fn extend_last(&mut self, track: TrackId, duration: u32) -> bool {
        match self.tracks[track.0].samples.last_mut() {
            Some(last) => {
                last.duration += duration;
                true
            }
            None => false,
        }
    }

    /// Seconds the movie lasts: its longest track.
    pub fn duration_s(&self) -> f64 {
        self.movie_duration() as f64 / f64::from(MOVIE_TIMESCALE)
    }

    fn movie_duration(&self) -> u64 {
        self.tracks
            .iter()
            .map(Track::movie_duration)
            .max()
            .unwrap_or(0)
    }

    /// Completes `mdat`, writes `moov`, and hands back the output (unflushed).
    pub fn finish(mut self) -> io::Result<W> {
        let mdat_size = self.pos - self.mdat_start;
        let mut moov = Vec::new();
        self.put_moov(&mut moov)?;
        self.out.write_all(&moov)?;
        self.out.seek(SeekFrom::Start(self.mdat_start + 8))?;
        self.out.write_all(&mdat_size.to_be_bytes())?;
        self.out.seek(SeekFrom::End(0))?;
        Ok(self.out)
    }

    fn put_moov(&self, b: &mut Vec<u8>) -> io::Result<()> {
        let mut body = Vec::new();
        put_mvhd(
            &mut body,
            self.movie_duration(),
            self.tracks.len() as u32 + 1,
        );
        for (i, track) in self.tracks.iter().enumerate() {
            let entry = track.entry.as_ref().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("track {} has no sample description", i + 1),
                )
            })?;
            put_trak(&mut body, track, entry, i as u32 + 1);
        }
        put_box(b, b"moov", |b| b.extend_from_slice(&body));
        Ok(())
    }
}

fn put_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}

/// A box: 32-bit size, type, then whatever `body` writes.
fn put_box(b: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = b.len();
    put_u32(b, 0);
    b.extend_from_slice(kind);
    body(b);
    let size = (b.len() - start) as u32;
    b[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: a box whose body starts with version and flags.
fn put_full_box(
    b: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    put_box(b, kind, |b| {
        put_u32(b, (u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(b);
    });
}

/// Version 1 of the time-bearing boxes is needed only once a duration passes 32 bits.
fn time_version(durations: &[u64]) -> u8 {
    u8::from(durations.iter().any(|&d| d > u64::from(u32::MAX)))
}

/// A time field: 64 bits in version 1 boxes, 32 in version 0.
fn put_time(b: &mut Vec<u8>, version: u8, value: u64) {
    if version == 1 {
        put_u64(b, value);
    } else {
        put_u32(b, value as u32);
    }
}

/// Creation and modification times: zero, so the same input gives the same bytes.
fn put_creation_times(b: &mut Vec<u8>, version: u8) {
    put_time(b, version, 0);
    put_time(b, version, 0);
}

/// The `mvhd` and `mdhd` head: times, timescale, duration.
fn put_times(b: &mut Vec<u8>, version: u8, timescale: u32, duration: u64) {
    put_creation_times(b, version);
    put_u32(b, timescale);
    put_time(b, version, duration);
}

fn put_matrix(b: &mut Vec<u8>) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        put_u32(b, v);
    }
}

fn put_mvhd(b: &mut Vec<u8>, duration: u64, next_track_id: u32) {
    let version = time_version(&[duration]);
    put_full_box(b, b"mvhd", version, 0, |b| {
        put_times(b, version, MOVIE_TIMESCALE, duration);
        put_u32(b, 0x0001_0000); // rate 1.0
        put_u16(b, 0x0100); // volume 1.0
        b.extend_from_slice(&[0; 10]);
        put_matrix(b);
        b.extend_from_slice(&[0; 24]);
        put_u32(b, next_track_id);
    });
}

fn put_trak(b: &mut Vec<u8>, track: &Track, entry: &SampleEntry, track_id: u32) {
    let is_video = matches!(entry, SampleEntry::Avc { .. });
    put_box(b, b"trak", |b| {
        let duration = track.movie_duration();
        let version = time_version(&[duration]);
        // Flags: enabled, in movie.
        put_full_box(b, b"tkhd", version, 3, |b| {
            put_creation_times(b, version);
            put_u32(b, track_id);
            put_u32(b, 0);
            put_time(b, version, duration);
            b.extend_from_slice(&[0; 8]);
            put_u16(b, 0); // layer
            put_u16(b, 0); // alternate group
            put_u16(b, if is_video { 0 } else { 0x0100 });
            put_u16(b, 0);
            put_matrix(b);
            let (w, h) = match entry {
                SampleEntry::Avc { width, height, .. } => (*width, *height),
                SampleEntry::Aac { .. } => (0, 0),
            };
            put_u32(b, u32::from(w) << 16);
            put_u32(b, u32::from(h) << 16);
        });
        if let Some(edit) = track.edit {
            put_edts(b, duration, edit.media_time);
        }
        put_box(b, b"mdia", |b| put_mdia(b, track, entry, is_video));
    });
}

fn put_edts(b: &mut Vec<u8>, segment_duration: u64, media_time: u64) {
    let version = time_version(&[segment_duration, media_time]);
    put_box(b, b"edts", |b| {
        put_full_box(b, b"elst", version, 0, |b| {
            put_u32(b, 1);
            put_time(b, version, segment_duration);
            put_time(b, version, media_time);
            put_u32(b, 0x0001_0000); // rate 1.0
        });
    });
}

fn put_mdia(b: &mut Vec<u8>, track: &Track, entry: &SampleEntry, is_video: bool) {
    let duration = track.media_duration();
    let version = time_version(&[duration]);
    put_full_box(b, b"mdhd", version, 0, |b| {
        put_times(b, version, track.timescale, duration);
        put_u16(b, 0x55c4); // language "und"
        put_u16(b, 0);
    });
    let (handler, name): (&[u8; 4], &[u8]) = if is_video {
        (b"vide", b"VideoHandler\0")
    } else {
        (b"soun", b"SoundHandler\0")
    };
    put_full_box(b, b"hdlr", 0, 0, |b| {
        put_u32(b, 0);
        b.extend_from_slice(handler);
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(name);
    });
    put_box(b, b"minf", |b| {
        if is_video {
            put_full_box(b, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8]));
        } else {
            put_full_box(b, b"smhd", 0, 0, |b| put_u32(b, 0));
        }
        put_box(b, b"dinf", |b| {
            put_full_box(b, b"dref", 0, 0, |b| {
                put_u32(b, 1);
                // Flag 1: the media is in this file.
                put_full_box(b, b"url ", 0, 1, |_| {});
            });
        });
        put_box(b, b"stbl", |b| put_stbl(b, track, entry));
    });
}

fn put_stbl(b: &mut Vec<u8>, track: &Track, entry: &SampleEntry) {
    let samples = &track.samples;
    put_full_box(b, b"stsd", 0, 0, |b| {
        put_u32(b, 1);
        match entry {
            SampleEntry::Avc {
                width,
                height,
                sps,
                pps,
            } => put_avc1(b, *width, *height, sps, pps),
            SampleEntry::Aac { .. } => put_mp4a(b, entry),
        }
    });

    let durations = run_lengths(samples.iter().map(|s| s.duration));
    put_full_box(b, b"stts", 0, 0, |b| {
        put_u32(b, durations.len() as u32);
        for (count, delta) in &durations {
            put_u32(b, *count);
            put_u32(b, *delta);
        }
    });

    if samples.iter().any(|s| !s.sync) {
        put_full_box(b, b"stss", 0, 0, |b| {
            let sync: Vec<u32> = (1..)
                .zip(samples)
                .filter(|(_, s)| s.sync)
                .map(|(i, _)| i)
                .collect();
            put_u32(b, sync.len() as u32);
            sync.iter().for_each(|&i| put_u32(b, i));
        });
    }

    // A chunk is a run of samples that lie back to back in the file.
    let mut chunk_offsets: Vec<u64> = Vec::new();
    let mut chunk_sizes: Vec<u32> = Vec::new();
    let mut next = None;
    for s in samples {
        match chunk_sizes.last_mut() {
            Some(n) if next == Some(s.offset) => *n += 1,
            _ => {
                chunk_offsets.push(s.offset);
                chunk_sizes.push(1);
            }
        }
        next = Some(s.offset + u64::from(s.size));
    }
    put_full_box(b, b"stsc", 0, 0, |b| {
        let mut entries = Vec::new();
        for (chunk, &n) in (1u32..).zip(&chunk_sizes) {
            if entries.last().is_none_or(|&(_, last)| last != n) {
                entries.push((chunk, n));
            }
        }
        put_u32(b, entries.len() as u32);
        for (first_chunk, per_chunk) in entries {
            put_u32(b, first_chunk);
            put_u32(b, per_chunk);
            put_u32(b, 1); // sample description index
        }
    });

    put_full_box(b, b"stsz", 0, 0, |b| {
        put_u32(b, 0); // sizes vary
        put_u32(b, samples.len() as u32);
        samples.iter().for_each(|s| put_u32(b, s.size));
    });

    let wide = chunk_offsets.iter().any(|&o| o > u64::from(u32::MAX));
    put_full_box(b, if wide { b"co64" } else { b"stco" }, 0, 0, |b| {
        put_u32(b, chunk_offsets.len() as u32);
        for &offset in &chunk_offsets {
            if wide {
                put_u64(b, offset);
            } else {
                put_u32(b, offset as u32);
            }
        }
    });
}

/// (count, value) runs, as `stts` stores durations.
fn run_lengths(values: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for v in values {
        match runs.last_mut() {
            Some((count, last)) if *last == v => *count += 1,
            _ => runs.push((1, v)),
        }
    }
    runs
}

/// The start of every visual and audio sample entry: six reserved bytes and the data
/// reference index.
fn put_sample_entry_head(b: &mut Vec<u8>) {
    b.extend_from_slice(&[0; 6]);
    put_u16(b, 1);
}

fn put_avc1(b: &mut Vec<u8>, width: u16, height: u16, sps: &[u8], pps: &[u8]) {
    put_box(b, b"avc1", |b| {
        put_sample_entry_head(b);
        b.extend_from_slice(&[0; 16]);
        put_u16(b, width);
        put_u16(b, height);
        put_u32(b, 0x0048_0000); // 72 dpi
        put_u32(b, 0x0048_0000);
        put_u32(b, 0);
        put_u16(b, 1); // frames per sample
        b.extend_from_slice(&[0; 32]); // compressor name
        put_u16(b, 0x0018); // depth
        put_u16(b, 0xffff); // pre_defined = -1
        put_box(b, b"avcC", |b| put_avcc(b, sps, pps));
    });
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
fn put_avcc(b: &mut Vec<u8>, sps: &[u8], pps: &[u8]) {
    let profile = sps.get(1).copied().unwrap_or(66);
    b.push(1);
    b.push(profile);
    b.push(sps.get(2).copied().unwrap_or(0));
    b.push(sps.get(3).copied().unwrap_or(0));
    b.push(0xfc | 3); // 4-byte NAL lengths
    b.push(0xe0 | 1); // one SPS
    put_u16(b, sps.len() as u16);
    b.extend_from_slice(sps);
    b.push(1); // one PPS
    put_u16(b, pps.len() as u16);
    b.extend_from_slice(pps);
    if matches!(profile, 100 | 110 | 122 | 144) {
        // High profiles add chroma format and bit depths: 4:2:0, 8 bit, no SPS extensions.
        b.extend_from_slice(&[0xfc | 1, 0xf8, 0xf8, 0]);
    }
}

fn put_mp4a(b: &mut Vec<u8>, entry: &SampleEntry) {
    let SampleEntry::Aac {
        sample_rate,
        channels,
        config,
        avg_bitrate,
        max_bitrate,
        max_frame_bytes,
    } = entry
    else {
        return;
    };
    put_box(b, b"mp4a", |b| {
        put_sample_entry_head(b);
        b.extend_from_slice(&[0; 8]);
        put_u16(b, *channels);
        put_u16(b, 16); // sample size
        put_u32(b, 0);
        // 16.16 fixed point; AAC rates above 65535 Hz are refused earlier.
        put_u32(b, sample_rate << 16);
        put_full_box(b, b"esds", 0, 0, |b| {
            let mut decoder_specific = Vec::new();
            put_descriptor(&mut decoder_specific, 0x05, config);
            let mut decoder_config = vec![0x40, 0x15]; // MPEG-4 audio; audio stream
            decoder_config.extend_from_slice(&max_frame_bytes.to_be_bytes()[1..]);
            decoder_config.extend_from_slice(&max_bitrate.to_be_bytes());
            decoder_config.extend_from_slice(&avg_bitrate.to_be_bytes());
            decoder_config.extend_from_slice(&decoder_specific);
            let mut es = vec![0, 0, 0]; // ES_ID (unused in MP4), no flags
            put_descriptor(&mut es, 0x04, &decoder_config);
            put_descriptor(&mut es, 0x06, &[0x02]); // SLConfig: predefined for MP4
            put_descriptor(b, 0x03, &es);
        });
    });
}

/// An MPEG-4 descriptor: tag, size in 7-bit groups, body.
fn put_descriptor(b: &mut Vec<u8>, tag: u8, body: &[u8]) {
    b.push(tag);
    let len = body.len() as u32;
    for shift in [21, 14, 7] {
        if len >> shift != 0 {
            b.push(0x80 | ((len >> shift) & 0x7f) as u8);
        }
    }
    b.push((len & 0x7f) as u8);
    b.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Top-level and nested boxes as (type, start, size) from a byte slice.
    fn boxes(data: &[u8]) -> Vec<([u8; 4], usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= data.len() {
            let mut size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap();
            if size == 1 {
                size = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap()) as usize;
            }
            out.push((kind, at, size));
            at += size;
        }
        out
    }

    fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
        let (first, rest) = path.split_first()?;
        let (_, start, size) = boxes(data).into_iter().find(|(k, ..)| k == *first)?;
        let body = &data[start + 8..start + size];
        if rest.is_empty() {
            Some(body)
        } else {
            find(body, rest)
        }
    }

    fn write_test_movie() -> Vec<u8> {
        let mut mux = Mp4Writer::new(Cursor::new(Vec::new())).unwrap();
        let video = mux.add_track(1000);
        let audio = mux.add_track(16_000);
        for i in 0..5u8 {
            mux.write_sample(video, &[i; 10], 80, i == 0).unwrap();
        }
        assert!(mux.extend_last(video, 80));
        for _ in 0..33 {
            mux.write_sample(audio, &[7; 20], 1024, true).unwrap();
        }
        mux.set_entry(
            video,
            SampleEntry::Avc {
                width: 128,
                height: 64,
                sps: vec![0x67, 66, 0, 30],
                pps: vec![0x68, 1],
            },
        );
        mux.set_entry(
            audio,
            SampleEntry::Aac {
                sample_rate: 16_000,
                channels: 1,
                config: vec![0x14, 0x08],
                avg_bitrate: 64_000,
                max_bitrate: 64_000,
                max_frame_bytes: 20,
            },
        );
        mux.set_edit(
            audio,
            Edit {
                media_time: 2048,
                duration: 32_000,
            },
        );
        assert!((mux.duration_s() - 2.0).abs() < 1e-9);
        mux.finish().unwrap().into_inner()
    }

    #[test]
    fn layout_is_ftyp_mdat_moov() {
        let data = write_test_movie();
        let top: Vec<[u8; 4]> = boxes(&data).iter().map(|b| b.0).collect();
        assert_eq!(top, [*b"ftyp", *b"mdat", *b"moov"]);
        let (_, mdat_start, mdat_size) = boxes(&data)[1];
        assert_eq!(mdat_size, 16 + 5 * 10 + 33 * 20);
        // The first video sample sits right after the 16-byte mdat header.
        let stco = find(
            &data,
            &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"],
        )
        .unwrap();
        let first = u32::from_be_bytes(stco[8..12].try_into().unwrap()) as usize;
        assert_eq!(first, mdat_start + 16);
        assert_eq!(data[first..first + 10], [0; 10]);
    }

    #[test]
    fn sample_tables_and_durations() {
        let data = write_test_movie();
        let stbl = find(&data, &[b"moov", b"trak", b"mdia", b"minf", b"stbl"]).unwrap();
        // stts: four samples of 80, one of 160 (the extended last one).
        let stts = find(stbl, &[b"stts"]).unwrap();
        let words: Vec<u32> = stts
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words, [0, 2, 4, 80, 1, 160]);
        // stss: only sample 1 is a key frame.
        assert_eq!(
            find(stbl, &[b"stss"]).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
        );
        // mvhd duration: the longer track, the 2 s audio edit (video is 0.48 s).
        let mvhd = find(&data, &[b"moov", b"mvhd"]).unwrap();
        assert_eq!(u32::from_be_bytes(mvhd[12..16].try_into().unwrap()), 1000);
        assert_eq!(u32::from_be_bytes(mvhd[16..20].try_into().unwrap()), 2000);
    }

    #[test]
    fn descriptor_sizes_use_seven_bit_groups() {
        let mut b = Vec::new();
        put_descriptor(&mut b, 5, &[1, 2]);
        assert_eq!(b, [5, 2, 1, 2]);
        let mut b = Vec::new();
        put_descriptor(&mut b, 5, &[0; 200]);
        assert_eq!(b[..3], [5, 0x81, 200 - 128]);
    }

    #[test]
    fn run_lengths_group_equal_neighbours() {
        assert_eq!(
            run_lengths([1, 1, 2, 1].into_iter()),
            [(2, 1), (1, 2), (1, 1)]
        );
        assert!(run_lengths(std::iter::empty()).is_empty());
    }
}
