//! The progress bar of a training loop on stderr, and its lines: one per evaluation.
//!
//! With the `progress` feature (on with the command) the bar is `indicatif`'s; without it
//! there is no bar, and the lines go to stderr as plain text.

#[cfg(feature = "progress")]
use indicatif::{ProgressBar, ProgressStyle};

/// A bar over a loop's steps (hidden when not wanted, and by `indicatif` when stderr is not
/// a terminal); lines printed through it stay above the bar.
pub struct Progress {
    #[cfg(feature = "progress")]
    bar: ProgressBar,
}

#[cfg(feature = "progress")]
impl Progress {
    /// A bar of `len` steps, `done` of them already (a resumed run), labelled `prefix`
    /// (`epoch 3/20`, `steps`); `show` false hides it.
    pub fn new(show: bool, len: usize, done: usize, prefix: String) -> Progress {
        if !show {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})")
                .expect("progress bar template")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix);
        bar.set_position(done as u64);
        Progress { bar }
    }

    /// One step done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// The text after the bar (the running loss, the speed).
    pub fn message(&self, text: String) {
        self.bar.set_message(text);
    }

    /// A line above the bar, or on stderr when the bar is hidden (which drops its lines).
    pub fn line(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Without the `progress` feature: no bar; the lines (one per evaluation) still reach
/// stderr, so a run says how it goes.
#[cfg(not(feature = "progress"))]
impl Progress {
    /// No bar (the arguments are those of the bar the `progress` feature draws).
    pub fn new(_show: bool, _len: usize, _done: usize, _prefix: String) -> Progress {
        Progress {}
    }

    /// One step done (nothing to draw).
    pub fn inc(&self) {}

    /// The text after the bar (nothing to draw).
    pub fn message(&self, _text: String) {}

    /// A line on stderr.
    pub fn line(&self, text: String) {
        eprintln!("{text}");
    }

    /// Nothing to remove.
    pub fn finish(&self) {}
}
