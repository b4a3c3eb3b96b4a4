//! The `ddboost-mock` admin command.

use std::process::Command;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ddboost-mock"))
}

/// `create-system` of host dd1 (user u, password p) under `root` with storage unit `su`.
fn create_system<'a>(root: &'a str, su: &'a str) -> [&'a str; 11] {
    [
        "create-system",
        "--root",
        root,
        "--host",
        "dd1",
        "--user",
        "u",
        "--password",
        "p",
        "--storage-unit",
        su,
    ]
}

#[test]
fn create_system_and_totals() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let ok = |args: &[&str]| {
        let o = cli().args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    ok(&create_system(r, "SU1"));
    // Idempotent; adds a storage unit to an existing system.
    ok(&create_system(r, "SU2"));
    assert!(root.path().join("dd1/su/SU1").is_dir());
    assert!(root.path().join("dd1/su/SU2").is_dir());
    let cfg = std::fs::read_to_string(root.path().join("dd1/system.json")).unwrap();
    assert!(cfg.contains("\"u\"") && !cfg.contains("\"p\""));
    ddboost_mock::admin::authenticate(&root.path().join("dd1"), "u", "p").unwrap();

    let out = ok(&["totals", "--root", r, "--host", "dd1"]);
    for key in [
        "logical_bytes_written=0",
        "unique_segment_bytes=0",
        "stored_bytes=0",
        "files=0",
    ] {
        assert!(out.lines().any(|l| l == key), "{key} missing in {out}");
    }
    let json = ok(&["totals", "--root", r, "--host", "dd1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["files"], 0);
    assert_eq!(v["stored_bytes"], 0);

    let o = cli()
        .args(["totals", "--root", r, "--host", "nope"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let o = cli()
        .args([
            "create-system",
            "--root",
            r,
            "--host",
            "a/b",
            "--user",
            "u",
            "--password",
            "p",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let o = cli().args(["frobnicate"]).output().unwrap();
    assert!(!o.status.success());
}

#[test]
fn fill_writes_objects_as_many_writers_leave_them() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let run = |args: &[&str]| cli().args(args).output().unwrap();
    let o = run(&create_system(r, "SU1"));
    assert!(o.status.success());
    let fill_in = |su: &str, folder: &str, extra: &[&str]| {
        let mut args = vec![
            "fill",
            "--root",
            r,
            "--host",
            "dd1",
            "--storage-unit",
            su,
            "--folder",
            folder,
            "--objects",
            "40",
            "--size",
            "5000",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let fill = |extra: &[&str]| fill_in("SU1", "a/b", extra);
    let o = fill(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = ddboost_mock::store::totals(&root.path().join("dd1")).unwrap();
    assert_eq!(t.files, 40);
    assert_eq!(t.logical_bytes_present, 40 * 5000);
    assert_eq!(t.logical_bytes_written, 40 * 5000);
    let dir = root.path().join("dd1/su/SU1/a/b");
    assert!(dir.join("object_0").is_file() && dir.join("object_39").is_file());
    let logs = std::fs::read_dir(root.path().join("dd1/store/index"))
        .unwrap()
        .count();
    assert!(logs <= ddboost_mock::index::COMPACT_AT, "{logs} logs left");
    // The same objects again (same seed) store nothing new.
    let o = fill(&["--prefix", "again_"]);
    assert!(o.status.success());
    let t2 = ddboost_mock::store::totals(&root.path().join("dd1")).unwrap();
    assert_eq!(t2.stored_bytes, t.stored_bytes);
    assert_eq!(t2.files, 80);
    // A missing storage unit or a path leaving it: one line, non-zero exit, nothing written.
    for (su, folder) in [("NOPE", "a/b"), ("SU1", "../x")] {
        let o = fill_in(su, folder, &[]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("fill"), "{err}");
    }
    assert_eq!(
        ddboost_mock::store::totals(&root.path().join("dd1"))
            .unwrap()
            .files,
        80
    );
}

#[test]
fn fill_with_records_writes_the_plugins_checksum_records() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let run = |args: &[&str]| cli().args(args).output().unwrap();
    assert!(run(&create_system(r, "SU1")).status.success());
    let size = (2 << 20) + 7;
    let o = run(&[
        "fill",
        "--root",
        r,
        "--host",
        "dd1",
        "--storage-unit",
        "SU1",
        "--folder",
        "bk",
        "--objects",
        "2",
        "--size",
        &size.to_string(),
        "--prefix",
        "gpbackup_0_20250101120000_",
        "--first",
        "16384",
        "--records",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = ddboost_mock::store::totals(&root.path().join("dd1")).unwrap();
    assert_eq!(t.files, 4, "2 objects and their records");
    let dir = root.path().join("dd1/su/SU1/bk");
    for n in [16384, 16385] {
        let name = format!("gpbackup_0_20250101120000_{n}");
        assert!(dir.join(&name).is_file());
        assert!(dir.join(format!(".{name}.checksum")).is_file());
    }
    // The record of an object's bytes: header, then one digest per MiB block.
    let data = ddboost_mock::fill::contents(1, 16384, size);
    let rec = ddboost_mock::fill::checksum_record(&data);
    let lines: Vec<&str> = rec.lines().collect();
    assert_eq!(lines[0], "gpbackup_ddboost_plugin checksum v2");
    assert_eq!(lines[1], "algorithm=xxh3-128");
    assert_eq!(lines[2], format!("size={size}"));
    assert_eq!(
        lines[3],
        format!("digest={:032x}", xxhash_rust::xxh3::xxh3_128(&data))
    );
    assert_eq!(lines[4], "block_size=1048576");
    assert_eq!(lines[5], "blocks=3");
    assert_eq!(
        lines[8],
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&data[2 << 20..]))
    );
    assert_eq!(lines.len(), 9);
    assert!(rec.ends_with('\n'));
    assert_eq!(
        ddboost_mock::fill::checksum_record(b""),
        format!(
            "gpbackup_ddboost_plugin checksum v2\nalgorithm=xxh3-128\nsize=0\ndigest={:032x}\nblock_size=1048576\nblocks=0\n",
            xxhash_rust::xxh3::xxh3_128(b"")
        )
    );
}
