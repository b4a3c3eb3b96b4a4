//! Hooks for the test suite, active only in debug builds (the release
//! binary ignores their environment variables):
//!
//! * `GPBACKUP_DDBOOST_PLUGIN_FAULTS`: makes storage calls fail (see
//!   [`faulty`]), on any backend.
//! * `GPBACKUP_DDBOOST_PLUGIN_PAUSE=<point>=<marker file>`: at the named
//!   point of a commit, creates the marker file and sleeps until killed, so a
//!   test can kill the process between any two steps (see [`pause`]).

pub mod faulty;

/// Stops here, forever, if the pause point `point` was asked for.
pub fn pause(point: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(spec) = std::env::var_os("GPBACKUP_DDBOOST_PLUGIN_PAUSE") else {
        return;
    };
    let spec = spec.to_string_lossy();
    let Some((at, marker)) = spec.split_once('=') else {
        return;
    };
    if at != point {
        return;
    }
    log::info!("test pause point {point} reached; waiting to be killed");
    let _ = std::fs::write(marker, point);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
