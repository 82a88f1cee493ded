//! Progress of the long commands (`dedupe`, `generate`, `train`) on stderr: a bar when stderr is
//! a terminal, a plain line every few seconds when it is not (CI logs, redirects), nothing with
//! `--quiet`. Each command's one-line summary is printed whatever the mode.
//!
//! Hot loops only add to an atomic counter; a reporter thread draws. `MDM_PROGRESS_EVERY_MS` sets
//! the interval of the plain lines (default 5,000).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How progress is shown, chosen once by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Bar,
    Lines,
}

static MODE: AtomicU8 = AtomicU8::new(2);

/// A plain line this often when stderr is not a terminal (`MDM_PROGRESS_EVERY_MS` overrides).
const LINE_EVERY: Duration = Duration::from_secs(5);

fn line_every() -> Duration {
    std::env::var("MDM_PROGRESS_EVERY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(LINE_EVERY, Duration::from_millis)
}

/// Sets the mode for the process: off with `--quiet`, a bar on a terminal, lines otherwise.
pub fn init(quiet: bool) {
    let mode = if quiet {
        Mode::Off
    } else if std::io::stderr().is_terminal() {
        Mode::Bar
    } else {
        Mode::Lines
    };
    MODE.store(mode as u8, Ordering::Relaxed);
}

pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        0 => Mode::Off,
        1 => Mode::Bar,
        _ => Mode::Lines,
    }
}

/// A progress message that is not the summary (silenced by `--quiet`).
pub fn note(message: &str) {
    if mode() != Mode::Off {
        eprintln!("{message}");
    }
}

/// One phase of a command: `done` of about `total` `unit`s.
pub struct Progress {
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    reporter: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts reporting `label` (e.g. "dedupe"); `total` may be an estimate (`None`: unknown).
    pub fn start(label: &str, unit: &'static str, total: Option<u64>) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let reporter = match mode() {
            Mode::Off => None,
            mode => {
                let (done, stop, label) = (done.clone(), stop.clone(), label.to_owned());
                std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || report(mode, &label, unit, total, &done, &stop))
                    .ok()
            }
        };
        Self { done, stop, reporter }
    }

    /// The counter hot loops add to (clone it into worker threads).
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Stops reporting and clears the bar.
    pub fn finish(mut self) {
        self.stop_reporter();
    }

    fn stop_reporter(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reporter) = self.reporter.take() {
            reporter.thread().unpark();
            let _ = reporter.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_reporter();
    }
}

fn report(mode: Mode, label: &str, unit: &str, total: Option<u64>, done: &AtomicU64, stop: &AtomicBool) {
    let started = Instant::now();
    if mode == Mode::Bar {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = match total {
            Some(_) => format!("{label} [{{bar:30}}] {{human_pos}}/~{{human_len}} {unit}, {{elapsed}} ({{eta}} left)"),
            None => format!("{label} {{spinner}} {{human_pos}} {unit}, {{elapsed}}"),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        while !stop.load(Ordering::Relaxed) {
            bar.set_position(done.load(Ordering::Relaxed));
            std::thread::park_timeout(Duration::from_millis(100));
        }
        bar.finish_and_clear();
        return;
    }
    let every = line_every();
    let mut next = started + every;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next {
            eprintln!("{}", line(label, unit, done.load(Ordering::Relaxed), total, now - started));
            next = now + every;
        }
        std::thread::park_timeout(next.saturating_duration_since(Instant::now()).min(Duration::from_millis(200)));
    }
}

/// A plain progress line: `dedupe: 120000 of ~500000 records (24%), 10 s`.
fn line(label: &str, unit: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match total {
        Some(t) if t > 0 => {
            let pct = (done as f64 * 100.0 / t as f64).min(100.0);
            format!("{label}: {done} of ~{t} {unit} ({pct:.0}%), {secs} s")
        }
        _ => format!("{label}: {done} {unit}, {secs} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_how_far_of_how_many() {
        let l = line("dedupe", "records", 120_000, Some(500_000), Duration::from_secs(10));
        assert_eq!(l, "dedupe: 120000 of ~500000 records (24%), 10 s");
        let l = line("generate", "records", 7, None, Duration::from_millis(5_400));
        assert_eq!(l, "generate: 7 records, 5 s");
        // An estimate that fell short never shows more than 100%.
        assert!(line("dedupe", "records", 11, Some(10), Duration::ZERO).contains("(100%)"));
    }
}
