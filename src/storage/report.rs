//! What `check` reports: its lines, which the backends give too
//! ([`super::Storage::facts`], [`super::BackendConfig::check_open`]).

use crate::error::Result;

/// One line of `check`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub step: String,
    pub outcome: Outcome,
    pub detail: String,
    pub secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

impl Finding {
    pub fn pass(step: impl Into<String>, detail: impl Into<String>, secs: f64) -> Finding {
        Self::new(step, Outcome::Pass, detail, secs)
    }
    pub fn warn(step: impl Into<String>, detail: impl Into<String>, secs: f64) -> Finding {
        Self::new(step, Outcome::Warn, detail, secs)
    }
    pub fn fail(step: impl Into<String>, detail: impl Into<String>, secs: f64) -> Finding {
        Self::new(step, Outcome::Fail, detail, secs)
    }
    fn new(
        step: impl Into<String>,
        outcome: Outcome,
        detail: impl Into<String>,
        secs: f64,
    ) -> Finding {
        Finding {
            step: step.into(),
            outcome,
            detail: detail.into(),
            secs,
        }
    }

    /// Reports one timed step (its detail on success, else its error) and
    /// passes its result on.
    pub fn step<T>(
        report: &mut dyn FnMut(Finding),
        name: &str,
        (result, secs): (Result<T>, f64),
        detail: impl FnOnce(&T) -> String,
    ) -> Result<T> {
        match &result {
            Ok(v) => report(Finding::pass(name, detail(v), secs)),
            Err(e) => report(Finding::fail(name, e.to_string(), secs)),
        }
        result
    }
}

/// Runs `f` and returns its result and the seconds it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = std::time::Instant::now();
    let r = f();
    (r, started.elapsed().as_secs_f64())
}
