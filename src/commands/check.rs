//! `check <config> [--no-write]`: everything a backup will need, tried once,
//! one line per step on stdout, before the first backup is trusted to it.
//!
//! Steps: the config (problems and unknown options), opening the storage as
//! the backend reports it (library, connection, folders; the remote system
//! when configured), the backend's facts (free space, stream counts), then a
//! probe object written, listed, read back, verified and deleted under
//! `.check/`, on the primary and on the replica. The probe also checks that
//! the storage reports what the plugin controls (the probe's size and name):
//! a mismatch means the SDK's structures differ from this build's.

use std::path::Path;

use crate::about::PLUGIN_NAME;
use crate::backends::PluginConfig;
use crate::error::{Error, Result};
use crate::process::logging;
use crate::storage::{
    read_to_end, timed, CreateOptions, Finding, OpenOptions, Outcome, Storage, StoragePath,
};

/// Prints findings as they come and remembers the failures.
struct Report {
    failures: Vec<String>,
    steps: usize,
}

impl Report {
    fn add(&mut self, f: Finding) {
        let tag = match f.outcome {
            Outcome::Pass => "PASS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        };
        println!("{tag}  {}: {} ({:.3} s)", f.step, f.detail, f.secs);
        match f.outcome {
            Outcome::Fail => {
                log::error!("check: {}: {}", f.step, f.detail);
                self.failures.push(format!("{}: {}", f.step, f.detail));
            }
            Outcome::Warn => log::warn!("check: {}: {}", f.step, f.detail),
            Outcome::Pass => log::info!("check: {}: {}", f.step, f.detail),
        }
        self.steps += 1;
    }
}

pub fn run(config: &Path, no_write: bool) -> Result<()> {
    let mut report = Report {
        failures: Vec::new(),
        steps: 0,
    };
    let (loaded, secs) = timed(|| PluginConfig::load(config));
    match loaded {
        Ok(cfg) => {
            logging::set_verbosity(cfg.verbosity);
            report.add(Finding::pass(
                "config",
                format!("{} is valid", config.display()),
                secs,
            ));
            for w in &cfg.warnings {
                report.add(Finding::warn("config", w.clone(), 0.0));
            }
            check_storage(&cfg, no_write, &mut report);
        }
        Err(e) => report.add(Finding::fail("config", e.to_string(), secs)),
    }
    match report.failures.first() {
        None => {
            println!("check passed: {} steps", report.steps);
            Ok(())
        }
        Some(first) => Err(Error::storage(format!(
            "{} of {} checks failed; first: {first}",
            report.failures.len(),
            report.steps
        ))),
    }
}

fn check_storage(cfg: &PluginConfig, no_write: bool, report: &mut Report) {
    let Some(storage) = cfg.backend.check_open(&mut |f| report.add(f)) else {
        return;
    };
    for f in storage.facts(!no_write) {
        report.add(f);
    }
    let replica = storage.replica();
    if let Some(r) = replica {
        for mut f in r.storage().facts(!no_write) {
            f.step = format!("replica {}", f.step);
            report.add(f);
        }
    }
    if no_write {
        report.add(Finding::warn(
            "probe",
            "skipped (--no-write): writing, reading and deleting were not tried",
            0.0,
        ));
        return;
    }
    probe(storage.as_ref(), "", report);
    if let Some(r) = replica {
        probe(r.storage(), "replica ", report);
    }
}

/// The probe's folder below option `directory`.
const CHECK_DIR: &str = ".check";

/// Writes, lists, reads back, verifies and deletes a probe object.
fn probe(storage: &dyn Storage, prefix: &str, report: &mut Report) {
    let host = crate::storage::host_tag();
    let name = format!("probe-{host}-{}", std::process::id());
    let paths = StoragePath::root()
        .child(CHECK_DIR)
        .and_then(|dir| Ok((dir.child(&name)?, dir)));
    let (path, dir) = match paths {
        Ok(p) => p,
        Err(e) => {
            let e = Error::from(e);
            return report.add(Finding::fail(format!("{prefix}probe"), e.to_string(), 0.0));
        }
    };
    // Not a multiple of any block size, so short last blocks are tried too.
    let size = (2 << 20) + 4099;
    let data: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut step = |name: &str, r: Result<String>, secs: f64| -> bool {
        let name = format!("{prefix}probe {name}");
        Finding::step(&mut |f| report.add(f), &name, (r, secs), String::clone).is_ok()
    };
    let (written, secs) = timed(|| -> Result<String> {
        let mut w = storage.create(&path, &CreateOptions::default())?;
        for c in data.chunks(w.block_size()) {
            w.write(c)?;
        }
        w.commit()?;
        Ok(format!("{size} bytes written to {path}"))
    });
    if step("write", written, secs) {
        let (listed, secs) = timed(|| -> Result<String> {
            let all = storage.list_all(&dir)?;
            match all.iter().find(|o| o.path == path) {
                Some(o) if o.size == size => Ok(format!("listed as {name}, {} bytes", o.size)),
                Some(o) => Err(layout(format!(
                    "the listing says {} bytes for a {size}-byte probe",
                    o.size
                ))),
                None => Err(layout(format!(
                    "{name} is not in the listing of {CHECK_DIR} ({} entries)",
                    all.len()
                ))),
            }
        });
        step("list", listed, secs);
        let (read, secs) = timed(|| -> Result<String> {
            let mut r = storage.open(&path, &OpenOptions::default())?;
            if r.size() != size {
                return Err(layout(format!(
                    "the storage reports {} bytes for a {size}-byte probe",
                    r.size()
                )));
            }
            let back = read_to_end(r.as_mut())?;
            if back != data {
                return Err(Error::integrity(format!(
                    "{} bytes read back differ from the {size} written",
                    back.len()
                )));
            }
            Ok(format!("{size} bytes read back and identical"))
        });
        step("read and verify", read, secs);
    }
    // Nothing is left behind, whatever failed above; other hosts may be
    // checking the same folder at once (gpssh), so only our probe goes.
    let (deleted, secs) = timed(|| -> Result<String> {
        storage.delete(&path)?;
        storage.remove_dir_if_empty(&dir)?;
        Ok(format!("{path} deleted"))
    });
    step("delete", deleted, secs);
}

/// A value the plugin controls came back wrong from the storage.
fn layout(what: String) -> Error {
    Error::storage(format!(
        "{what}; the SDK's structures may differ from this build's header: build {PLUGIN_NAME} with DDBOOST_SDK_DIR pointing at the vendor SDK (see README)"
    ))
}
