//! The conformance suite: every command and rule of the plugin protocol, run
//! through the built binary the way gpbackup, gprestore, gpbackup_helper and
//! gpbackup_manager run it. Written once, instantiated per backend at the end.

mod support;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

const TS: &str = "20250101120000";
const TS2: &str = "20250101120001";

// ---- version handshake and dispatch -----------------------------------------

fn version_answers(env: &Env) {
    let out = env.run(&["plugin_api_version"]);
    ok(&out);
    assert_eq!(out.stdout, b"0.5.0\n");
    let out = env.run(&["--version"]);
    ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let tokens: Vec<&str> = text.trim_end_matches('\n').split(' ').collect();
    assert_eq!(tokens.len(), 3, "{text:?}");
    assert_eq!(tokens[0], "gpbackup_ddboost_plugin");
    assert_eq!(tokens[1], "version");
    let v: Vec<&str> = tokens[2].split('.').collect();
    assert!(
        v.len() == 3 && v.iter().all(|p| p.parse::<u32>().is_ok()),
        "{text:?}"
    );
    let out = env.run(&["--help"]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("restore_data_subset"));
}

fn unknown_command_fails(env: &Env) {
    let err = fails(&env.run(&["unknown_command"]));
    assert!(err.contains("unknown command"), "{err}");
    fails(&env.run(&[]));
}

// ---- hooks -------------------------------------------------------------------

fn hooks_every_scope_and_content_id_form(env: &Env) {
    let dir = env.backup_dir(TS);
    // The local directory need not exist (gprestore does not create it).
    assert!(!std::path::Path::new(&dir).exists());
    for hook in [
        "setup_plugin_for_backup",
        "setup_plugin_for_restore",
        "cleanup_plugin_for_backup",
        "cleanup_plugin_for_restore",
    ] {
        for args in [
            vec!["master", "\"-1\""],
            vec!["coordinator", "\"-1\""],
            vec!["coordinator", "-1"],
            vec!["segment_host"],
            vec!["segment", "\"0\""],
            vec!["segment", "3"],
        ] {
            let mut a = vec![hook, env.cfg(), &dir];
            a.extend(args.iter());
            let out = env.run(&a);
            ok(&out);
            assert!(out.stdout.is_empty(), "{hook} wrote to stdout");
        }
    }
}

fn hooks_run_concurrently(env: &Env) {
    let dir = env.backup_dir(TS);
    let mut children = Vec::new();
    for i in 0..16 {
        let scope_args: Vec<String> = if i % 2 == 0 {
            vec!["segment_host".into()]
        } else {
            vec!["segment".into(), format!("\"{i}\"")]
        };
        let mut c = env.command(&["setup_plugin_for_backup", env.cfg(), &dir]);
        c.args(&scope_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    for c in children {
        ok(&c.wait_with_output().unwrap());
    }
    env.backup_data(TS, "gpbackup_0_20250101120000", b"after hooks");
    assert_eq!(
        env.restore_data(TS, "gpbackup_0_20250101120000"),
        b"after hooks"
    );
}

// ---- files ---------------------------------------------------------------------

fn backup_file_restore_file_roundtrip(env: &Env) {
    let dir = env.backup_dir(TS);
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("{dir}/gpbackup_{TS}_metadata.sql");
    let content = csv_rows(5000, 1);
    std::fs::write(&file, &content).unwrap();
    ok(&env.run(&["backup_file", env.cfg(), &file]));
    // The local file stays.
    assert_eq!(std::fs::read(&file).unwrap(), content);
    std::fs::remove_file(&file).unwrap();
    ok(&env.run(&["restore_file", env.cfg(), &file]));
    assert_eq!(std::fs::read(&file).unwrap(), content);
    // Restoring over an existing file replaces it.
    std::fs::write(&file, b"stale").unwrap();
    ok(&env.run(&["restore_file", env.cfg(), &file]));
    assert_eq!(std::fs::read(&file).unwrap(), content);
    // Another host's data directory maps to the same object; its folder is created.
    let other = env.tmp.path().join(format!(
        "data/gpseg7/backups/20250101/{TS}/gpbackup_{TS}_metadata.sql"
    ));
    ok(&env.run(&["restore_file", env.cfg(), other.to_str().unwrap()]));
    assert_eq!(std::fs::read(&other).unwrap(), content);
    // No temporaries are left beside the restored files.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

fn restore_file_missing_object_keeps_local_file(env: &Env) {
    let dir = env.backup_dir(TS);
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("{dir}/there_is_no_file_to_restore");
    std::fs::write(&file, b"keep me").unwrap();
    let err = fails(&env.run(&["restore_file", env.cfg(), &file]));
    assert!(err.contains("not found"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

fn empty_file_roundtrip(env: &Env) {
    let dir = env.backup_dir(TS);
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("{dir}/gpbackup_{TS}_statistics.sql");
    std::fs::write(&file, b"").unwrap();
    ok(&env.run(&["backup_file", env.cfg(), &file]));
    std::fs::remove_file(&file).unwrap();
    ok(&env.run(&["restore_file", env.cfg(), &file]));
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

// ---- data ----------------------------------------------------------------------

fn backup_data_restore_data_roundtrip(env: &Env) {
    let data = csv_rows(20_000, 2);
    env.backup_data(TS, "gpbackup_0_20250101120000", &data);
    assert_eq!(env.restore_data(TS, "gpbackup_0_20250101120000"), data);
    // Another content's data directory maps to the same key (resize restores).
    let other = format!("/data/other/gpseg5/backups/20250101/{TS}/gpbackup_0_20250101120000");
    let out = env.run(&["restore_data", env.cfg(), &other]);
    ok(&out);
    assert_eq!(out.stdout, data);
}

fn empty_stream_is_a_zero_byte_object(env: &Env) {
    env.backup_data(TS, "test_no_data.txt", b"");
    assert_eq!(env.restore_data(TS, "test_no_data.txt"), b"");
    assert!(
        env.listing().contains("test_no_data.txt\t0"),
        "{}",
        env.listing()
    );
}

fn large_stream_100_mib(env: &Env) {
    let data = bytes(100 << 20, 3);
    env.backup_data(TS, "gpbackup_1_20250101120000", &data);
    let back = env.restore_data(TS, "gpbackup_1_20250101120000");
    assert!(back == data, "100 MiB stream differs");
}

fn backup_file_objects_read_by_restore_data(env: &Env) {
    let dir = env.backup_dir(TS);
    std::fs::create_dir_all(&dir).unwrap();
    let report = format!("{dir}/gpbackup_{TS}_report");
    std::fs::write(&report, b"Backup Report\nstatus: Success\n").unwrap();
    ok(&env.run(&["backup_file", env.cfg(), &report]));
    // gpbackman report-info prints reports with restore_data, also from a custom path.
    assert_eq!(
        env.restore_data(TS, &format!("gpbackup_{TS}_report")),
        b"Backup Report\nstatus: Success\n"
    );
    let custom = env.tmp.path().join(format!("reports/gpbackup_{TS}_report"));
    let out = env.run(&["restore_data", env.cfg(), custom.to_str().unwrap()]);
    ok(&out);
    assert_eq!(out.stdout, b"Backup Report\nstatus: Success\n");
    // And the other way round.
    env.backup_data(
        TS,
        &format!("gpbackup_0_{TS}_toc.yaml"),
        b"dataentries: {}\n",
    );
    let toc = format!("{dir}/gpbackup_0_{TS}_toc.yaml");
    ok(&env.run(&["restore_file", env.cfg(), &toc]));
    assert_eq!(std::fs::read(&toc).unwrap(), b"dataentries: {}\n");
}

fn idle_gaps_on_stdin_are_waited_for(env: &Env) {
    let mut child = env.spawn_stdin(&[
        "backup_data",
        env.cfg(),
        &env.key(TS, "gpbackup_0_20250101120000"),
    ]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first table\n").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    stdin.write_all(b"second table\n").unwrap();
    drop(stdin);
    ok(&child.wait_with_output().unwrap());
    assert_eq!(
        env.restore_data(TS, "gpbackup_0_20250101120000"),
        b"first table\nsecond table\n"
    );
}

fn rewriting_an_object_replaces_it(env: &Env) {
    env.backup_data(TS, "obj", b"old content that is longer");
    env.backup_data(TS, "obj", b"new");
    assert_eq!(env.restore_data(TS, "obj"), b"new");
}

// ---- subset ----------------------------------------------------------------------

fn subset_bench_cases(env: &Env) {
    // As the plugin test bench does it: `echo $data` (with a newline), offsets with a newline.
    let mut small = bytes(1000, 4)
        .iter()
        .map(|b| b'A' + b % 26)
        .collect::<Vec<u8>>();
    small.push(b'\n');
    env.backup_data(TS, "testdatasmall.txt", &small);
    let out = env.subset(TS, "testdatasmall.txt", "1 3 10\n");
    ok(&out);
    assert_eq!(out.stdout, &small[3..10]);

    let mut large = bytes(1_000_000, 5)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect::<Vec<u8>>();
    large.push(b'\n');
    env.backup_data(TS, "testdatalarge.txt", &large);
    let out = env.subset(TS, "testdatalarge.txt", "1 900000 900001\n");
    ok(&out);
    assert_eq!(out.stdout, &large[900000..900001]);
    let out = env.subset(TS, "testdatalarge.txt", "2 0 700000 900000 900001");
    ok(&out);
    let mut want = large[..700000].to_vec();
    want.extend_from_slice(&large[900000..900001]);
    assert_eq!(out.stdout, want);
}

fn subset_edges(env: &Env) {
    let data = bytes(3 * 1024 * 1024 + 123, 6);
    let n = data.len();
    env.backup_data(TS, "gpbackup_0_20250101120000", &data);
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("1 0 1".into(), data[..1].to_vec()),
        (format!("1 {} {n}", n - 1), data[n - 1..].to_vec()),
        ("1 5 5".into(), vec![]),
        (format!("1 {n} {n}"), vec![]),
        (format!("1 0 {n}"), data.clone()),
        // Adjacent ranges, empty ones between, any whitespace.
        (
            "4 10 20\t20 20\n20 1048600  2000000 2000001".into(),
            [&data[10..1048600], &data[2000000..2000001]].concat(),
        ),
    ];
    for (offsets, want) in cases {
        let out = env.subset(TS, "gpbackup_0_20250101120000", &offsets);
        ok(&out);
        assert!(
            out.stdout == want,
            "offsets {offsets:?}: {} bytes, want {}",
            out.stdout.len(),
            want.len()
        );
    }
}

fn subset_many_ranges(env: &Env) {
    let data = csv_rows(60_000, 7);
    env.backup_data(TS, "gpbackup_0_20250101120000", &data);
    // 1500 tables: random gaps, some empty, some adjacent, in file order.
    let r = bytes(6000, 8);
    let mut pos = 0u64;
    let mut ranges = Vec::new();
    for i in 0..1500 {
        let gap = if r[i * 4].is_multiple_of(3) {
            0
        } else {
            r[i * 4 + 1] as u64 * 3
        };
        let len = if r[i * 4 + 2].is_multiple_of(5) {
            0
        } else {
            r[i * 4 + 3] as u64
        };
        let s = (pos + gap).min(data.len() as u64);
        let e = (s + len).min(data.len() as u64);
        ranges.push((s, e));
        pos = e;
    }
    let text = format!(
        "{} {}",
        ranges.len(),
        ranges
            .iter()
            .map(|(s, e)| format!("{s} {e}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let want: Vec<u8> = ranges
        .iter()
        .flat_map(|&(s, e)| data[s as usize..e as usize].to_vec())
        .collect();
    let out = env.subset(TS, "gpbackup_0_20250101120000", &text);
    ok(&out);
    assert!(
        out.stdout == want,
        "{} bytes, want {}",
        out.stdout.len(),
        want.len()
    );
}

// ---- delete, list ------------------------------------------------------------------

fn delete_backup_leaves_sibling(env: &Env) {
    for ts in [TS, TS2] {
        let dir = env.backup_dir(ts);
        std::fs::create_dir_all(&dir).unwrap();
        let f = format!("{dir}/testfile_{ts}.txt");
        std::fs::write(&f, b"this is some text\n").unwrap();
        ok(&env.run(&[
            "setup_plugin_for_backup",
            env.cfg(),
            &dir,
            "coordinator",
            "\"-1\"",
        ]));
        env.backup_data(ts, &format!("testdata_{ts}.txt"), b"data\n");
        ok(&env.run(&["backup_file", env.cfg(), &f]));
    }
    let out = env.run(&["delete_backup", env.cfg(), TS]);
    ok(&out);
    assert!(out.stdout.is_empty(), "a real delete prints nothing");
    fails(&env.run(&[
        "restore_data",
        env.cfg(),
        &env.key(TS, &format!("testdata_{TS}.txt")),
    ]));
    fails(&env.run(&[
        "restore_file",
        env.cfg(),
        &env.key(TS, &format!("testfile_{TS}.txt")),
    ]));
    assert_eq!(
        env.restore_data(TS2, &format!("testdata_{TS2}.txt")),
        b"data\n"
    );
    let listing = env.listing();
    assert!(!listing.contains(&format!("/{TS}/")), "{listing}");
    assert!(
        listing.contains(&format!("/{TS2}/testfile_{TS2}.txt")),
        "{listing}"
    );
    // A repeat is harmless, but says where it looked (a typo in the
    // timestamp or the wrong config would otherwise orphan a backup).
    let out = env.run(&["delete_backup", env.cfg(), TS]);
    ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!("backup {TS}: nothing found in ")) && said.lines().count() == 1,
        "{said}"
    );
    assert!(env.log_text().contains("nothing is stored for backup"));
    // Bench-style random timestamps are not checked as dates.
    env.backup_data("99998911234567", "testdata.txt", b"x");
    ok(&env.run(&["delete_backup", env.cfg(), "99998911234567"]));
    fails(&env.run(&[
        "restore_data",
        env.cfg(),
        &env.key("99998911234567", "testdata.txt"),
    ]));
}

fn list_and_delete_directory(env: &Env) {
    env.backup_data(TS, "a", b"12345");
    env.backup_data(TS2, "b", b"1");
    let out = env.run(&["list_directory", env.cfg()]);
    ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("backups/20250101/{TS}/a\t5")),
        "{text}"
    );
    assert!(
        !text.contains(".checksum") && !text.contains(".tmp"),
        "{text}"
    );
    let out = env.run(&[
        "list_directory",
        env.cfg(),
        &format!("backups/20250101/{TS2}"),
    ]);
    ok(&out);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("backups/20250101/{TS2}/b\t1\n")
    );
    ok(&env.run(&[
        "delete_directory",
        env.cfg(),
        &format!("backups/20250101/{TS2}"),
    ]));
    let text = env.listing();
    assert!(text.contains("/a\t5") && !text.contains("/b\t1"), "{text}");
}

// ---- concurrency and interruption ----------------------------------------------------

fn sixteen_concurrent_backup_data(env: &Env) {
    let mut children = Vec::new();
    let mut feeders = Vec::new();
    for c in 0..16u64 {
        let mut child = env.spawn_stdin(&[
            "backup_data",
            env.cfg(),
            &env.key(TS, &format!("gpbackup_{c}_{TS}")),
        ]);
        let mut stdin = child.stdin.take().unwrap();
        feeders.push(std::thread::spawn(move || {
            let d = bytes(3_000_000 + c as usize * 1000, c + 100);
            for chunk in d.chunks(65536) {
                stdin.write_all(chunk).unwrap();
            }
        }));
        children.push(child);
    }
    for f in feeders {
        f.join().unwrap();
    }
    for c in children {
        ok(&c.wait_with_output().unwrap());
    }
    for c in 0..16u64 {
        let want = bytes(3_000_000 + c as usize * 1000, c + 100);
        assert!(
            env.restore_data(TS, &format!("gpbackup_{c}_{TS}")) == want,
            "content {c} differs"
        );
    }
}

fn killed_writer_leaves_no_object(env: &Env) {
    let name = format!("gpbackup_0_{TS}");
    let mut child = env.spawn_stdin(&["backup_data", env.cfg(), &env.key(TS, &name)]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes(5 << 20, 9)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    drop(stdin);
    fails(&env.run(&["restore_data", env.cfg(), &env.key(TS, &name)]));
    assert!(!env.listing().contains(&name), "{}", env.listing());
    // Deleting the backup removes whatever the killed writer left.
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert!(
        env.raw_snapshot().iter().all(|(p, _)| !p.contains(TS)),
        "{:?}",
        env.raw_snapshot()
    );
}

fn interrupted_writer_cleans_up(env: &Env) {
    let name = format!("gpbackup_0_{TS}");
    for sig in ["TERM", "INT", "HUP"] {
        let before = env.raw_snapshot();
        let mut child = env.spawn_stdin(&["backup_data", env.cfg(), &env.key(TS, &name)]);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&bytes(3 << 20, 10)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let st = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let out = child.wait_with_output().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "slow to stop on SIG{sig}"
        );
        assert!(!out.status.success(), "SIG{sig}: exit {:?}", out.status);
        drop(stdin);
        fails(&env.run(&["restore_data", env.cfg(), &env.key(TS, &name)]));
        let after: Vec<_> = env
            .raw_snapshot()
            .into_iter()
            .filter(|(p, _)| !p.ends_with('/'))
            .collect();
        let before: Vec<_> = before
            .into_iter()
            .filter(|(p, _)| !p.ends_with('/'))
            .collect();
        assert_eq!(after, before, "SIG{sig} left something behind");
    }
}

fn reader_going_away_is_quiet(env: &Env) {
    let data = bytes(20 << 20, 11);
    env.backup_data(TS, "big", &data);
    let mut child = env
        .command(&["restore_data", env.cfg(), &env.key(TS, "big")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 1000];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(first, data[..1000]);
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{:?}", out.status);
}

// ---- integrity -----------------------------------------------------------------------

fn corrupt_object_fails_restore(env: &Env) {
    let data = bytes(3 << 20, 12);
    env.backup_data(TS, "gpbackup_0_20250101120000", &data);
    env.corrupt(TS, "gpbackup_0_20250101120000");
    let out = env.run(&[
        "restore_data",
        env.cfg(),
        &env.key(TS, "gpbackup_0_20250101120000"),
    ]);
    let err = fails(&out);
    assert!(
        err.contains("gpbackup_0_20250101120000") && err.contains("checksum"),
        "{err}"
    );
    assert!(
        out.stdout.len() < data.len(),
        "a corrupt restore looked complete"
    );
    // restore_file leaves nothing behind.
    let file = env.key(TS, "gpbackup_0_20250101120000");
    fails(&env.run(&["restore_file", env.cfg(), &file]));
    assert!(!std::path::Path::new(&file).exists());
    assert_eq!(std::fs::read_dir(env.backup_dir(TS)).unwrap().count(), 0);
}

fn object_without_checksum_restores_with_warning(env: &Env) {
    env.backup_data(TS, "foreign", b"written by another tool");
    env.drop_checksum(TS, "foreign");
    assert_eq!(env.restore_data(TS, "foreign"), b"written by another tool");
    assert!(
        env.log_text().contains("no checksum record"),
        "{}",
        env.log_text()
    );
}

// ---- logs, secrets, configs ---------------------------------------------------------------

fn logs_summary_lines_in_gpadminlogs(env: &Env) {
    env.backup_data(TS, "gpbackup_0_20250101120000", &bytes(1 << 20, 13));
    env.restore_data(TS, "gpbackup_0_20250101120000");
    let log = env.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("[INFO]:-backup_data"))
        .expect(&log);
    // gplog: YYYYMMDD:HH:MM:SS name:user:host:pid-[LEVEL]:-message
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert_eq!(stamp.len(), 17, "{line}");
    assert!(
        rest.starts_with("gpbackup_ddboost_plugin:gpadmin:"),
        "{line}"
    );
    // Small objects: size and milliseconds (a rate would say nothing), and
    // where the time went.
    assert!(
        line.contains("1048576 bytes in ") && line.contains(" ms (input/output "),
        "{line}"
    );
    assert!(line.ends_with(" storage calls)"), "{line}");
    assert!(log.contains("[INFO]:-restore_data"), "{log}");
    // Large ones: a rate.
    env.backup_data(TS, "big", &bytes(20 << 20, 13));
    let log = env.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("[INFO]:-backup_data") && l.contains("/big:"))
        .expect(&log);
    assert!(
        line.contains("20971520 bytes") && line.contains("MB/s) (input/output "),
        "{line}"
    );
    // Hook lines name their scope and content id; cleanup hooks say they ran.
    let dir = env.backup_dir(TS);
    ok(&env.run(&["setup_plugin_for_backup", env.cfg(), &dir, "segment", "3"]));
    ok(&env.run(&["cleanup_plugin_for_backup", env.cfg(), &dir, "segment_host"]));
    ok(&env.run(&[
        "cleanup_plugin_for_restore",
        env.cfg(),
        &dir,
        "master",
        "\"-1\"",
    ]));
    let log = env.log_text();
    assert!(
        log.contains("setup_plugin_for_backup (scope segment, content 3): "),
        "{log}"
    );
    assert!(
        log.contains("cleanup_plugin_for_backup (scope segment_host): done"),
        "{log}"
    );
    assert!(
        log.contains("cleanup_plugin_for_restore (scope coordinator, content -1): done"),
        "{log}"
    );
    let files: Vec<_> = std::fs::read_dir(env.home.join("gpAdminLogs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert!(
        files.len() == 1
            && files[0].starts_with("gpbackup_ddboost_plugin_")
            && files[0].ends_with(".log"),
        "{files:?}"
    );
}

fn secrets_never_logged(env: &Env) {
    let base = env.backend_options();
    let password = if base.contains("password:") {
        DD_PASSWORD.to_string()
    } else {
        "S3cretPassw0rd".to_string()
    };
    let opts = format!(
        "{base}{}  logger_verbosity: debug\n  remote_password: Rem0teSecret\n  gpbackup_ddboost_plugin: 6b65796b65796b6579\n  pgport: \"6000\"\n  backup_plugin_version: \"\"\n",
        if base.contains("password:") { String::new() } else { format!("  password: {password}\n") }
    );
    env.write_config(&opts);
    env.backup_data(TS, "x", b"abc");
    assert_eq!(env.restore_data(TS, "x"), b"abc");
    let out = env.run(&["restore_data", env.cfg(), &env.key(TS, "missing")]);
    let err = fails(&out);
    let log = env.log_text();
    for secret in [password.as_str(), "Rem0teSecret", "6b65796b65796b6579"] {
        assert!(
            !log.contains(secret) && !err.contains(secret),
            "secret {secret} leaked"
        );
    }
    assert!(log.contains("[DEBUG]"), "debug verbosity not applied");
}

fn gpbackup_style_config_copy(env: &Env) {
    // The per-host copy gpbackup writes: keys sorted, values quoted, injected keys.
    let opts = env.backend_options();
    let mut lines: Vec<String> = opts
        .lines()
        .map(|l| {
            let (k, v) = l.trim().split_once(": ").unwrap();
            format!("  {k}: \"{v}\"")
        })
        .collect();
    lines.push("  backup_plugin_version: \"\"".into());
    lines.push("  pgport: \"6000\"".into());
    lines.push("  restore_subset: \"on\"".into());
    lines.sort();
    env.write_config(&format!("{}\n", lines.join("\n")));
    env.backup_data(TS, "y", b"copy");
    assert_eq!(env.restore_data(TS, "y"), b"copy");
}

fn works_without_home(env: &Env) {
    let out = env
        .command(&["backup_data", env.cfg(), &env.key(TS, "nohome")])
        .env_remove("HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    // A home that does not exist is not created; the log goes to the user's
    // private folder in TMPDIR.
    let home = env.tmp.path().join("no-such-home");
    let tmpdir = env.tmp.path().join("tmpdir");
    std::fs::create_dir(&tmpdir).unwrap();
    let out = env
        .command(&["restore_data", env.cfg(), &env.key(TS, "nohome")])
        .env("HOME", &home)
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    ok(&out);
    assert!(!home.exists(), "the plugin created the home directory");
    let folder = tmpdir.join(format!("gpbackup_ddboost_plugin-{}", nix::unistd::getuid()));
    let log: String = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(log.contains("[INFO]:-restore_data"), "{log}");
}

// ---- bad inputs ------------------------------------------------------------------------------

fn bad_inputs_fail_cleanly_and_change_nothing(env: &Env) {
    // Something to restore, so failures are not just "empty storage".
    env.backup_data(TS, "obj", &bytes(4096, 14));
    let dir = env.backup_dir(TS);
    std::fs::create_dir_all(&dir).unwrap();
    let offsets = |name: &str, text: &str| {
        let p = env.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cfgs = [
        ("missing.yaml", None),
        ("notyaml.yaml", Some("executablepath: [unclosed\n")),
        ("nooptions.yaml", Some("executablepath: /x\n")),
        (
            "listopt.yaml",
            Some("executablepath: /x\noptions:\n  backend: local\n  directory: [a, b]\n"),
        ),
        (
            "dup.yaml",
            Some("executablepath: /x\noptions:\n  backend: local\n  backend: local\n"),
        ),
    ];
    let mut cfg_paths = Vec::new();
    for (name, text) in cfgs {
        let p = env.tmp.path().join(name);
        if let Some(t) = text {
            std::fs::write(&p, t).unwrap();
        }
        cfg_paths.push(p.to_str().unwrap().to_string());
    }
    let opt = |name: &str, options: &str| {
        env.other_config(name, options)
            .to_str()
            .unwrap()
            .to_string()
    };
    let store = env.store.display().to_string();
    let bad_cfgs = [
        opt("nodir.yaml", "  backend: local\n"),
        opt(
            "reldir.yaml",
            "  backend: local\n  directory: relative/path\n",
        ),
        opt(
            "badbackend.yaml",
            &format!("  backend: s3\n  directory: {store}\n"),
        ),
        opt(
            "missingdir.yaml",
            &format!("  backend: local\n  directory: {store}/does/not/exist\n"),
        ),
        opt(
            "verbosity.yaml",
            &format!("  backend: local\n  directory: {store}\n  logger_verbosity: loud\n"),
        ),
        opt(
            "onoff.yaml",
            &format!("  backend: local\n  directory: {store}\n  restore_subset: sometimes\n"),
        ),
        opt("ddmissing.yaml", "  backend: ddboost\n  hostname: dd1\n"),
    ];
    let key = env.key(TS, "obj");
    let newkey = env.key(TS, "new_object");
    let mut cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["frobnicate".into()],
        vec!["backup_data".into(), env.cfg().into()],
        vec![
            "backup_data".into(),
            env.cfg().into(),
            newkey.clone(),
            "extra".into(),
        ],
        vec!["restore_data_subset".into(), env.cfg().into(), key.clone()],
        vec![
            "setup_plugin_for_backup".into(),
            env.cfg().into(),
            dir.clone(),
            "galaxy".into(),
        ],
        vec![
            "setup_plugin_for_backup".into(),
            env.cfg().into(),
            dir.clone(),
            "segment".into(),
            "\"zero\"".into(),
        ],
        vec!["plugin_api_version".into(), "extra".into()],
        // Bad keys.
        vec![
            "backup_data".into(),
            env.cfg().into(),
            format!("{}/backups/2025011/{TS}/x", env.segdir.display()),
        ],
        vec![
            "backup_data".into(),
            env.cfg().into(),
            format!("{}/backups/20250101/2025010112000x/x", env.segdir.display()),
        ],
        vec!["backup_data".into(), env.cfg().into(), format!("{dir}/..")],
        vec![
            "backup_data".into(),
            env.cfg().into(),
            format!("{dir}/.hidden"),
        ],
        vec!["backup_data".into(), env.cfg().into(), format!("{dir}/")],
        vec![
            "backup_data".into(),
            env.cfg().into(),
            format!("{}/backups/20250102/{TS}/x", env.segdir.display()),
        ],
        vec!["backup_data".into(), env.cfg().into(), "plainname".into()],
        // Missing objects and files.
        vec![
            "restore_data".into(),
            env.cfg().into(),
            env.key(TS, "nothing"),
        ],
        vec!["restore_data".into(), env.cfg().into(), env.key(TS2, "obj")],
        vec![
            "restore_file".into(),
            env.cfg().into(),
            env.key(TS, "nothing"),
        ],
        vec![
            "backup_file".into(),
            env.cfg().into(),
            env.key(TS, "no_local_file"),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            env.key(TS, "nothing"),
            offsets("o0", "1 0 1"),
        ],
        // Bad offsets.
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o1", "1 a 10"),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o2", "1 3"),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o3", "2 0 10"),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o4", "1 10 3"),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o5", "2 0 10 5 20"),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o6", "1 0 4097"),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o7", ""),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            env.tmp.path().join("no_offsets").to_str().unwrap().into(),
        ],
        vec![
            "restore_data_subset".into(),
            env.cfg().into(),
            key.clone(),
            offsets("o8", "2 100 200 0 50"),
        ],
        // Keys with "." or ".." among the components the key is built from.
        vec![
            "backup_data".into(),
            env.cfg().into(),
            format!("{}/../gpbackup_0_{TS}", env.backup_dir(TS)),
        ],
        vec![
            "backup_data".into(),
            env.cfg().into(),
            format!("{}/backups/../{TS}/obj", env.segdir.display()),
        ],
        vec![
            "restore_data".into(),
            env.cfg().into(),
            format!("{}/backups/{}/./obj", env.segdir.display(), &TS[..8]),
        ],
        // Bad timestamps and paths.
        vec![
            "delete_backup".into(),
            env.cfg().into(),
            "2025010112000".into(),
        ],
        vec![
            "delete_backup".into(),
            env.cfg().into(),
            "2025-01-01 12:00".into(),
        ],
        vec![
            "replicate_backup".into(),
            env.cfg().into(),
            "notatimestamp".into(),
        ],
        vec!["delete_directory".into(), env.cfg().into(), "../..".into()],
        vec!["delete_directory".into(), env.cfg().into(), "/".into()],
        vec![
            "list_directory".into(),
            env.cfg().into(),
            "backups/../..".into(),
        ],
    ];
    for c in cfg_paths.iter().chain(bad_cfgs.iter()) {
        cases.push(vec!["backup_data".into(), c.clone(), newkey.clone()]);
        cases.push(vec!["restore_data".into(), c.clone(), key.clone()]);
    }
    assert!(cases.len() >= 25);
    let before = env.raw_snapshot();
    let local_before = walk(env.tmp.path());
    for args in &cases {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = env.run_stdin(&a, b"some input that must not be stored");
        let err = fails(&out);
        if a.first().map(|c| c.starts_with("restore")).unwrap_or(false) {
            assert!(out.stdout.is_empty(), "{a:?} wrote data before failing");
        }
        assert!(err.len() > 40, "{a:?}: unclear error {err:?}");
        assert_eq!(env.raw_snapshot(), before, "{a:?} changed the storage");
    }
    // Nothing was created locally either (offsets files aside; the log is in
    // home; the mock's stream counts of the processes that ran, in its
    // folder streams/, are the system's, not stored data; the facts of the
    // failed objects are for the cleanup hook's summary).
    let kept = |p: &str| {
        !p.starts_with("home")
            && !p.starts_with('o')
            && !p.contains("/streams/")
            && !p.contains("/facts-")
    };
    let local_after: Vec<_> = walk(env.tmp.path())
        .into_iter()
        .filter(|(p, _)| kept(p))
        .collect();
    let local_before: Vec<_> = local_before.into_iter().filter(|(p, _)| kept(p)).collect();
    assert_eq!(local_after, local_before);
    assert_eq!(env.restore_data(TS, "obj"), bytes(4096, 14));
}

// ---- instantiation -----------------------------------------------------------------------

macro_rules! all_cases {
    ($backend_mod:ident, $backend:expr) => {
        per_backend!(
            $backend_mod,
            $backend,
            [
                version_answers,
                unknown_command_fails,
                hooks_every_scope_and_content_id_form,
                hooks_run_concurrently,
                backup_file_restore_file_roundtrip,
                restore_file_missing_object_keeps_local_file,
                empty_file_roundtrip,
                backup_data_restore_data_roundtrip,
                empty_stream_is_a_zero_byte_object,
                large_stream_100_mib,
                backup_file_objects_read_by_restore_data,
                idle_gaps_on_stdin_are_waited_for,
                rewriting_an_object_replaces_it,
                subset_bench_cases,
                subset_edges,
                subset_many_ranges,
                delete_backup_leaves_sibling,
                list_and_delete_directory,
                sixteen_concurrent_backup_data,
                killed_writer_leaves_no_object,
                interrupted_writer_cleans_up,
                reader_going_away_is_quiet,
                corrupt_object_fails_restore,
                object_without_checksum_restores_with_warning,
                logs_summary_lines_in_gpadminlogs,
                secrets_never_logged,
                gpbackup_style_config_copy,
                works_without_home,
                bad_inputs_fail_cleanly_and_change_nothing,
            ]
        );
    };
}

all_cases!(local, super::Backend::Local);
all_cases!(ddboost_mock, super::Backend::DdBoostMock);
