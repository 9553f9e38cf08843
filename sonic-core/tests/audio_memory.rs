//! Decoding holds at most about twice the 16 kHz result in memory, plus the mono soundtrack at
//! the source rate kept for the output video, whatever the source's channel count: measured
//! with a counting allocator on ten minutes of 44.1 kHz stereo. (Holding the decoded source
//! instead would take 2·44.1/16 ≈ 5.5× the result on top.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sonic_core::audio::load_audio;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    // Counted as a fresh allocation before the old one is freed: a copying realloc briefly
    // holds both, and the bound must not depend on the allocator growing in place.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn ten_minutes_of_44k_stereo_peak_at_twice_the_16k_result_plus_the_soundtrack() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("ten_minutes.wav");
    let (rate, seconds) = (44_100u32, 600u32);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    // A cheap non-silent signal, a second at a time: a 441 Hz sawtooth left, half of its
    // negation right.
    for _ in 0..seconds {
        let mut second = writer.get_i16_writer(rate * 2);
        for n in 0..rate {
            let v = ((n % 100) as i16 - 50) * 300;
            second.write_sample(v);
            second.write_sample(-v / 2);
        }
        second.flush().unwrap();
    }
    writer.finalize().unwrap();

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let audio = load_audio(&path).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;

    let result_bytes = audio.samples.len() * std::mem::size_of::<f32>();
    assert_eq!(audio.samples.len(), 16_000 * seconds as usize);
    let track = audio.soundtrack.as_ref().expect("44.1 kHz is an AAC rate");
    assert_eq!(track.samples.len(), (rate * seconds) as usize);
    let track_bytes = track.samples.len() * std::mem::size_of::<f32>();
    // Twice the result, the soundtrack once (reserved from the header, never regrown), plus
    // a few MB of fixed buffers (decoder packets, FFT blocks).
    let bound = 2 * result_bytes + track_bytes + (4 << 20);
    println!(
        "peak {:.1} MB while decoding, result {:.1} MB, soundtrack {:.1} MB",
        peak as f64 / 1e6,
        result_bytes as f64 / 1e6,
        track_bytes as f64 / 1e6
    );
    assert!(
        peak <= bound,
        "peak {:.1} MB for a {:.1} MB result (bound {:.1} MB)",
        peak as f64 / 1e6,
        result_bytes as f64 / 1e6,
        bound as f64 / 1e6
    );
}
