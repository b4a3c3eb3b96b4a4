//! Progress of the long commands a DBA runs by hand (verify_backup,
//! replicate_backup): objects and bytes done, rate and time left, drawn on
//! stderr only when stderr is a terminal. Anywhere else (gpbackman, cron,
//! scripts, gpbackup's own calls) nothing is drawn and the output is exactly
//! as without it.
//!
//! ```ignore
//! let progress = Progress::start("verify_backup", objects, bytes);
//! progress.inc_bytes(n);      // as bytes are read (any thread)
//! progress.inc_objects(1);    // as each object is done
//! progress.suspend(|| println!("OK ..."));  // stdout lines without tearing the bar
//! progress.finish();
//! ```

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display; cheap to clone and share between threads. Hidden
/// (every call does nothing) unless stderr is a terminal.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    objects: Arc<AtomicU64>,
    total_objects: u64,
}

impl Progress {
    /// Starts a display of `total_objects` objects and `total_bytes` bytes,
    /// labelled `what`; hidden when stderr is not a terminal.
    pub fn start(what: &str, total_objects: u64, total_bytes: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            Self::drawn(
                what,
                total_objects,
                total_bytes,
                ProgressDrawTarget::stderr(),
            )
        } else {
            Self::hidden()
        }
    }

    /// A display that draws nothing.
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            objects: Arc::new(AtomicU64::new(0)),
            total_objects: 0,
        }
    }

    fn drawn(
        what: &str,
        total_objects: u64,
        total_bytes: u64,
        target: ProgressDrawTarget,
    ) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
        let style = ProgressStyle::with_template(&format!(
            "{what}: {{msg}} objects, {{bytes}} of {{total_bytes}} ({{bytes_per_sec}}, {{eta}} left) [{{wide_bar}}]"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(format!("0 of {total_objects}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        Progress {
            bar: Some(bar),
            objects: Arc::new(AtomicU64::new(0)),
            total_objects,
        }
    }

    /// Whether anything is drawn.
    pub fn is_drawn(&self) -> bool {
        self.bar.is_some()
    }

    /// `n` more bytes done.
    pub fn inc_bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// `n` more objects done.
    pub fn inc_objects(&self, n: u64) {
        let done = self.objects.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done} of {}", self.total_objects));
        }
    }

    /// `objects` more objects and `bytes` more bytes done.
    pub fn inc(&self, objects: u64, bytes: u64) {
        self.inc_bytes(bytes);
        self.inc_objects(objects);
    }

    /// Runs `f` (printing to stdout, say) with the bar taken off the screen.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Leaves the final state on the screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// A writer that counts what passes through into a [`Progress`] and drops it
/// (a verification reads and checks, writing nothing).
pub struct CountingSink(pub Progress);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.inc_bytes(buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn hidden_progress_does_nothing_and_counts_through() {
        let p = Progress::hidden();
        assert!(!p.is_drawn());
        p.inc(1, 10);
        let mut sink = CountingSink(p.clone());
        // The sink takes every byte it is given.
        assert_eq!(sink.write(&[0u8; 100]).unwrap(), 100);
        sink.write_all(&[0u8; 100]).unwrap();
        // Objects are counted, by every clone, though nothing is drawn.
        sink.0.inc_objects(2);
        assert_eq!(p.objects.load(Ordering::Relaxed), 3);
        assert_eq!(p.suspend(|| 7), 7);
        p.finish();
        assert!(!p.is_drawn());
    }

    #[test]
    fn drawn_progress_counts_objects_and_bytes() {
        let p = Progress::drawn("verify_backup", 3, 300, ProgressDrawTarget::hidden());
        assert!(p.is_drawn());
        p.inc(1, 100);
        let mut sink = CountingSink(p.clone());
        sink.write_all(&[0u8; 50]).unwrap();
        let bar = p.bar.as_ref().unwrap();
        assert_eq!(bar.position(), 150);
        assert_eq!(bar.message(), "1 of 3");
        p.finish();
    }
}
