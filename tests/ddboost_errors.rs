//! SDK errors through the plugin binary against the mock libDDBoost: only a
//! definite "not found" means absent; every other failure fails the command
//! with one stderr line and leaves the stored backup as it was. Connect
//! retries, and the cleanup of temporaries after a lost connection.

mod support;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

const TS: &str = "20250101120000";
const TS2: &str = "20250101130000";
const MIB: usize = 1 << 20;

/// Errors that say nothing about whether an object exists.
const NOT_ABSENCE: [&str; 2] = ["DD_ERR_CONN_LOST", "DD_ERR_IO"];

fn dd_env() -> Env {
    Env::new(Backend::DdBoostMock)
}

fn data_name() -> String {
    format!("gpbackup_0_{TS}")
}

/// Runs `args` (no stdin) with `DDBOOST_MOCK_FAULTS=faults`.
fn run_faulty(env: &Env, args: &[&str], faults: &str) -> Output {
    env.command(args)
        .env("DDBOOST_MOCK_FAULTS", faults)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A backup of two objects; returns their contents.
fn backup(env: &Env, cfg: &str) -> (Vec<u8>, Vec<u8>) {
    let (a, b) = (csv_rows(30_000, 1), bytes(MIB + 17, 2));
    ok(&env.run_stdin(&["backup_data", cfg, &env.key(TS, &data_name())], &a));
    ok(&env.run_stdin(&["backup_data", cfg, &env.key(TS, "report")], &b));
    (a, b)
}

/// The backup still restores byte for byte with `cfg`.
#[track_caller]
fn restores(env: &Env, cfg: &str, (a, b): &(Vec<u8>, Vec<u8>)) {
    for (name, want) in [(data_name(), a), ("report".to_string(), b)] {
        let out = env.run(&["restore_data", cfg, &env.key(TS, &name)]);
        ok(&out);
        assert!(&out.stdout == want, "{name} restored wrong bytes");
    }
}

/// Asserts a clean failure that names `code`; returns the stderr line.
#[track_caller]
fn fails_with(out: &Output, code: &str) -> String {
    let err = fails(out);
    assert!(err.contains(code), "expected {code}: {err}");
    err
}

/// Temporaries (the plugin's `.NAME.tmp-...` objects) on the mock system.
fn temporaries(env: &Env) -> Vec<String> {
    walk(&env.dd_root())
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains(".tmp-"))
        .collect()
}

#[test]
fn stat_errors_fail_delete_backup_and_the_backup_survives() {
    let env = dd_env();
    let data = backup(&env, env.cfg());
    for code in NOT_ABSENCE {
        let out = run_faulty(
            &env,
            &["delete_backup", env.cfg(), TS],
            &format!("stat:err={code}"),
        );
        fails_with(&out, code);
        restores(&env, env.cfg(), &data);
    }
    // Without the fault the same command deletes it.
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    fails(&env.run(&["restore_data", env.cfg(), &env.key(TS, &data_name())]));
}

#[test]
fn stat_errors_fail_list_directory_with_nothing_on_stdout() {
    let env = dd_env();
    backup(&env, env.cfg());
    assert!(env.listing().contains(&data_name()));
    for code in NOT_ABSENCE {
        for faults in [
            format!("stat:err={code}"),
            // Only the stat of an entry found by readdir fails.
            format!("stat:nth=3:err={code}"),
        ] {
            let out = run_faulty(&env, &["list_directory", env.cfg()], &faults);
            fails_with(&out, code);
            assert!(out.stdout.is_empty(), "{faults}: {:?}", out.stdout);
        }
    }
}

/// A restore looks its object up by opening it (no stat first).
#[test]
fn lookup_errors_fail_restore_without_saying_not_found() {
    let env = dd_env();
    backup(&env, env.cfg());
    for code in NOT_ABSENCE {
        let out = run_faulty(
            &env,
            &["restore_data", env.cfg(), &env.key(TS, &data_name())],
            &format!("open:err={code}"),
        );
        let err = fails_with(&out, code);
        assert!(!err.to_lowercase().contains("not found"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_definite_not_found_still_means_absent() {
    let env = dd_env();
    let data = backup(&env, env.cfg());
    let out = run_faulty(
        &env,
        &["restore_data", env.cfg(), &env.key(TS, &data_name())],
        "open:err=DD_ERR_NOT_FOUND",
    );
    let err = fails(&out);
    assert!(err.contains("not found"), "{err}");
    let out = run_faulty(
        &env,
        &["list_directory", env.cfg()],
        "stat:err=DD_ERR_NOT_FOUND",
    );
    ok(&out);
    assert!(out.stdout.is_empty());
    restores(&env, env.cfg(), &data);
    // Really absent: a restore says so, a delete succeeds.
    let err = fails(&env.run(&["restore_data", env.cfg(), &env.key(TS2, "nothing")]));
    assert!(err.contains("not found"), "{err}");
    ok(&env.run(&["delete_backup", env.cfg(), TS2]));
    ok(&env.run(&["delete_directory", env.cfg(), "no/such/folder"]));
}

#[test]
fn unlink_errors_fail_delete_backup() {
    let env = dd_env();
    let data = backup(&env, env.cfg());
    for code in NOT_ABSENCE {
        let out = run_faulty(
            &env,
            &["delete_backup", env.cfg(), TS],
            &format!("unlink:err={code}"),
        );
        fails_with(&out, code);
        restores(&env, env.cfg(), &data);
    }
    // A failure after the first file was removed still fails the command.
    let out = run_faulty(
        &env,
        &["delete_backup", env.cfg(), TS],
        "unlink:nth=2:err=DD_ERR_IO",
    );
    fails_with(&out, "DD_ERR_IO");
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert!(!env.listing().contains(TS));
}

#[test]
fn rmdir_errors_fail_delete_backup_and_delete_directory() {
    let env = dd_env();
    backup(&env, env.cfg());
    for code in NOT_ABSENCE {
        // The backup's own folder cannot be removed.
        let out = run_faulty(
            &env,
            &["delete_backup", env.cfg(), TS],
            &format!("rmdir:path={TS}:err={code}"),
        );
        fails_with(&out, code);
        let out = run_faulty(
            &env,
            &["delete_directory", env.cfg(), "backups/20250101"],
            &format!("rmdir:err={code}"),
        );
        fails_with(&out, code);
        // Put the files back for the next round.
        backup(&env, env.cfg());
    }
    assert!(env.listing().contains(&data_name()));
}

#[test]
fn date_folder_left_behind_is_a_warning_not_a_failure() {
    let env = dd_env();
    backup(&env, env.cfg());
    // rmdir #1 is the backup's folder, #2 the date folder above it.
    let out = run_faulty(
        &env,
        &["delete_backup", env.cfg(), TS],
        "rmdir:nth=2:err=DD_ERR_IO",
    );
    ok(&out);
    let err = fails(&env.run(&["restore_data", env.cfg(), &env.key(TS, &data_name())]));
    assert!(err.contains("not found"), "{err}");
    let log = env.log_text();
    assert!(
        log.contains("date folder backups/20250101 could not be removed")
            && log.contains("DD_ERR_IO"),
        "{log}"
    );
    // The folder is still there, empty; the next delete removes it.
    let (_i, conn) = env.dd_connect("dd-primary");
    assert!(
        conn.stat(DD_SU, "gpdb/backups/backups/20250101")
            .unwrap()
            .is_dir
    );
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert!(conn
        .stat(DD_SU, "gpdb/backups/backups/20250101")
        .unwrap_err()
        .is_not_found());
}

/// A backup replicated to a second system with `replicate_backup`; returns
/// the config with the `remote_*` options and one that reads the replica.
fn replicated(env: &Env) -> (String, String) {
    create_system(&env.dd_root(), "dd-replica");
    let remote = format!(
        "  remote_hostname: dd-replica\n  remote_username: {DD_USER}\n  remote_password: {DD_PASSWORD}\n  remote_storage_unit: {DD_SU}\n  remote_directory: gpdb/replica\n  replication: \"on\"\n"
    );
    let repl = env.other_config(
        "ddboost_config_replication.yaml",
        &format!("{}{remote}", env.backend_options()),
    );
    let secondary = env.other_config(
        "ddboost_config_secondary.yaml",
        &env.dd_options("dd-replica", "gpdb/replica"),
    );
    (
        repl.to_str().unwrap().to_string(),
        secondary.to_str().unwrap().to_string(),
    )
}

#[test]
fn stat_errors_fail_delete_replica_and_the_replica_survives() {
    let env = dd_env();
    let (repl, secondary) = replicated(&env);
    // With replication on, each object is copied as it is written.
    let data = backup(&env, &repl);
    restores(&env, &secondary, &data);
    for code in NOT_ABSENCE {
        for faults in [
            format!("stat:err={code}"),
            format!("stat:path=gpdb/replica:err={code}"),
        ] {
            let out = run_faulty(&env, &["delete_replica", &repl, TS], &faults);
            fails_with(&out, code);
            restores(&env, &secondary, &data);
        }
    }
    let out = run_faulty(
        &env,
        &["delete_replica", &repl, TS],
        "unlink:path=gpdb/replica:err=DD_ERR_IO",
    );
    fails_with(&out, "DD_ERR_IO");
    restores(&env, &secondary, &data);
    // Without faults it is deleted from the replica only.
    let out = env.run(&["delete_replica", &repl, TS]);
    ok(&out);
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    fails(&env.run(&["restore_data", &secondary, &env.key(TS, &data_name())]));
    restores(&env, &repl, &data);
}

/// The `op=connect` lines of a mock trace file.
fn connects(trace: &std::path::Path) -> usize {
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("op=connect "))
        .count()
}

#[test]
fn a_refused_login_is_tried_exactly_once() {
    let env = dd_env();
    // Three attempts with long pauses: a retry would take 20 s or more.
    let slow =
        "  retry_max_attempts: 3\n  retry_initial_delay_ms: 20000\n  retry_max_delay_ms: 60000\n";
    for (opts, faults, code) in [
        (
            env.backend_options().replace(DD_PASSWORD, "wrong-Pa55word"),
            "",
            "DD_ERR_AUTH",
        ),
        (
            env.backend_options(),
            "connect:err=DD_ERR_PERM",
            "DD_ERR_PERM",
        ),
        (
            env.backend_options(),
            "connect:err=DD_ERR_INVALID",
            "DD_ERR_INVALID",
        ),
    ] {
        env.write_config(&format!("{opts}{slow}"));
        let trace = env.tmp.path().join(format!("trace-{code}.log"));
        let started = Instant::now();
        let out = env
            .command(&["restore_data", env.cfg(), &env.key(TS, "x")])
            .env("DDBOOST_MOCK_TRACE", &trace)
            .env("DDBOOST_MOCK_FAULTS", faults)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = fails_with(&out, code);
        assert!(!err.contains("wrong-Pa55word") && !err.contains(DD_PASSWORD));
        assert_eq!(connects(&trace), 1, "{code}: connect attempts");
        assert!(started.elapsed() < Duration::from_secs(15), "{code}");
        assert!(!env.log_text().contains("retrying in"), "{code}");
    }
}

#[test]
fn transient_connect_failures_are_retried() {
    let env = dd_env();
    let fast = format!(
        "{}  retry_max_attempts: 3\n  retry_initial_delay_ms: 10\n  retry_max_delay_ms: 50\n",
        env.backend_options()
    );
    env.write_config(&fast);
    for (i, code) in ["DD_ERR_CONN_LOST", "DD_ERR_CONNECT", "DD_ERR_STREAM_LIMIT"]
        .into_iter()
        .enumerate()
    {
        let trace = env.tmp.path().join(format!("trace-{code}.log"));
        let name = format!("obj{i}");
        let out = env
            .command(&["backup_data", env.cfg(), &env.key(TS, &name)])
            .env("DDBOOST_MOCK_TRACE", &trace)
            .env("DDBOOST_MOCK_FAULTS", format!("connect:nth=1:err={code}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&out);
        assert_eq!(connects(&trace), 2, "{code}: connect attempts");
        assert_eq!(env.restore_data(TS, &name), b"");
    }
    assert!(env.log_text().contains("retrying in"));
    // Always failing: every attempt is made, then the command fails.
    let trace = env.tmp.path().join("trace-always.log");
    let out = env
        .command(&["restore_data", env.cfg(), &env.key(TS, "obj0")])
        .env("DDBOOST_MOCK_TRACE", &trace)
        .env("DDBOOST_MOCK_FAULTS", "connect:err=DD_ERR_CONN_LOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    fails_with(&out, "DD_ERR_CONN_LOST");
    assert_eq!(connects(&trace), 3);
}

#[test]
fn a_write_that_lost_its_connection_leaves_no_temporary() {
    let env = dd_env();
    let data = bytes(5 * MIB, 3);
    let name = data_name();
    let args = ["backup_data", env.cfg(), &env.key(TS, &name)];
    for faults in [
        "write:after_bytes=2097152:err=DD_ERR_CONN_LOST",
        // Lost on the very first write, and on the close.
        "write:nth=1:err=DD_ERR_CONN_LOST",
        "close:path=.tmp-:err=DD_ERR_CONN_LOST",
    ] {
        let out = env.run_stdin_env(&args, &data, &[("DDBOOST_MOCK_FAULTS", faults)]);
        fails_with(&out, "DD_ERR_CONN_LOST");
        assert_eq!(temporaries(&env), Vec::<String>::new(), "{faults}");
        let err = fails(&env.run(&["restore_data", env.cfg(), &env.key(TS, &name)]));
        assert!(err.contains("not found"), "{faults}: {err}");
    }
    // When even the new connection cannot remove it, a warning names it.
    let faults = "write:nth=1:err=DD_ERR_CONN_LOST;unlink:path=.tmp-:err=DD_ERR_IO";
    let out = env.run_stdin_env(&args, &data, &[("DDBOOST_MOCK_FAULTS", faults)]);
    fails_with(&out, "DD_ERR_CONN_LOST");
    let left = temporaries(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    let temp = left[0].rsplit('/').next().unwrap();
    let log = env.log_text();
    assert!(
        log.contains("cannot remove the temporary") && log.contains(temp),
        "{log}"
    );
    // The leftover is invisible and goes with the backup.
    assert!(!env.listing().contains(".tmp-"));
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert_eq!(temporaries(&env), Vec::<String>::new());
}

#[test]
fn a_replica_write_that_lost_its_connection_leaves_no_temporary() {
    let env = dd_env();
    let (repl, secondary) = replicated(&env);
    let args = ["backup_data", &repl, &env.key(TS, "obj")];
    let faults = "filecopy_status:nth=1:err=DD_ERR_CONN_LOST";
    let out = env.run_stdin_env(
        &args,
        &bytes(2 * MIB, 4),
        &[("DDBOOST_MOCK_FAULTS", faults)],
    );
    fails(&out);
    assert_eq!(temporaries(&env), Vec::<String>::new());
    fails(&env.run(&["restore_data", &secondary, &env.key(TS, "obj")]));
}

#[test]
fn created_objects_are_readable_by_their_owner_only() {
    let env = dd_env();
    env.backup_data(TS, "obj", b"private");
    let (_i, conn) = env.dd_connect("dd-primary");
    let st = conn
        .stat(DD_SU, &format!("gpdb/backups/backups/20250101/{TS}/obj"))
        .unwrap();
    assert_eq!(st.mode & 0o777, 0o600, "mode {:o}", st.mode);
}
