//! What must hold when things go wrong, on every backend: overwrites killed
//! between any two steps of a commit, signals racing with the end of input,
//! stale temporaries, verification before output, records of 0.1.0, and the
//! failure matrix (every storage call failing, as an error or as not-found).

mod support;

use std::io::Write;

use support::*;

const TS: &str = "20250101120000";
const NAME: &str = "gpbackup_0_20250101120000";
const MIB: usize = 1 << 20;

fn rel(name: &str) -> String {
    format!("backups/{}/{TS}/{name}", &TS[..8])
}

/// Whether pause `point` comes after the commit point of a write (the data
/// renamed into place).
fn committed_at(point: &str) -> bool {
    point == "data-committed" || point == "record-committed"
}

/// Starts an overwrite of NAME with `data` that stops at pause `point`, then
/// sends `sig`; returns once the process is gone. A signal other than KILL
/// after the commit point lets the write finish and succeed; before it, or
/// KILL, fails the command.
fn overwrite_stopped_at(env: &Env, data: &[u8], point: &str, sig: &str) {
    let cmd = env.command(&["backup_data", env.cfg(), &env.key(TS, NAME)]);
    let (child, _) = support::stopped_at(env, cmd, point, data);
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let finishes = sig != "KILL" && committed_at(point);
    assert_eq!(
        out.status.success(),
        finishes,
        "{point}/{sig}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

const STEPS: [&str; 4] = [
    "data-written",
    "record-staged",
    "data-committed",
    "record-committed",
];

fn overwrite_killed_at_each_step_keeps_old_or_new(env: &Env) {
    let old = bytes(3 * MIB + 5, 1);
    let new = bytes(2 * MIB + 7, 2);
    for sig in ["KILL", "TERM"] {
        for point in STEPS {
            env.backup_data(TS, NAME, &old);
            let before = env.temporaries();
            overwrite_stopped_at(env, &new, point, sig);
            let want = if committed_at(point) { &new } else { &old };
            assert!(
                env.restore_data(TS, NAME) == *want,
                "{point}/{sig}: restored neither the old nor the new object as expected"
            );
            // Subsets verify against the same records.
            let out = env.subset(TS, NAME, "2 10 20 2000000 2000100");
            ok(&out);
            assert_eq!(
                out.stdout,
                [&want[10..20], &want[2_000_000..2_000_100]].concat()
            );
            if sig == "TERM" {
                assert_eq!(env.temporaries(), before, "{point}/{sig} left a temporary");
            }
        }
    }
}

fn interrupted_overwrites_in_a_row_stay_readable(env: &Env) {
    let v = |i: usize| bytes(MIB + 100 * i, 10 + i as u64);
    env.backup_data(TS, NAME, &v(0));
    // New data in place, its record still staged...
    overwrite_stopped_at(env, &v(1), "data-committed", "KILL");
    assert_eq!(env.restore_data(TS, NAME), v(1));
    // ...then another overwrite killed before its data is in place.
    overwrite_stopped_at(env, &v(2), "record-staged", "KILL");
    assert_eq!(env.restore_data(TS, NAME), v(1));
    overwrite_stopped_at(env, &v(3), "data-committed", "KILL");
    assert_eq!(env.restore_data(TS, NAME), v(3));
    // A finished write leaves one record and nothing staged.
    env.backup_data(TS, NAME, &v(4));
    assert_eq!(env.restore_data(TS, NAME), v(4));
    assert!(env
        .get_raw(&rel(&format!(".{NAME}.checksum.next")))
        .is_none());
}

fn stale_temporaries_are_swept_by_the_cleanup_hook(env: &Env) {
    env.backup_data(TS, NAME, &bytes(MIB, 3));
    overwrite_stopped_at(env, &bytes(2 * MIB, 4), "data-written", "KILL");
    let left = env.temporaries();
    assert_eq!(left.len(), 1, "kill -9 leaves its temporary: {left:?}");
    // A temporary of another host's writer may belong to a live process.
    let foreign = rel(&format!(".{NAME}.tmp-otherhost-1234-abcx0"));
    env.put_raw(&foreign, b"partial");
    let out = env.run(&[
        "cleanup_plugin_for_backup",
        env.cfg(),
        &env.backup_dir(TS),
        "segment",
        "0",
    ]);
    ok(&out);
    let left = env.temporaries();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("otherhost"), "{left:?}");
    assert_eq!(env.restore_data(TS, NAME), bytes(MIB, 3));
    // delete_backup removes everything, temporaries included.
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

fn signal_racing_with_end_of_input_stores_nothing(env: &Env) {
    for i in 0..20 {
        let name = format!("race_{i}");
        let mut child = env.spawn_stdin(&["backup_data", env.cfg(), &env.key(TS, &name)]);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&bytes(256 << 10, i)).unwrap();
        // As when gpbackup signals the process group: the plugin is
        // signalled and its producer goes away at once.
        let st = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "run {i}: {:?}", out.status);
        assert!(
            env.get_raw(&rel(&name)).is_none(),
            "run {i}: an interrupted backup left an object"
        );
        assert_eq!(env.temporaries(), Vec::<String>::new(), "run {i}");
    }
}

fn corrupt_block_never_reaches_the_output(env: &Env) {
    let data = bytes(3 * MIB, 12);
    env.backup_data(TS, NAME, &data);
    env.corrupt(TS, NAME); // flips the byte at 1.5 MiB
    let out = env.run(&["restore_data", env.cfg(), &env.key(TS, NAME)]);
    let err = fails(&out);
    assert!(err.contains("checksum"), "{err}");
    assert_eq!(out.stdout, data[..MIB], "only the verified first block");
    // A subset touching the damaged block fails before its bytes go out.
    let mid = 3 * MIB / 2;
    let out = env.subset(TS, NAME, &format!("2 5 50 {} {}", mid - 10, mid + 10));
    fails(&out);
    assert_eq!(out.stdout, data[5..50]);
    // Ranges elsewhere restore.
    let out = env.subset(TS, NAME, &format!("1 {} {}", 2 * MIB + 1, 2 * MIB + 99));
    ok(&out);
    assert_eq!(out.stdout, data[2 * MIB + 1..2 * MIB + 99]);
}

fn records_of_0_1_0_still_restore(env: &Env) {
    let data = bytes(2 * MIB + 3, 5);
    env.backup_data(TS, NAME, &data);
    let v1 = |d: &[u8]| {
        format!(
            "gpbackup_ddboost_plugin checksum v1\nalgorithm=xxh3-128\nsize={}\ndigest={:032x}\n",
            d.len(),
            xxhash_rust::xxh3::xxh3_128(d)
        )
    };
    env.put_raw(&rel(&format!(".{NAME}.checksum")), v1(&data).as_bytes());
    assert_eq!(env.restore_data(TS, NAME), data);
    let out = env.subset(TS, NAME, "1 100 200");
    ok(&out);
    assert_eq!(out.stdout, data[100..200]);
    // A v1 record that does not match fails the restore, last block held back.
    env.put_raw(&rel(&format!(".{NAME}.checksum")), v1(b"other").as_bytes());
    let out = env.run(&["restore_data", env.cfg(), &env.key(TS, NAME)]);
    fails(&out);
    env.put_raw(
        &rel(&format!(".{NAME}.checksum")),
        v1(&bytes(2 * MIB + 3, 6)).as_bytes(),
    );
    let out = env.run(&["restore_data", env.cfg(), &env.key(TS, NAME)]);
    fails(&out);
    assert!(out.stdout.len() < data.len());
}

// ---- the failure matrix ---------------------------------------------------------------------

/// How a fault shows: as a storage failure or as a definite "no such object".
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Io,
    NotFound,
}

/// Which command a matrix row runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmd {
    Overwrite,
    Restore,
    Subset,
    List,
    Delete,
    SetupBackup,
}

/// The fault variable and rule that make `call` fail on this backend.
fn fault(env: &Env, call: &str, outcome: Outcome) -> (&'static str, String) {
    let local_err = match outcome {
        Outcome::Io => "io",
        Outcome::NotFound => "notfound",
    };
    let dd_err = match outcome {
        Outcome::Io => "DD_ERR_IO",
        Outcome::NotFound => "DD_ERR_NOT_FOUND",
    };
    match env.backend {
        Backend::Local => {
            let rule = match call {
                "create data" => "create:nth=1",
                "write" => "write:nth=2",
                "create record" => "create:nth=2",
                "commit record" => "commit:nth=1",
                "commit data" => "commit:nth=2",
                "publish record" => "rename",
                "look up staged record" => "stat:path=.next",
                "look up object" => "stat:path=/gpbackup_0_20250101120000:nth=1",
                "look up record" => "stat:path=.checksum:nth=1",
                "open object" => "open:path=/gpbackup_0_20250101120000:nth=1",
                "read" => "read:nth=1",
                "list" => "list",
                "delete" => "delete:nth=1",
                "mkdir" => "mkdir",
                other => panic!("no local rule for {other}"),
            };
            (
                "GPBACKUP_DDBOOST_PLUGIN_FAULTS",
                format!("{rule}:err={local_err}"),
            )
        }
        Backend::DdBoostMock => {
            let rule = match call {
                // A first "not found" makes the folders and opens again.
                "create data" => "open:nth=1:count=2:path=.tmp-",
                "write" => "write:nth=2",
                "create record" => "open:nth=2:path=.tmp-",
                "commit record" => "rename:nth=1",
                "commit data" => "close:nth=1",
                "publish record" => "rename:nth=3",
                // Objects and records are looked up by opening them (no stat).
                "look up staged record" => "open:path=.checksum.next:nth=1",
                "look up object" => "open:path=/gpbackup_0_20250101120000:nth=1",
                "look up record" => "open:path=.checksum:nth=1",
                "open object" => "open:path=/gpbackup_0_20250101120000:nth=1",
                "read" => "read:nth=1",
                "list" => "readdir:nth=1",
                "delete" => "unlink:nth=1",
                "mkdir" => "mkdir",
                other => panic!("no mock rule for {other}"),
            };
            ("DDBOOST_MOCK_FAULTS", format!("{rule}:err={dd_err}"))
        }
    }
}

/// (command, failing call, outcome, whether the command must still succeed)
const MATRIX: &[(Cmd, &str, Outcome, bool)] = &[
    (Cmd::Overwrite, "create data", Outcome::Io, false),
    (Cmd::Overwrite, "create data", Outcome::NotFound, false),
    (Cmd::Overwrite, "write", Outcome::Io, false),
    (Cmd::Overwrite, "write", Outcome::NotFound, false),
    (Cmd::Overwrite, "create record", Outcome::Io, false),
    (Cmd::Overwrite, "commit record", Outcome::Io, false),
    (Cmd::Overwrite, "commit data", Outcome::Io, false),
    (Cmd::Overwrite, "commit data", Outcome::NotFound, false),
    // After the data's rename (the commit point): a warning, not a failure.
    (Cmd::Overwrite, "publish record", Outcome::Io, true),
    (Cmd::Overwrite, "publish record", Outcome::NotFound, true),
    (Cmd::Overwrite, "look up staged record", Outcome::Io, false),
    // Nothing staged before: absent is the truth, the write goes on.
    (
        Cmd::Overwrite,
        "look up staged record",
        Outcome::NotFound,
        true,
    ),
    (Cmd::Restore, "look up object", Outcome::Io, false),
    (Cmd::Restore, "look up object", Outcome::NotFound, false),
    (Cmd::Restore, "open object", Outcome::Io, false),
    (Cmd::Restore, "open object", Outcome::NotFound, false),
    (Cmd::Restore, "look up record", Outcome::Io, false),
    (Cmd::Restore, "read", Outcome::Io, false),
    (Cmd::Subset, "look up object", Outcome::Io, false),
    (Cmd::Subset, "look up record", Outcome::Io, false),
    (Cmd::Subset, "read", Outcome::Io, false),
    (Cmd::List, "list", Outcome::Io, false),
    (Cmd::Delete, "delete", Outcome::Io, false),
    (Cmd::SetupBackup, "mkdir", Outcome::Io, false),
];

fn failure_matrix(env: &Env) {
    let old = bytes(2 * MIB + 11, 20);
    let new = bytes(3 * MIB + 13, 21);
    let mut counts = std::collections::BTreeMap::new();
    for &(cmd, call, outcome, succeeds) in MATRIX {
        env.backup_data(TS, NAME, &old);
        let (var, rule) = fault(env, call, outcome);
        let what = format!("{cmd:?} with {call} failing ({outcome:?}, {var}={rule})");
        eprintln!("matrix row: {what}");
        let vars = [(var, rule.as_str())];
        let offsets = env.tmp.path().join("matrix-offsets");
        std::fs::write(&offsets, "1 100 200").unwrap();
        let key = env.key(TS, NAME);
        let out = match cmd {
            Cmd::Overwrite => env.run_stdin_env(&["backup_data", env.cfg(), &key], &new, &vars),
            Cmd::Restore => env.run_stdin_env(&["restore_data", env.cfg(), &key], b"", &vars),
            Cmd::Subset => env.run_stdin_env(
                &[
                    "restore_data_subset",
                    env.cfg(),
                    &key,
                    offsets.to_str().unwrap(),
                ],
                b"",
                &vars,
            ),
            Cmd::List => env.run_stdin_env(&["list_directory", env.cfg()], b"", &vars),
            Cmd::Delete => env.run_stdin_env(&["delete_backup", env.cfg(), TS], b"", &vars),
            Cmd::SetupBackup => env.run_stdin_env(
                &[
                    "setup_plugin_for_backup",
                    env.cfg(),
                    &env.backup_dir("20250102120000"),
                    "coordinator",
                    "-1",
                ],
                b"",
                &vars,
            ),
        };
        if succeeds {
            assert!(out.status.success(), "{what}: {out:?}");
        } else {
            let err = fails(&out);
            assert!(out.stdout.is_empty(), "{what}: wrote output before failing");
            if outcome == Outcome::Io {
                assert!(
                    !err.contains("not found"),
                    "{what}: reported as absent: {err}"
                );
            }
        }
        // The object is whole: old, or new once its data was committed.
        let now = env.restore_data(TS, NAME);
        let want = if cmd == Cmd::Overwrite && succeeds {
            &new
        } else {
            &old
        };
        assert!(
            now == *want,
            "{what}: the object is not the expected version"
        );
        assert_eq!(env.temporaries(), Vec::<String>::new(), "{what}");
        *counts.entry(format!("{cmd:?}/{outcome:?}")).or_insert(0) += 1;
    }
    eprintln!("{:?} failure matrix: {counts:?}", env.backend);
}

// ---- the overwrite sweep -------------------------------------------------------------------

/// The fault rules that fail each call of an overwrite in turn, before and
/// after its effect: on the mock, every appliance call the overwrite makes
/// (from its trace) with `DD_ERR_IO` and `DD_ERR_CONN_LOST`; on the local
/// backend, every call of the fault wrapper, as an error and as not-found.
fn sweep_rules(env: &Env, data: &[u8]) -> (&'static str, Vec<String>) {
    match env.backend {
        Backend::Local => (
            "GPBACKUP_DDBOOST_PLUGIN_FAULTS",
            support::failing_in_turn(&support::OVERWRITE_CALLS),
        ),
        Backend::DdBoostMock => {
            let trace = env.tmp.path().join("sweep-trace");
            let vars = [("DDBOOST_MOCK_TRACE", trace.to_str().unwrap())];
            ok(&env.run_stdin_env(&["backup_data", env.cfg(), &env.key(TS, NAME)], data, &vars));
            let mut seen = std::collections::BTreeMap::new();
            let mut rules = Vec::new();
            for op in taken_appliance_calls(&trace) {
                let n = seen.entry(op.clone()).or_insert(0);
                *n += 1;
                for err in ["DD_ERR_IO", "DD_ERR_CONN_LOST"] {
                    for when in ["before", "after"] {
                        rules.push(format!("{op}:nth={n}:err={err}:when={when}"));
                    }
                }
            }
            ("DDBOOST_MOCK_FAULTS", rules)
        }
    }
}

/// One failing call at each step of an overwrite, failing before or after
/// its effect: the command either fails and the old object restores, or
/// succeeds and the new one does. Never a failed command with the new
/// object, nor a successful one with the old.
fn overwrite_sweep_exit_code_is_the_commit(env: &Env) {
    let old = bytes(2 * MIB + 11, 40);
    let new = bytes(3 * MIB + 13, 41);
    env.backup_data(TS, NAME, &old);
    let (var, rules) = sweep_rules(env, &new);
    let (mut failed, mut succeeded) = (0, 0);
    for rule in &rules {
        env.backup_data(TS, NAME, &old);
        let out = env.run_stdin_env(
            &["backup_data", env.cfg(), &env.key(TS, NAME)],
            &new,
            &[(var, rule.as_str())],
        );
        let now = env.restore_data(TS, NAME);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            assert!(now == new, "{rule}: exit 0 but the old object restores");
            succeeded += 1;
        } else {
            assert!(
                now == old,
                "{rule}: failed ({err}) but the new object restores"
            );
            assert_eq!(err.trim().lines().count(), 1, "{rule}: {err}");
            failed += 1;
        }
        assert_eq!(env.temporaries(), Vec::<String>::new(), "{rule}");
    }
    eprintln!(
        "{:?} overwrite sweep: {} rules, {failed} failed with the old object, {succeeded} succeeded with the new",
        env.backend,
        rules.len()
    );
    assert!(failed > 0 && succeeded > 0);
}

/// A data rename that reports an error when whether it took effect cannot be
/// told either (the temporary cannot be looked up): the command fails and
/// says so, rather than claim the old object.
fn an_untellable_commit_fails_saying_so(env: &Env) {
    let old = bytes(MIB + 1, 42);
    let new = bytes(MIB + 2, 43);
    env.backup_data(TS, NAME, &old);
    let (var, rule) = match env.backend {
        Backend::Local => (
            "GPBACKUP_DDBOOST_PLUGIN_FAULTS",
            "commit:nth=2:err=io:when=after;stat:path=.tmp-:err=io",
        ),
        Backend::DdBoostMock => (
            "DDBOOST_MOCK_FAULTS",
            "rename:nth=2:err=DD_ERR_IO:when=after;stat:path=.tmp-:err=DD_ERR_IO",
        ),
    };
    let out = env.run_stdin_env(
        &["backup_data", env.cfg(), &env.key(TS, NAME)],
        &new,
        &[(var, rule)],
    );
    let err = fails(&out);
    assert!(err.contains("cannot tell whether"), "{err}");
    assert!(env.restore_data(TS, NAME) == new, "the rename took effect");
}

// ---- instantiation ---------------------------------------------------------------------------

macro_rules! all_cases {
    ($backend_mod:ident, $backend:expr) => {
        per_backend!(
            $backend_mod,
            $backend,
            [
                overwrite_killed_at_each_step_keeps_old_or_new,
                interrupted_overwrites_in_a_row_stay_readable,
                stale_temporaries_are_swept_by_the_cleanup_hook,
                signal_racing_with_end_of_input_stores_nothing,
                corrupt_block_never_reaches_the_output,
                records_of_0_1_0_still_restore,
                failure_matrix,
                overwrite_sweep_exit_code_is_the_commit,
                an_untellable_commit_fails_saying_so,
            ]
        );
    };
}

all_cases!(local, super::Backend::Local);
all_cases!(ddboost_mock, super::Backend::DdBoostMock);
