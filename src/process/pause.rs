//! Pause points for the test suite, active only in builds with the
//! `test-support` feature (other builds ignore the variable): with
//! `GPBACKUP_DDBOOST_PLUGIN_PAUSE=<point>=<marker file>`, the process stops at
//! the named point of a commit, creates the marker file and sleeps until
//! killed, so a test can kill it between any two steps. (Injected storage
//! faults are `storage::faulty`.)

/// Stops here, forever, if the pause point `point` was asked for.
#[cfg(not(feature = "test-support"))]
#[inline(always)]
pub fn pause(point: &str) {
    let _ = point;
}

/// Stops here, forever, if the pause point `point` was asked for.
#[cfg(feature = "test-support")]
pub fn pause(point: &str) {
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
