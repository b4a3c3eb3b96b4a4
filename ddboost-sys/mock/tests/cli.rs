//! The `ddboost-mock` admin command.

use std::process::Command;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ddboost-mock"))
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
    ok(&[
        "create-system",
        "--root",
        r,
        "--host",
        "dd1",
        "--user",
        "u",
        "--password",
        "p",
        "--storage-unit",
        "SU1",
    ]);
    // Idempotent; adds a storage unit to an existing system.
    ok(&[
        "create-system",
        "--root",
        r,
        "--host",
        "dd1",
        "--user",
        "u",
        "--password",
        "p",
        "--storage-unit",
        "SU2",
    ]);
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
