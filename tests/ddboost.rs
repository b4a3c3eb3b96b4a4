//! The ddboost backend against the mock libDDBoost: what the conformance
//! suite cannot see from outside (write sizes, deduplication, injected
//! faults, replication, SDK loading and login errors).

mod support;

use std::io::Write;
use std::process::Stdio;

use support::*;

const TS: &str = "20250101120000";
const TS2: &str = "20250102120000";
const MIB: usize = 1 << 20;

fn dd_env() -> Env {
    Env::new(Backend::DdBoostMock)
}

fn stored(env: &Env) -> (u64, u64) {
    let t = totals(&env.dd_root(), "dd-primary");
    (t["unique_segment_bytes"], t["stored_bytes"])
}

#[test]
fn every_write_is_one_mebibyte_except_the_last() {
    let env = dd_env();
    let trace = env.tmp.path().join("trace.log");
    let data = bytes(3 * MIB + MIB / 2, 1);
    let out = env
        .command(&[
            "backup_data",
            env.cfg(),
            &env.key(TS, &format!("gpbackup_0_{TS}")),
        ])
        .env("DDBOOST_MOCK_TRACE", &trace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            let mut stdin = c.stdin.take().unwrap();
            // Small, uneven pieces: the plugin still writes whole MiBs.
            for chunk in data.chunks(10_007) {
                stdin.write_all(chunk).unwrap();
            }
            drop(stdin);
            c.wait_with_output()
        })
        .unwrap();
    ok(&out);
    let text = std::fs::read_to_string(&trace).unwrap();
    let writes: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("op=write") && l.contains(&format!("{TS}.tmp-")))
        .map(|l| {
            l.split(' ')
                .find_map(|f| f.strip_prefix("count="))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        writes,
        vec![MIB as u64, MIB as u64, MIB as u64, (MIB / 2) as u64],
        "{text}"
    );
    assert_eq!(env.restore_data(TS, &format!("gpbackup_0_{TS}")), data);
}

#[test]
fn repeated_identical_backup_adds_under_one_percent() {
    let env = dd_env();
    let data = csv_rows(600_000, 2); // about 24 MiB
    env.backup_data(TS, &format!("gpbackup_0_{TS}"), &data);
    let (u1, s1) = stored(&env);
    assert!(
        u1 as f64 > 0.9 * data.len() as f64,
        "first backup stored {u1} of {}",
        data.len()
    );
    env.backup_data(TS2, &format!("gpbackup_0_{TS2}"), &data);
    let (u2, s2) = stored(&env);
    let added = (u2 - u1) as f64 / data.len() as f64;
    assert!(
        added < 0.01,
        "a repeated backup added {:.2}% new bytes",
        added * 100.0
    );
    assert!(s2 - s1 < data.len() as u64 / 100, "stored {s1} -> {s2}");
    assert_eq!(env.restore_data(TS2, &format!("gpbackup_0_{TS2}")), data);
}

#[test]
fn modified_stream_adds_under_twice_the_changed_bytes() {
    let env = dd_env();
    let rows = 600_000;
    let base = csv_rows(rows, 3);
    env.backup_data(TS, "t", &base);
    let (u1, _) = stored(&env);
    // One row inserted near the start, and 5% of the rows changed, in ten
    // runs (updates touch some regions of a table, as real workloads do).
    let lines: Vec<&[u8]> = base.split_inclusive(|b| *b == b'\n').collect();
    let mut out = Vec::with_capacity(base.len() + 1000);
    let mut changed = 0usize;
    let run = rows / 200; // 0.5% of the rows per run, 10 runs
    for (i, line) in lines.iter().enumerate() {
        if i == 100 {
            let ins = b"999999999,1,inserted_row,42\n";
            out.extend_from_slice(ins);
            changed += ins.len();
        }
        let in_run = (1..=10).any(|k| i >= k * rows / 11 && i < k * rows / 11 + run);
        if in_run {
            let new = format!("{i},updated,{}\n", i * 31);
            changed += new.len();
            out.extend_from_slice(new.as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    env.backup_data(TS2, "t", &out);
    let (u2, _) = stored(&env);
    let added = u2 - u1;
    assert!(
        added < 2 * changed as u64,
        "modified stream added {added} bytes for {changed} changed bytes"
    );
    assert_eq!(env.restore_data(TS2, "t"), out);
}

/// Runs backup_data with injected faults and checks the failure is clean.
fn backup_with_fault(env: &Env, faults: &str, data: &[u8], expect: &str) {
    let name = format!("gpbackup_0_{TS}");
    let args = ["backup_data", env.cfg(), &env.key(TS, &name)];
    let out = env.run_stdin_env(&args, data, &[("DDBOOST_MOCK_FAULTS", faults)]);
    let err = fails(&out);
    assert!(err.contains(expect), "fault {faults}: {err}");
    let restore = env.run(&["restore_data", env.cfg(), &env.key(TS, &name)]);
    fails(&restore);
    assert!(
        !env.listing().contains(&name),
        "fault {faults} left an object"
    );
}

#[test]
fn injected_faults_fail_cleanly_and_leave_no_object() {
    let env = dd_env();
    let data = bytes(5 * MIB, 4);
    let data_tmp = format!("path={TS}.tmp-");
    for (faults, expect) in [
        // First, while the backup folder does not exist yet.
        ("mkdir:err=DD_ERR_PERM".to_string(), "DD_ERR_PERM"),
        (
            "write:nth=2:err=DD_ERR_NOSPACE".to_string(),
            "DD_ERR_NOSPACE",
        ),
        (
            "write:after_bytes=2097152:err=DD_ERR_CONN_LOST".to_string(),
            "DD_ERR_CONN_LOST",
        ),
        ("open:nth=1:err=DD_ERR_PERM".to_string(), "DD_ERR_PERM"),
        (format!("close:{data_tmp}:err=DD_ERR_IO"), "DD_ERR_IO"),
        (format!("rename:{data_tmp}:err=DD_ERR_IO"), "DD_ERR_IO"),
        ("connect:err=DD_ERR_CONNECT".to_string(), "DD_ERR_CONNECT"),
    ] {
        backup_with_fault(&env, &faults, &data, expect);
    }
    // A read failure cuts the restore short and fails it.
    env.backup_data(TS, "r", &data);
    let out = env
        .command(&["restore_data", env.cfg(), &env.key(TS, "r")])
        .env("DDBOOST_MOCK_FAULTS", "read:nth=3:err=DD_ERR_IO")
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("DD_ERR_IO"), "{err}");
    assert!(out.stdout.len() < data.len());
    // Slow storage (latency per call) still gives exact bytes.
    let out = env
        .command(&["restore_data", env.cfg(), &env.key(TS, "r")])
        .env("DDBOOST_MOCK_LATENCY_MS", "5")
        .output()
        .unwrap();
    ok(&out);
    assert!(out.stdout == data);
}

#[test]
fn concurrent_writers_and_readers() {
    let env = dd_env();
    let existing = bytes(6 * MIB, 5);
    env.backup_data(TS, "existing", &existing);
    let mut writers = Vec::new();
    for c in 0..8u64 {
        let mut child = env.spawn_stdin(&[
            "backup_data",
            env.cfg(),
            &env.key(TS, &format!("gpbackup_{c}_{TS}")),
        ]);
        let mut stdin = child.stdin.take().unwrap();
        let d = csv_rows(100_000, c + 10);
        std::thread::spawn(move || stdin.write_all(&d).unwrap());
        writers.push(child);
    }
    let readers: Vec<_> = (0..8)
        .map(|_| {
            env.command(&["restore_data", env.cfg(), &env.key(TS, "existing")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in readers {
        let out = r.wait_with_output().unwrap();
        ok(&out);
        assert!(out.stdout == existing);
    }
    for w in writers {
        ok(&w.wait_with_output().unwrap());
    }
    for c in 0..8u64 {
        assert!(env.restore_data(TS, &format!("gpbackup_{c}_{TS}")) == csv_rows(100_000, c + 10));
    }
}

#[test]
fn missing_library_wrong_password_unknown_host() {
    let env = dd_env();
    let base = env.backend_options();
    let cases = [
        (
            base.replace(
                &mock().lib.display().to_string(),
                "/nonexistent/libDDBoost.so",
            ),
            "/nonexistent/libDDBoost.so",
        ),
        (base.replace(DD_PASSWORD, "wrong-password"), "DD_ERR_AUTH"),
        (base.replace("dd-primary", "dd-nowhere"), "dd-nowhere"),
    ];
    for (opts, expect) in cases {
        env.write_config(&opts);
        let out = env.run_stdin(&["backup_data", env.cfg(), &env.key(TS, "x")], b"data");
        let err = fails(&out);
        assert!(err.contains(expect), "{err}");
        assert!(
            !err.contains(DD_PASSWORD) && !err.contains("wrong-password"),
            "{err}"
        );
    }
    // Without the option, the places searched are listed.
    let opts: String = base
        .lines()
        .filter(|l| !l.contains("ddboost_library"))
        .map(|l| format!("{l}\n"))
        .collect();
    env.write_config(&opts);
    let err = fails(&env.run_stdin(&["backup_data", env.cfg(), &env.key(TS, "x")], b"data"));
    assert!(
        err.contains("libDDBoost.so") && err.contains("lib/libDDBoost.so"),
        "{err}"
    );
}

/// An environment with a second system and three configs: replication on,
/// replication off with remote_* options, and one that reads the replica.
struct Replicated {
    env: Env,
    repl: std::path::PathBuf,
    plain: std::path::PathBuf,
    secondary: std::path::PathBuf,
}

fn replicated() -> Replicated {
    let env = dd_env();
    create_system(&env.dd_root(), "dd-replica");
    let remote = format!(
        "  remote_hostname: dd-replica\n  remote_username: {DD_USER}\n  remote_password: {DD_PASSWORD}\n  remote_storage_unit: {DD_SU}\n  remote_directory: gpdb/replica\n  replication_streams: 4\n"
    );
    let base = env.backend_options();
    let repl = env.other_config(
        "ddboost_config_replication.yaml",
        &format!("{base}{remote}  replication: \"on\"\n"),
    );
    let plain = env.other_config("ddboost_config.yaml", &format!("{base}{remote}"));
    let secondary = env.other_config(
        "ddboost_config_replication_restore.yaml",
        &env.dd_options("dd-replica", "gpdb/replica"),
    );
    Replicated {
        env,
        repl,
        plain,
        secondary,
    }
}

#[test]
fn replication_on_copies_each_object_before_exiting() {
    let r = replicated();
    let env = &r.env;
    let (repl, secondary) = (r.repl.to_str().unwrap(), r.secondary.to_str().unwrap());
    let data = csv_rows(50_000, 6);
    ok(&env.run(&[
        "setup_plugin_for_backup",
        repl,
        &env.backup_dir(TS),
        "master",
        "\"-1\"",
    ]));
    ok(&env.run_stdin(&["backup_data", repl, &env.key(TS, "gpbackup_0_x")], &data));
    ok(&env.run_stdin(&["backup_data", repl, &env.key(TS, "empty")], b""));
    let dir = env.backup_dir(TS);
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("{dir}/gpbackup_{TS}_report");
    std::fs::write(&file, b"report\n").unwrap();
    ok(&env.run(&["backup_file", repl, &file]));
    // Right away, the replica has every object (restored through a config that points at it).
    let out = env.run(&["restore_data", secondary, &env.key(TS, "gpbackup_0_x")]);
    ok(&out);
    assert!(out.stdout == data);
    let out = env.run(&["restore_data", secondary, &env.key(TS, "empty")]);
    ok(&out);
    assert!(out.stdout.is_empty());
    std::fs::remove_file(&file).unwrap();
    ok(&env.run(&["restore_file", secondary, &file]));
    assert_eq!(std::fs::read(&file).unwrap(), b"report\n");
    // delete_backup with replication on removes both copies.
    ok(&env.run(&["delete_backup", repl, TS]));
    fails(&env.run(&["restore_data", repl, &env.key(TS, "gpbackup_0_x")]));
    fails(&env.run(&["restore_data", secondary, &env.key(TS, "gpbackup_0_x")]));
}

/// Through the connection broker (its steps at once on several
/// connections), new objects and overwrites reach the replica too.
#[test]
fn replication_on_through_the_broker() {
    let r = replicated();
    let env = &r.env;
    let (repl, secondary) = (r.repl.to_str().unwrap(), r.secondary.to_str().unwrap());
    let dir = env.backup_dir(TS);
    let hook = |name: &str| ok(&env.run(&[name, repl, &dir, "segment_host", "0"]));
    hook("setup_plugin_for_backup");
    for (name, seed) in [("new", 1), ("twice", 2), ("twice", 3), ("empty", 4)] {
        let data = if name == "empty" {
            Vec::new()
        } else {
            csv_rows(2_000, seed)
        };
        ok(&env.run_stdin(&["backup_data", repl, &env.key(TS, name)], &data));
        for config in [repl, secondary] {
            let out = env.run(&["restore_data", config, &env.key(TS, name)]);
            ok(&out);
            assert!(out.stdout == data, "{name} ({seed}) through {config}");
        }
    }
    hook("cleanup_plugin_for_backup");
    assert!(env.log_text().contains("(broker "), "{}", env.log_text());
    assert!(replica_temporaries(env).is_empty());
}

#[test]
fn a_failed_replica_overwrite_keeps_the_old_replica_copy() {
    let r = replicated();
    let env = &r.env;
    let (repl, secondary) = (r.repl.to_str().unwrap(), r.secondary.to_str().unwrap());
    let key = env.key(TS, "gpbackup_0_x");
    let (old, new) = (bytes(3 * MIB + 1, 30), bytes(2 * MIB + 5, 31));
    ok(&env.run_stdin(&["backup_data", repl, &key], &old));
    // Each step of the copy to the replica fails in turn: the file copy, the
    // record staged there (its temporary, after the data's), the record's
    // rename there, the rename of the copied data, the record's rename (a
    // warning only: the replica's data is committed).
    for (fault, fails_command) in [
        ("filecopy_start:nth=1", true),
        ("open:path=gpdb/replica:nth=2", true),
        ("rename:path=gpdb/replica:nth=1", true),
        ("rename:path=gpdb/replica:nth=2", true),
        ("rename:path=gpdb/replica:nth=3", false),
    ] {
        let out = env.run_stdin_env(
            &["backup_data", repl, &key],
            &new,
            &[("DDBOOST_MOCK_FAULTS", &format!("{fault}:err=DD_ERR_IO"))],
        );
        assert_eq!(out.status.success(), !fails_command, "{fault}: {out:?}");
        // The replica holds one whole version, verified against its records.
        let got = env.run(&["restore_data", secondary, &key]);
        ok(&got);
        assert!(
            got.stdout == old || got.stdout == new,
            "{fault}: the replica copy is neither version"
        );
        // The primary's commit comes last: a failed replica copy leaves its
        // old object.
        let want = if fails_command { &old } else { &new };
        assert!(env.restore_data(TS, "gpbackup_0_x") == *want, "{fault}");
        ok(&env.run_stdin(&["backup_data", repl, &key], &old));
    }
}

/// With replication on, a folder change is made on the replica first: when
/// it fails there, the command fails and the primary is left as it was.
#[test]
fn folder_changes_reach_the_replica_first() {
    let r = replicated();
    let env = &r.env;
    let repl = r.repl.to_str().unwrap();
    let key = env.key(TS, "gpbackup_0_x");
    let primary_backup = env.dd_root().join(format!(
        "dd-primary/su/{DD_SU}/gpdb/backups/backups/{}/{TS}",
        &TS[..8]
    ));
    let replica_fault = |op: &str| {
        [(
            "DDBOOST_MOCK_FAULTS",
            format!("{op}:path=gpdb/replica:count=0"),
        )]
    };
    let setup = [
        "setup_plugin_for_backup",
        repl,
        &env.backup_dir(TS),
        "master",
        "\"-1\"",
    ];
    let [(k, v)] = replica_fault("mkdir");
    fails(&env.run_stdin_env(&setup, b"", &[(k, &v)]));
    assert!(!primary_backup.exists(), "the primary's folder was made");
    ok(&env.run(&setup));
    assert!(primary_backup.is_dir());
    ok(&env.run_stdin(&["backup_data", repl, &key], b"kept"));
    let [(k, v)] = replica_fault("unlink");
    fails(&env.run_stdin_env(&["delete_backup", repl, TS], b"", &[(k, &v)]));
    assert_eq!(env.restore_data(TS, "gpbackup_0_x"), b"kept");
    ok(&env.run(&["delete_backup", repl, TS]));
    assert!(!primary_backup.exists());
}

#[test]
fn replicate_backup_and_delete_replica() {
    let r = replicated();
    let env = &r.env;
    let (plain, secondary) = (r.plain.to_str().unwrap(), r.secondary.to_str().unwrap());
    for c in 0..6u64 {
        ok(&env.run_stdin(
            &[
                "backup_data",
                plain,
                &env.key(TS, &format!("gpbackup_{c}_{TS}")),
            ],
            &csv_rows(20_000, c),
        ));
    }
    // Not replicated yet.
    fails(&env.run(&[
        "restore_data",
        secondary,
        &env.key(TS, &format!("gpbackup_0_{TS}")),
    ]));
    ok(&env.run(&["replicate_backup", plain, TS]));
    for c in 0..6u64 {
        let out = env.run(&[
            "restore_data",
            secondary,
            &env.key(TS, &format!("gpbackup_{c}_{TS}")),
        ]);
        ok(&out);
        assert!(out.stdout == csv_rows(20_000, c));
    }
    // A second replication of the same backup fails as the test bench expects.
    let out = env.run(&["replicate_backup", plain, TS]);
    let err = fails(&out);
    assert!(
        err.contains("DDBoost open file in exclusive mode failed on remote"),
        "{err}"
    );
    // A backup that does not exist cannot be replicated.
    fails(&env.run(&["replicate_backup", plain, "20200101000000"]));
    // delete_replica removes only the remote copy; a repeat says so on stdout.
    let out = env.run(&["delete_replica", plain, TS]);
    ok(&out);
    fails(&env.run(&[
        "restore_data",
        secondary,
        &env.key(TS, &format!("gpbackup_0_{TS}")),
    ]));
    let out = env.run(&[
        "restore_data",
        plain,
        &env.key(TS, &format!("gpbackup_0_{TS}")),
    ]);
    ok(&out);
    let out = env.run(&["delete_replica", plain, TS]);
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already deleted"),
        "{:?}",
        out
    );
    // Without remote_* options these commands fail clearly.
    let err = fails(&env.run(&["delete_replica", env.cfg(), TS]));
    assert!(err.contains("remote"), "{err}");
}

#[test]
fn subset_reads_only_the_blocks_of_the_ranges() {
    let env = dd_env();
    let data = bytes(12 * MIB, 7);
    env.backup_data(TS, "big", &data);
    let trace = env.tmp.path().join("subset-trace.log");
    let offsets = env.tmp.path().join("offsets");
    let (s1, e1, s2, e2) = (
        5 * MIB as u64 + 3,
        5 * MIB as u64 + 40,
        11 * MIB as u64,
        11 * MIB as u64 + 2,
    );
    std::fs::write(&offsets, format!("2 {s1} {e1} {s2} {e2}")).unwrap();
    let out = env
        .command(&[
            "restore_data_subset",
            env.cfg(),
            &env.key(TS, "big"),
            offsets.to_str().unwrap(),
        ])
        .env("DDBOOST_MOCK_TRACE", &trace)
        .output()
        .unwrap();
    ok(&out);
    let want = [
        &data[s1 as usize..e1 as usize],
        &data[s2 as usize..e2 as usize],
    ]
    .concat();
    assert_eq!(out.stdout, want);
    let text = std::fs::read_to_string(&trace).unwrap();
    let reads: Vec<(u64, u64)> = text
        .lines()
        .filter(|l| l.starts_with("op=read ") && l.contains("/big "))
        .map(|l| {
            let field = |k: &str| -> u64 {
                l.split(' ')
                    .find_map(|f| f.strip_prefix(k))
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            (field("offset="), field("count="))
        })
        .collect();
    // Two seeks straight to the (verified) 1 MiB blocks holding the ranges,
    // nothing read from the start.
    let m = MIB as u64;
    assert_eq!(reads, vec![(5 * m, m), (11 * m, m)], "{text}");
}

#[test]
fn encrypted_password_with_injected_key_or_encrypt_file() {
    let env = dd_env();
    create_system_with_password(&env.dd_root(), "dd-enc", "DDboost_Pa55!");
    let hex = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/encryption/pgcrypto_aes256.hex"
    ))
    .unwrap();
    let key = "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8";
    let base = env.dd_options("dd-enc", "enc").replace(
        &format!("password: {DD_PASSWORD}"),
        &format!("password: \"{}\"", hex.trim()),
    );
    // As gpbackup passes it: the key injected under the plugin's name.
    let injected = env.other_config(
        "injected.yaml",
        &format!("{base}  password_encryption: \"on\"\n  gpbackup_ddboost_plugin: {key}\n"),
    );
    ok(&env.run_stdin(
        &["backup_data", injected.to_str().unwrap(), &env.key(TS, "e")],
        b"encrypted login",
    ));
    // As gpbackman calls it: the key from the coordinator's .encrypt.
    let coord = env.tmp.path().join("coordinator");
    std::fs::create_dir_all(&coord).unwrap();
    std::fs::write(
        coord.join(".encrypt"),
        format!("gpbackup_s3_plugin: other\ngpbackup_ddboost_plugin: {key}\n"),
    )
    .unwrap();
    let direct = env.other_config(
        "direct.yaml",
        &format!("{base}  password_encryption: \"on\"\n"),
    );
    let out = env
        .command(&["restore_data", direct.to_str().unwrap(), &env.key(TS, "e")])
        .env("COORDINATOR_DATA_DIRECTORY", &coord)
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(out.stdout, b"encrypted login");
    // Without any key: one clear line, no secret in it.
    let err = fails(&env.run(&["restore_data", direct.to_str().unwrap(), &env.key(TS, "e")]));
    assert!(
        err.contains("key") && !err.contains(hex.trim()) && !err.contains(key),
        "{err}"
    );
}

#[test]
fn restores_do_not_need_the_replica_but_backups_do() {
    let r = replicated();
    let env = &r.env;
    let plain = r.plain.to_str().unwrap();
    ok(&env.run_stdin(
        &["backup_data", plain, &env.key(TS, "obj")],
        b"primary copy",
    ));
    // replication on, remote system unreachable
    let text = std::fs::read_to_string(&r.repl).unwrap().replace(
        "remote_hostname: dd-replica",
        "remote_hostname: dd-unreachable",
    );
    let down = env.other_config(
        "replication_remote_down.yaml",
        text.split_once("options:\n").unwrap().1,
    );
    let down = down.to_str().unwrap();
    let out = env.run(&["restore_data", down, &env.key(TS, "obj")]);
    ok(&out);
    assert_eq!(out.stdout, b"primary copy");
    let err = fails(&env.run_stdin(&["backup_data", down, &env.key(TS, "new")], b"x"));
    assert!(
        err.contains("remote") && err.contains("dd-unreachable"),
        "{err}"
    );
    fails(&env.run(&["restore_data", plain, &env.key(TS, "new")]));
}

#[test]
fn connect_failures_are_retried_with_backoff() {
    let env = dd_env();
    let fault = [("DDBOOST_MOCK_FAULTS", "connect:nth=1:err=DD_ERR_CONNECT")];
    let fast = format!(
        "{}  retry_initial_delay_ms: 10\n  retry_max_delay_ms: 50\n",
        env.backend_options()
    );
    env.write_config(&fast);
    ok(&env.run_stdin_env(
        &["backup_data", env.cfg(), &env.key(TS, "r")],
        b"after a retry",
        &fault,
    ));
    assert_eq!(env.restore_data(TS, "r"), b"after a retry");
    assert!(env.log_text().contains("retrying in"), "{}", env.log_text());
    // With retries off, the same fault fails the command.
    env.write_config(&format!("{fast}  retry_max_attempts: 1\n"));
    let err =
        fails(&env.run_stdin_env(&["backup_data", env.cfg(), &env.key(TS, "s")], b"x", &fault));
    assert!(err.contains("DD_ERR_CONNECT"), "{err}");
}

/// The replica's temporaries (names with `.tmp-`).
fn replica_temporaries(env: &Env) -> Vec<String> {
    walk(
        &env.dd_root()
            .join(format!("dd-replica/su/{DD_SU}/gpdb/replica")),
    )
    .into_iter()
    .map(|(p, _)| p)
    .filter(|p| p.contains(".tmp-"))
    .collect()
}

#[test]
fn interrupted_replicate_backup_resumes_and_a_differing_replica_is_refused() {
    let r = replicated();
    let env = &r.env;
    let (plain, secondary) = (r.plain.to_str().unwrap(), r.secondary.to_str().unwrap());
    // One copy at a time, so that a pause stops the whole copy.
    let text = std::fs::read_to_string(&r.plain).unwrap();
    let one = r.plain.with_file_name("ddboost_config_one_stream.yaml");
    std::fs::write(
        &one,
        text.replace("replication_streams: 4", "replication_streams: 1"),
    )
    .unwrap();
    let one = one.to_str().unwrap();
    let data = |c: usize| bytes(3 * MIB + c * 1000, 50 + c as u64);
    for c in 0..3 {
        env.backup_data(TS, &format!("gpbackup_{c}_{TS}"), &data(c));
    }
    // Killed between the calls of a copy: after a file's copy to its
    // temporary, after its rename (data before its record, so the replica is
    // never complete-looking), each at the first and at a later file.
    for (point, nth) in [
        ("replica-copied", 1),
        ("replica-committed", 1),
        ("replica-copied", 3),
        ("replica-committed", 4),
    ] {
        let _ = env.run(&["delete_replica", plain, TS]);
        let marker = env.tmp.path().join(format!("marker-{point}-{nth}"));
        let mut child = env
            .command(&["replicate_backup", one, TS])
            .env(
                "GPBACKUP_DDBOOST_PLUGIN_PAUSE",
                format!("{point}@{nth}={}", marker.display()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !marker.exists() {
            assert!(started.elapsed().as_secs() < 60, "{point} not reached");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The rerun completes the replica.
        let out = env.run(&["replicate_backup", plain, TS]);
        assert!(out.status.success(), "{point}@{nth}: {out:?}");
        for c in 0..3 {
            let out = env.run(&[
                "restore_data",
                secondary,
                &env.key(TS, &format!("gpbackup_{c}_{TS}")),
            ]);
            ok(&out);
            assert!(
                out.stdout == data(c),
                "{point}/{nth}: object {c} not byte-exact"
            );
        }
        assert_eq!(
            replica_temporaries(env),
            Vec::<String>::new(),
            "{point}/{nth}"
        );
        // A rerun on the complete replica copies nothing.
        let err = fails(&env.run(&["replicate_backup", plain, TS]));
        assert!(
            err.contains("DDBoost open file in exclusive mode failed on remote"),
            "{err}"
        );
    }
    // The primary's object changed since: the replica's copy differs and is
    // refused, naming it and what to do.
    env.backup_data(TS, &format!("gpbackup_1_{TS}"), &data(7));
    let err = fails(&env.run(&["replicate_backup", plain, TS]));
    assert!(
        err.contains(&format!("gpbackup_1_{TS}")) && err.contains("delete_replica"),
        "{err}"
    );
    let out = env.run(&[
        "restore_data",
        secondary,
        &env.key(TS, &format!("gpbackup_1_{TS}")),
    ]);
    ok(&out);
    assert!(
        out.stdout == data(1),
        "the replica's copy was left as it was"
    );
}

/// A delete removes a folder's objects before their checksum records (and
/// temporaries): one that fails part way leaves every object it did not
/// remove whole, with its record, and the record of each it removed.
#[test]
fn a_delete_removes_objects_before_their_records() {
    let env = dd_env();
    let names: Vec<String> = (0..12)
        .map(|i| format!("gpbackup_0_{TS}_{}", 16384 + i))
        .collect();
    for (i, name) in names.iter().enumerate() {
        env.backup_data(TS, name, &bytes(1000 + i, i as u64));
    }
    let trace = env.tmp.path().join("delete.trace");
    let out = env
        .command(&["delete_backup", env.cfg(), TS])
        .env("DDBOOST_MOCK_TRACE", &trace)
        .output()
        .unwrap();
    ok(&out);
    let text = std::fs::read_to_string(&trace).unwrap();
    let unlinked: Vec<bool> = text
        .lines()
        .filter(|l| l.starts_with("op=unlink ") && l.ends_with("result=0"))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("path=")))
        .map(|p| p.rsplit('/').next().unwrap().starts_with('.'))
        .collect();
    assert_eq!(unlinked.len(), 2 * names.len(), "{text}");
    let first_record = unlinked.iter().position(|&hidden| hidden).unwrap();
    assert!(
        unlinked[first_record..].iter().all(|&hidden| hidden),
        "an object was unlinked after a record: {unlinked:?}"
    );

    // The fifth unlink fails: the delete fails, and every object left
    // restores as it was stored.
    for (i, name) in names.iter().enumerate() {
        env.backup_data(TS2, name, &bytes(1000 + i, i as u64));
    }
    let out = env.run_stdin_env(
        &["delete_backup", env.cfg(), TS2],
        b"",
        &[("DDBOOST_MOCK_FAULTS", "unlink:nth=5:err=DD_ERR_IO")],
    );
    fails(&out);
    let mut left = 0;
    for (i, name) in names.iter().enumerate() {
        let out = env.run(&["restore_data", env.cfg(), &env.key(TS2, name)]);
        if out.status.success() {
            assert_eq!(out.stdout, bytes(1000 + i, i as u64), "{name}");
            left += 1;
        }
    }
    assert!(left >= 1, "the failed delete left no object");
}
