//! Progress output on stderr for steps that take more than a second.
//!
//! On a terminal a step shows a spinner with its elapsed time; otherwise (a pipe, a log file, a
//! test harness) it prints one line when it starts, a line every ten seconds while it waits, and
//! one when it ends. Standard output is never touched, so `--json` output stays one object.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a step prints a line when stderr is not a terminal.
const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// One step in progress; see the module docs.
pub struct Step {
    bar: Option<ProgressBar>,
    message: String,
    started: Instant,
    last_line: Instant,
}

impl Step {
    /// Starts a step described by `message` (e.g. `starting the ledger`).
    pub fn start(message: impl Into<String>) -> Self {
        let message = message.into();
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
                bar.set_style(style);
            }
            bar.set_message(message.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            eprintln!("{message}...");
            None
        };
        let now = Instant::now();
        Self {
            bar,
            message,
            started: now,
            last_line: now,
        }
    }

    /// Shows what the step is waiting for now (e.g. `2/3 signers confirmed`).
    pub fn update(&mut self, detail: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {detail}", self.message)),
            None => {
                if self.last_line.elapsed() >= LINE_INTERVAL {
                    eprintln!("  {detail} ({}s)", self.started.elapsed().as_secs());
                    self.last_line = Instant::now();
                }
            }
        }
    }

    /// Prints a line now (above the spinner on a terminal).
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("  {line}")),
            None => eprintln!("  {line}"),
        }
    }

    /// Time since the step started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the step with a line saying how long it took; returns that duration.
    pub fn finish(mut self, detail: &str) -> Duration {
        let elapsed = self.started.elapsed();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if detail.is_empty() {
            eprintln!("{}: done in {:.1}s", self.message, elapsed.as_secs_f64());
        } else {
            eprintln!("{}: {detail} ({:.1}s)", self.message, elapsed.as_secs_f64());
        }
        elapsed
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        // A step abandoned by an error leaves no spinner behind.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
