//! Progress bars on stderr for the pipeline's stages (hidden when stderr is not a terminal
//! or with --quiet).

use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sonic_core::pipeline::{Progress, Stage};

/// Set by the Ctrl-C handler; the run stops at the next denoiser call or frame and the
/// output sink, dropped unfinished, removes its temporary file.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub struct Bars {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Bars {
    pub fn new(quiet: bool) -> Self {
        Bars { quiet, bar: None }
    }

    /// A bar of `total` units labelled `label`.
    pub fn start(&mut self, label: &str, total: u64) {
        self.end();
        let target = if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:32}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        self.bar = Some(bar);
    }

    pub fn message(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_string());
        }
    }
}

impl Progress for Bars {
    fn begin(&mut self, stage: Stage, total: u64) {
        self.start(stage.name(), total);
    }

    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }

    fn cancelled(&self) -> bool {
        INTERRUPTED.load(Ordering::Relaxed)
    }
}
