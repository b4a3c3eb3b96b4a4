//! More restores and backups at once than the Data Domain has streams, on
//! the mock with its stream limits: every process waits its turn (the waits
//! logged) and finishes byte-exact; with a short `stream_wait_seconds` the
//! ones that waited too long fail with one clear line and output nothing.
//!
//! Objects are `STREAMS_TEST_MIB` MiB (8 by default, to keep the debug-build
//! suite short; the 64 MiB case is
//! `STREAMS_TEST_MIB=64 cargo test --release --test streams`).

mod support;

use std::process::Output;

use support::*;

const TS: &str = "20250101120000";
const MIB: usize = 1 << 20;
/// Processes of each kind at once: three times the streams.
const PROCESSES: usize = 12;
const STREAMS: &str = "4";

fn object_size() -> usize {
    std::env::var("STREAMS_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        * MIB
}

fn name(i: usize) -> String {
    format!("gpbackup_{i}_{TS}")
}

/// The stream limits and the latency of the runs.
fn limits(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("DDBOOST_MOCK_READ_STREAMS", STREAMS),
        ("DDBOOST_MOCK_WRITE_STREAMS", STREAMS),
        ("DDBOOST_MOCK_LATENCY_MS", "2"),
    ];
    v.extend_from_slice(extra);
    v
}

/// Runs PROCESSES restores of the objects `0..PROCESSES` and PROCESSES
/// backups of the objects `PROCESSES..2*PROCESSES`, all at once.
fn restores_and_backups_at_once(
    env: &Env,
    cfg: &str,
    vars: &[(&str, &str)],
) -> (Vec<Output>, Vec<Output>) {
    std::thread::scope(|s| {
        let restores: Vec<_> = (0..PROCESSES)
            .map(|i| {
                s.spawn(move || {
                    env.run_stdin_env(&["restore_data", cfg, &env.key(TS, &name(i))], b"", vars)
                })
            })
            .collect();
        let backups: Vec<_> = (PROCESSES..2 * PROCESSES)
            .map(|i| {
                s.spawn(move || {
                    let data = bytes(object_size(), i as u64);
                    env.run_stdin_env(&["backup_data", cfg, &env.key(TS, &name(i))], &data, vars)
                })
            })
            .collect();
        (
            restores.into_iter().map(|h| h.join().unwrap()).collect(),
            backups.into_iter().map(|h| h.join().unwrap()).collect(),
        )
    })
}

fn stored_objects(env: &Env) {
    for i in 0..PROCESSES {
        env.backup_data(TS, &name(i), &bytes(object_size(), i as u64));
    }
}

#[test]
fn more_restores_and_backups_than_streams_all_finish_byte_exact() {
    let env = Env::new(Backend::DdBoostMock);
    stored_objects(&env);
    let (restores, backups) = restores_and_backups_at_once(&env, env.cfg(), &limits(&[]));
    for (i, out) in restores.iter().enumerate() {
        ok(out);
        assert!(
            out.stdout == bytes(object_size(), i as u64),
            "restore {i}: not byte-exact"
        );
    }
    for out in &backups {
        ok(out);
    }
    for i in PROCESSES..2 * PROCESSES {
        assert!(
            env.restore_data(TS, &name(i)) == bytes(object_size(), i as u64),
            "backup {i}: not byte-exact"
        );
    }
    let log = env.log_text();
    let waits = log.matches("waiting for one, up to 3600 s").count();
    eprintln!("{waits} waits logged");
    assert!(waits > 0, "no wait was logged");
    assert!(log.contains("read stream of dd-primary is taken") || log.contains("write stream"));
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

#[test]
fn a_short_stream_wait_fails_with_one_line_and_outputs_nothing_wrong() {
    let env = Env::new(Backend::DdBoostMock);
    stored_objects(&env);
    let cfg = env.other_config(
        "short_wait.yaml",
        &format!("{}  stream_wait_seconds: 1\n", env.backend_options()),
    );
    // Slow streams: each process holds its stream for about two seconds.
    let mbps = (object_size() / MIB / 2).max(1).to_string();
    let mbps: &'static str = Box::leak(mbps.into_boxed_str());
    let vars = limits(&[("DDBOOST_MOCK_STREAM_MBPS", mbps)]);
    let (restores, backups) = restores_and_backups_at_once(&env, cfg.to_str().unwrap(), &vars);
    let mut failed = 0;
    for (i, out) in restores.iter().chain(backups.iter()).enumerate() {
        if out.status.success() {
            if i < PROCESSES {
                assert!(
                    out.stdout == bytes(object_size(), i as u64),
                    "restore {i}: not byte-exact"
                );
            }
            continue;
        }
        failed += 1;
        let err = fails(out);
        assert!(out.stdout.is_empty(), "{i}: output before failing");
        assert_eq!(err.trim().lines().count(), 1, "{i}: {err}");
        assert!(
            err.contains("stream limit") && err.contains("stream_wait_seconds"),
            "{i}: {err}"
        );
    }
    eprintln!("{failed} of {} processes gave up waiting", 2 * PROCESSES);
    assert!(failed > 0, "every process found a stream within 1 s");
    // A backup that gave up stored nothing; one that finished is whole.
    for i in PROCESSES..2 * PROCESSES {
        let out = env.run(&["restore_data", env.cfg(), &env.key(TS, &name(i))]);
        if backups[i - PROCESSES].status.success() {
            ok(&out);
            assert!(out.stdout == bytes(object_size(), i as u64), "backup {i}");
        } else {
            fails(&out);
            assert!(out.stdout.is_empty());
        }
    }
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

#[test]
fn replication_copies_wait_for_streams_holding_none_meanwhile() {
    let env = Env::new(Backend::DdBoostMock);
    create_system(&env.dd_root(), "dd-replica");
    let cfg = env.other_config(
        "replicate.yaml",
        &format!(
            "{}  remote_hostname: dd-replica\n  remote_username: {DD_USER}\n  remote_password: {DD_PASSWORD}\n  remote_storage_unit: {DD_SU}\n  remote_directory: gpdb/replica\n  replication_streams: 8\n",
            env.backend_options()
        ),
    );
    let secondary = env.other_config(
        "secondary.yaml",
        &env.dd_options("dd-replica", "gpdb/replica"),
    );
    for i in 0..PROCESSES {
        env.backup_data(TS, &name(i), &bytes(2 * MIB + i, i as u64));
    }
    // Eight copies at once, two write streams (on every system).
    let out = env.run_stdin_env(
        &["replicate_backup", cfg.to_str().unwrap(), TS],
        b"",
        &[
            ("DDBOOST_MOCK_WRITE_STREAMS", "2"),
            ("DDBOOST_MOCK_LATENCY_MS", "2"),
        ],
    );
    ok(&out);
    for i in 0..PROCESSES {
        let out = env.run(&[
            "restore_data",
            secondary.to_str().unwrap(),
            &env.key(TS, &name(i)),
        ]);
        ok(&out);
        assert!(out.stdout == bytes(2 * MIB + i, i as u64), "object {i}");
    }
    assert!(env.log_text().contains("every write stream there is taken"));
}
