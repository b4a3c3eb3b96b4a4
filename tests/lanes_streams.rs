//! Lanes on a mock Data Domain with one read and one write stream (its own
//! test process, as the mock reads its limits once): a lane that finds the
//! stream taken lets go of everything it opened, and the request then runs
//! one step after another, waiting for the stream while holding none.

mod support;

use std::io::{Read, Seek};
use std::path::PathBuf;
use std::sync::OnceLock;

use gpbackup_ddboost_plugin::data::repo::{self, Part, WriteInfo};
use gpbackup_ddboost_plugin::storage::{Storage, StoragePath};

use support::bytes;

fn sp(text: &str) -> StoragePath {
    StoragePath::parse(text).unwrap()
}

const HOST: &str = "dd-streams";

/// The mock's root and trace, one read and one write stream; the private
/// folder below the root. Set once, before anything reads them.
fn trace_file() -> &'static PathBuf {
    static ROOT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, trace) = ROOT.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("DDBOOST_MOCK_ROOT", t.path());
        std::env::set_var("DDBOOST_MOCK_TRACE", t.path().join("trace"));
        std::env::set_var("DDBOOST_MOCK_READ_STREAMS", "1");
        std::env::set_var("DDBOOST_MOCK_WRITE_STREAMS", "1");
        std::env::set_var("GPBACKUP_DDBOOST_PLUGIN_RUN_DIR", t.path());
        support::create_system(t.path(), HOST);
        let trace = t.path().join("trace");
        (t, trace)
    });
    trace
}

/// Opens refused for the stream limit in the trace so far.
fn refused_opens() -> usize {
    let code = ddboost::code_by_name("DD_ERR_STREAM_LIMIT").unwrap();
    let text = std::fs::read_to_string(trace_file()).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("op=open ") && l.ends_with(&format!("result={code}")))
        .count()
}

/// Runs `request` on its own thread while `held` (a file holding the only
/// stream of its kind) stays open, until a lane was refused for the limit;
/// then lets the stream go and returns what the request returned.
fn while_the_stream_is_taken<T: Send, H>(held: H, request: impl FnOnce() -> T + Send) -> T {
    let refused = refused_opens();
    std::thread::scope(|s| {
        let r = s.spawn(request);
        while refused_opens() == refused {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(held);
        r.join().unwrap()
    })
}

#[test]
fn a_lane_refused_a_stream_lets_go_and_the_request_waits_holding_none() {
    trace_file();
    let conns: Vec<Box<dyn Storage>> = (0..4).map(|_| support::open_mock(HOST, "s")).collect();
    let lanes: Vec<&dyn Storage> = conns[..3].iter().map(|c| c.as_ref()).collect();
    let other = conns[3].as_ref();
    let write = WriteInfo {
        command: "backup_data",
        source: "standard input",
        timestamp: "20990101000000",
        options: &[],
    };
    let data = bytes(50_000, 1);

    // Another writer holds the only write stream.
    let held = other.create(&sp("s/other"), &Default::default()).unwrap();
    let stored = while_the_stream_is_taken(held, || {
        let input = Box::new(std::io::Cursor::new(data.clone()));
        repo::store_with_lanes(&lanes, &sp("s/obj"), input, &write).map(|(s, d)| {
            d.finish();
            s.size
        })
    });
    assert_eq!(stored.unwrap(), data.len() as u64);

    // Another reader holds the only read stream.
    let held = other.open(&sp("s/obj"), &Default::default()).unwrap();
    let mut out = tempfile::tempfile().unwrap();
    let restored = while_the_stream_is_taken(held, || {
        let sink = out.try_clone().unwrap();
        repo::restore_with_lanes(&lanes, &sp("s/obj"), Part::Whole, "restore_data", sink, 1).map(
            |(n, d)| {
                d.finish();
                n
            },
        )
    });
    assert_eq!(restored.unwrap(), data.len() as u64);
    out.rewind().unwrap();
    let mut got = Vec::new();
    out.read_to_end(&mut got).unwrap();
    assert!(got == data);

    assert_eq!(support::temporaries_in(lanes[0]), Vec::<String>::new());
}
