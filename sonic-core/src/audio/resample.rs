//! Streaming resampling to 16 kHz with rubato's FFT resampler (band-limited: it filters the
//! spectrum before decimating, so nothing above 8 kHz aliases into the speech band).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::SAMPLE_RATE;
use crate::{Error, Result};

/// Input frames per FFT block, rounded by rubato to fit the rate ratio. Longer blocks give a
/// sharper anti-aliasing filter; this one keeps the resampler's buffers near 100 KB.
const BLOCK_HINT: usize = 4096;

/// Mono samples at any rate in, 16 kHz out, fed chunk by chunk.
pub(crate) struct To16k {
    source_rate: u32,
    frames_in: u64,
    /// `None` when the source is already at 16 kHz.
    fft: Option<FftBlocks>,
    /// Source samples waiting for a full block.
    pending: Vec<f32>,
    out: Segments,
}

impl To16k {
    pub fn new(source_rate: u32) -> Result<To16k> {
        let fft = if source_rate == SAMPLE_RATE {
            None
        } else {
            Some(FftBlocks::new(source_rate)?)
        };
        Ok(To16k {
            source_rate,
            frames_in: 0,
            fft,
            pending: Vec::new(),
            out: Segments::default(),
        })
    }

    pub fn push(&mut self, samples: &[f32]) -> Result<()> {
        self.frames_in += samples.len() as u64;
        let Some(fft) = &mut self.fft else {
            self.out.extend(samples);
            return Ok(());
        };
        self.pending.extend_from_slice(samples);
        let block = fft.resampler.input_frames_next();
        let mut used = 0;
        while self.pending.len() - used >= block {
            fft.run(&self.pending[used..used + block], None, &mut self.out)?;
            used += block;
        }
        self.pending.drain(..used);
        Ok(())
    }

    /// Flushes the last partial block and the filter's tail; the output has
    /// ⌈frames·16000/rate⌉ samples, the length librosa's resampling gives.
    pub fn finish(mut self) -> Result<Vec<f32>> {
        let expected = usize::try_from(
            (self.frames_in * u64::from(SAMPLE_RATE)).div_ceil(u64::from(self.source_rate)),
        )
        .map_err(|_| Error::invalid("resample", "the audio is too long for this platform"))?;
        if let Some(fft) = &mut self.fft {
            fft.run(&self.pending, Some(self.pending.len()), &mut self.out)?;
            while self.out.len() < expected {
                fft.run(&[], Some(0), &mut self.out)?;
            }
        }
        Ok(self.out.into_vec(expected))
    }
}

/// rubato's FFT resampler run one block at a time, its startup delay dropped.
struct FftBlocks {
    resampler: Fft<f32>,
    block_out: Vec<f32>,
    /// Output frames still to drop.
    delay_left: usize,
}

impl FftBlocks {
    fn new(source_rate: u32) -> Result<FftBlocks> {
        let resampler = Fft::new(
            source_rate as usize,
            SAMPLE_RATE as usize,
            BLOCK_HINT,
            1,
            FixedSync::Both,
        )
        .map_err(|e| {
            Error::invalid(
                "resample",
                format!("cannot resample {source_rate} Hz to {SAMPLE_RATE} Hz: {e}"),
            )
        })?;
        Ok(FftBlocks {
            delay_left: resampler.output_delay(),
            block_out: vec![0.0; resampler.output_frames_max()],
            resampler,
        })
    }

    /// Runs one block; `partial` is the number of real frames when fewer than a block remain
    /// (rubato pads the rest with silence).
    fn run(&mut self, input: &[f32], partial: Option<usize>, out: &mut Segments) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| Error::invalid("resample", e.to_string());
        let block_len = self.block_out.len();
        let input = InterleavedSlice::new(input, 1, input.len()).map_err(|e| fail(&e))?;
        let mut output =
            InterleavedSlice::new_mut(&mut self.block_out, 1, block_len).map_err(|e| fail(&e))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| fail(&e))?;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        out.extend(&self.block_out[skip..produced]);
        Ok(())
    }
}

/// Output kept in fixed-size pieces rather than one growing `Vec`: a `Vec` that doubles holds
/// old and new buffers at once (up to 3× the signal), while pieces copied into one exact
/// allocation at the end peak at 2×.
#[derive(Default)]
struct Segments {
    full: Vec<Vec<f32>>,
    current: Vec<f32>,
    len: usize,
}

impl Segments {
    /// 256 KB of f32.
    const LEN: usize = 1 << 16;

    fn len(&self) -> usize {
        self.len
    }

    fn extend(&mut self, mut samples: &[f32]) {
        self.len += samples.len();
        while !samples.is_empty() {
            if self.current.len() == Self::LEN {
                self.full.push(std::mem::take(&mut self.current));
            }
            if self.current.capacity() == 0 {
                self.current.reserve_exact(Self::LEN);
            }
            let n = (Self::LEN - self.current.len()).min(samples.len());
            self.current.extend_from_slice(&samples[..n]);
            samples = &samples[n..];
        }
    }

    /// The first `len` samples as one `Vec`, freeing each piece once copied.
    fn into_vec(self, len: usize) -> Vec<f32> {
        let mut all = Vec::with_capacity(len.min(self.len));
        for piece in self.full.into_iter().chain(std::iter::once(self.current)) {
            let n = (len - all.len()).min(piece.len());
            all.extend_from_slice(&piece[..n]);
        }
        all
    }
}
