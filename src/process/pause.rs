//! Pause points for the test suite, active only in builds with the
//! `test-support` feature (other builds ignore the variable): with
//! `GPBACKUP_DDBOOST_PLUGIN_PAUSE=<point>[@N]=<marker file>`, the process stops at
//! the named point (the Nth time it is reached, the first by default) of a commit,
//! creates the marker file and sleeps until killed or signalled, so a test can kill
//! it between any two steps, or until the test removes the marker, so that it
//! goes on after the test changed the storage there. With `panic` for the marker
//! file, it panics there instead (a bug at that point). (Injected storage faults are `storage::faulty`.)

/// Stops here, until the command is signalled or killed, if the pause point
/// `point` was asked for.
#[cfg(not(feature = "test-support"))]
#[inline(always)]
pub fn pause(point: &str) {
    let _ = point;
}

/// Stops here, until the command is signalled or killed, if the pause point
/// `point` was asked for.
#[cfg(feature = "test-support")]
pub fn pause(point: &str) {
    // The process's variable; in the connection broker, the client's.
    let scope = crate::process::scope::Scope::current();
    let Some(spec) = scope.pause.as_deref() else {
        return;
    };
    let Some((at, marker)) = spec.split_once('=') else {
        return;
    };
    // `point@N`: the Nth time the point is reached (by any thread).
    let (at, nth) = match at.split_once('@') {
        Some((at, n)) => (at, n.parse::<u64>().unwrap_or(1)),
        None => (at, 1),
    };
    if at != point {
        return;
    }
    let reached = scope
        .paused
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    if reached != nth {
        return;
    }
    if marker == "panic" {
        panic!("test pause point {point} reached: panicking as asked");
    }
    log::info!("test pause point {point} reached; waiting to be killed or for {marker} to go");
    let _ = std::fs::write(marker, point);
    // A signal ends the pause: before a commit point the signal thread exits
    // meanwhile; after one, the command goes on as it would have. So does
    // the marker's removal.
    while !scope.interrupted() && std::path::Path::new(marker).exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
