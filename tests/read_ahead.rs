//! Restores with reads in flight (option `read_ahead`) through the plugin
//! binary, on both backends: byte-exact whatever the read-ahead, damaged
//! blocks still never output, subsets of many ranges, the read-stream limit
//! of a Data Domain respected; and the appliance calls a small backup and
//! restore make, from the mock's trace. Reads are made slow (a latency per
//! call on the mock, `delay_ms` on local reads) so that restores open their
//! other readers; no test asserts a timing.

mod support;

use support::*;

const TS: &str = "20250101120000";
const NAME: &str = "gpbackup_0_20250101120000";
const MIB: usize = 1 << 20;

/// An environment whose config sets `read_ahead` (None: the default) and logs
/// at debug level.
fn env_with(backend: Backend, read_ahead: Option<usize>) -> Env {
    let extra = match read_ahead {
        Some(n) => format!("  read_ahead: {n}\n  logger_verbosity: debug\n"),
        None => "  logger_verbosity: debug\n".to_string(),
    };
    Env::with_options(backend, &extra)
}

/// Environment variables that make reads wait, as on a real appliance or NFS.
fn slow_reads(backend: Backend) -> [(&'static str, &'static str); 1] {
    match backend {
        Backend::Local => [("GPBACKUP_DDBOOST_PLUGIN_FAULTS", "read:delay_ms=2")],
        Backend::DdBoostMock => [("DDBOOST_MOCK_LATENCY_MS", "2")],
    }
}

fn restore(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    env.run_stdin_env(args, b"", vars)
}

/// The largest number of reads in flight the debug log reports.
fn most_in_flight(env: &Env) -> usize {
    env.log_text()
        .lines()
        .filter_map(|l| {
            let (before, _) = l.split_once(" reads in flight")?;
            let (n, _) = before.rsplit_once(": ")?.1.split_once(" of ")?;
            n.parse().ok()
        })
        .max()
        .unwrap_or(1)
}

fn byte_exact_restores(backend: Backend) {
    let data = bytes(27 * MIB + 4321, 3);
    for read_ahead in [Some(1), Some(6), None] {
        let env = env_with(backend, read_ahead);
        env.backup_data(TS, NAME, &data);
        let key = env.key(TS, NAME);
        let out = restore(
            &env,
            &["restore_data", env.cfg(), &key],
            &slow_reads(backend),
        );
        ok(&out);
        assert!(out.stdout == data, "{read_ahead:?}: wrong bytes");
        let in_flight = most_in_flight(&env);
        match read_ahead {
            Some(1) => assert_eq!(in_flight, 1),
            Some(n) => assert_eq!(in_flight, n, "{}", env.log_text()),
            None => assert_eq!(in_flight, 8, "{}", env.log_text()),
        }
        // restore_file takes the same path.
        let file_key = env.key(TS, "gpbackup_20250101120000_report");
        env.backup_data(TS, "gpbackup_20250101120000_report", &data);
        let out = restore(
            &env,
            &["restore_file", env.cfg(), &file_key],
            &slow_reads(backend),
        );
        ok(&out);
        let restored = std::fs::read(env.key(TS, "gpbackup_20250101120000_report")).unwrap();
        assert!(restored == data, "restore_file {read_ahead:?}");
        // Without slow reads (the page cache, a fast mock) it reads alike.
        assert!(env.restore_data(TS, NAME) == data);
    }
}

#[test]
fn read_ahead_restores_are_byte_exact_local() {
    byte_exact_restores(Backend::Local);
}

#[test]
fn read_ahead_restores_are_byte_exact_ddboost() {
    byte_exact_restores(Backend::DdBoostMock);
}

fn corrupt_block_never_output(backend: Backend) {
    let env = env_with(backend, Some(8));
    let data = bytes(24 * MIB + 2, 12);
    env.backup_data(TS, NAME, &data);
    env.corrupt(TS, NAME); // flips the byte at 12 MiB + 1
    let out = restore(
        &env,
        &["restore_data", env.cfg(), &env.key(TS, NAME)],
        &slow_reads(backend),
    );
    let err = fails(&out);
    assert!(err.contains("checksum"), "{err}");
    assert!(
        out.stdout == data[..12 * MIB],
        "{} bytes written, expected the 12 blocks before the damaged one",
        out.stdout.len()
    );
    assert!(most_in_flight(&env) > 1, "{}", env.log_text());
}

#[test]
fn corrupt_block_never_output_with_read_ahead_local() {
    corrupt_block_never_output(Backend::Local);
}

#[test]
fn corrupt_block_never_output_with_read_ahead_ddboost() {
    corrupt_block_never_output(Backend::DdBoostMock);
}

/// About 2,000 ranges as gprestore asks for them: ascending, some adjacent,
/// some empty, small and large, with gaps of whole blocks between some.
fn many_ranges(size: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 17;
    let mut i = 0usize;
    while out.len() < 2000 {
        let len = match i % 7 {
            0 => 0,
            1 => 1,
            2 => 30_000,
            _ => 1 + (i * 7919) % 9000,
        };
        let gap = match i % 100 {
            0 | 11 | 22 => 0,
            50 => 2 * MIB + 3,
            _ => (i * 104_729) % 4000,
        };
        let start = pos + gap;
        if start + len > size {
            break;
        }
        out.push((start, start + len));
        pos = start + len;
        i += 1;
    }
    out
}

fn subset_with_many_ranges(backend: Backend) {
    let env = env_with(backend, Some(8));
    let data = bytes(64 * MIB + 5, 21);
    env.backup_data(TS, NAME, &data);
    let ranges = many_ranges(data.len());
    assert!(ranges.len() >= 1900, "{}", ranges.len());
    let mut text = ranges.len().to_string();
    let mut want = Vec::new();
    for (s, e) in &ranges {
        text.push_str(&format!(" {s} {e}"));
        want.extend_from_slice(&data[*s..*e]);
    }
    let offsets = env.tmp.path().join("offsets");
    std::fs::write(&offsets, &text).unwrap();
    let args = [
        "restore_data_subset",
        env.cfg(),
        &env.key(TS, NAME),
        offsets.to_str().unwrap(),
    ];
    let out = restore(&env, &args, &slow_reads(backend));
    ok(&out);
    assert!(out.stdout == want, "wrong subset bytes");
    assert!(most_in_flight(&env) > 1, "{}", env.log_text());
    // One read in flight gives the same bytes.
    env.write_config(&format!("{}  read_ahead: 1\n", env.backend_options()));
    let out = restore(&env, &args, &[]);
    ok(&out);
    assert!(out.stdout == want, "wrong subset bytes with read_ahead 1");
}

#[test]
fn subset_with_many_ranges_is_byte_exact_local() {
    subset_with_many_ranges(Backend::Local);
}

#[test]
fn subset_with_many_ranges_is_byte_exact_ddboost() {
    subset_with_many_ranges(Backend::DdBoostMock);
}

#[test]
fn read_ahead_takes_fewer_reads_when_few_read_streams_are_free() {
    let env = env_with(Backend::DdBoostMock, Some(8));
    let data = bytes(24 * MIB + 1, 8);
    env.backup_data(TS, NAME, &data);
    let key = env.key(TS, NAME);
    // 5 read streams: the restore's own leaves 4 free, of which it takes half.
    let vars = [
        ("DDBOOST_MOCK_LATENCY_MS", "2"),
        ("DDBOOST_MOCK_READ_STREAMS", "5"),
    ];
    let out = restore(&env, &["restore_data", env.cfg(), &key], &vars);
    ok(&out);
    assert!(out.stdout == data);
    let log = env.log_text();
    assert!(
        log.contains("3 of 8 reads in flight, as 4 of 5 read streams are free on dd-primary"),
        "{log}"
    );
    assert_eq!(most_in_flight(&env), 3);
    // One stream free beside its own (its record was read on another):
    // half of it is none, so one read in flight, and still exact.
    let vars = [
        ("DDBOOST_MOCK_LATENCY_MS", "2"),
        ("DDBOOST_MOCK_READ_STREAMS", "2"),
    ];
    let out = restore(&env, &["restore_data", env.cfg(), &key], &vars);
    ok(&out);
    assert!(out.stdout == data);
    assert!(
        env.log_text()
            .contains("1 of 8 reads in flight, as 1 of 2 read streams are free"),
        "{}",
        env.log_text()
    );
}

#[test]
fn small_objects_take_the_fewest_appliance_calls() {
    let env = Env::new(Backend::DdBoostMock);
    let trace = env.tmp.path().join("trace");
    let vars = [("DDBOOST_MOCK_TRACE", trace.to_str().unwrap())];
    // The backup's folder exists, as after setup_plugin_for_backup.
    ok(&env.run(&[
        "setup_plugin_for_backup",
        env.cfg(),
        &env.backup_dir(TS),
        "segment",
        "0",
    ]));
    let _ = std::fs::remove_file(&trace);
    let data = csv_rows(200, 4);
    let key = env.key(TS, NAME);
    ok(&env.run_stdin_env(&["backup_data", env.cfg(), &key], &data, &vars));
    let backup = taken_appliance_calls(&trace);
    assert_eq!(
        backup,
        [
            "connect",
            "open",   // the data's temporary
            "write",  // the data
            "close",  // ... finalised (its stream released)
            "open",   // a staged record left by an interrupted write? (no)
            "open",   // the staged record's temporary
            "write",  // the staged record
            "close",  // ... finalised
            "rename", // 1. staged
            "rename", // 2. the data in place
            "rename", // 3. the record in place
            "disconnect",
        ],
        "backup_data"
    );
    let out = restore(&env, &["restore_data", env.cfg(), &key], &vars);
    ok(&out);
    assert!(out.stdout == data);
    let restore_calls = taken_appliance_calls(&trace);
    assert_eq!(
        restore_calls,
        [
            "connect",
            "open",  // its record (before the object: one stream at a time)
            "read",  // all of it
            "close", //
            "open",  // the object
            "read",  // all of it (short: its size), and the record describes it:
            "close", // no staged record looked up
            "disconnect",
        ],
        "restore_data"
    );
    // An overwrite and a restore of it cost the same.
    ok(&env.run_stdin_env(&["backup_data", env.cfg(), &key], &data, &vars));
    assert_eq!(taken_appliance_calls(&trace).len(), 12);
}
