//! verify_backup against gpbackup's own manifest, and list_backups, through
//! the binary on every backend, with backups shaped exactly as gpbackup
//! wrote them: the manifests in `tests/data/gpbackup/` are those of real
//! gpbackup runs, and their data objects are written here at the sizes
//! gpbackup stored.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::*;

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gpbackup")
        .join(name)
}

/// A real backup's objects: (file name, size), and its timestamp.
struct Fixture {
    name: &'static str,
    ts: String,
    objects: Vec<(String, usize)>,
}

impl Fixture {
    fn new(name: &'static str) -> Fixture {
        let dir = fixture_dir(name);
        let tsv = std::fs::read_to_string(dir.join("objects.tsv")).unwrap();
        let objects: Vec<(String, usize)> = tsv
            .lines()
            .map(|l| {
                let (n, s) = l.split_once('\t').unwrap();
                (n.to_string(), s.parse().unwrap())
            })
            .collect();
        let day = std::fs::read_dir(dir.join("backups"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let ts = std::fs::read_dir(day)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap();
        Fixture { name, ts, objects }
    }

    /// The file gpbackup stored, if it is a manifest file (not data).
    fn manifest_file(&self, object: &str) -> Option<Vec<u8>> {
        let p =
            fixture_dir(self.name).join(format!("backups/{}/{}/{object}", &self.ts[..8], self.ts));
        std::fs::read(p).ok()
    }

    fn rel(&self, object: &str) -> String {
        format!("backups/{}/{}/{object}", &self.ts[..8], self.ts)
    }

    /// Stores the backup as gpbackup did: manifest files with backup_file,
    /// data (of the recorded sizes) with backup_data.
    fn store(&self, env: &Env) {
        self.store_some(env, true);
    }

    fn store_some(&self, env: &Env, with_data: bool) {
        for (i, (name, size)) in self.objects.iter().enumerate() {
            match self.manifest_file(name) {
                Some(text) => backup_file(env, &self.ts, name, &text),
                None if with_data => env.backup_data(&self.ts, name, &bytes(*size, i as u64 + 1)),
                None => {}
            }
        }
    }

    /// The objects a restore opens from its own folder: all but the plugin config.
    fn restore_objects(&self) -> usize {
        self.objects
            .iter()
            .filter(|(n, _)| !n.ends_with("_plugin_config.yaml"))
            .count()
    }
}

fn backup_file(env: &Env, ts: &str, name: &str, text: &[u8]) {
    let key = env.key(ts, name);
    std::fs::create_dir_all(Path::new(&key).parent().unwrap()).unwrap();
    std::fs::write(&key, text).unwrap();
    ok(&env.run(&["backup_file", env.cfg(), &key]));
}

/// Removes a stored object but leaves its checksum record, as a careless
/// cleanup or a lost file would.
fn remove_object(env: &Env, rel: &str) {
    match env.backend {
        Backend::Local => std::fs::remove_file(env.store.join(rel)).unwrap(),
        Backend::DdBoostMock => {
            let (_i, conn) = env.dd_connect("dd-primary");
            conn.unlink(DD_SU, &format!("gpdb/backups/{rel}")).unwrap();
        }
    }
}

fn verify(env: &Env, ts: &str, extra: &[&str]) -> (Output, Vec<String>) {
    verify_lines(env, ts, extra)
}

fn starting(lines: &[String], prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with(prefix))
        .cloned()
        .collect();
    v.sort();
    v
}

fn last(lines: &[String]) -> &str {
    let l = lines.last().expect("output");
    assert!(l.starts_with("SUMMARY "), "{lines:?}");
    l
}

/// The backup verifies whole: every object a restore opens is OK and
/// nothing is missing, damaged or extra.
#[track_caller]
fn assert_complete(env: &Env, f: &Fixture, from_earlier: usize) {
    let (out, lines) = verify(env, &f.ts, &[]);
    ok(&out);
    let n = f.restore_objects() + from_earlier;
    assert_eq!(starting(&lines, "OK ").len(), n, "{lines:?}");
    for bad in ["MISSING", "FAILED", "UNRECORDED", "EXTRA"] {
        assert!(starting(&lines, bad).is_empty(), "{lines:?}");
    }
    assert!(
        lines.contains(&format!(
            "BACKUP {} COMPLETE: {} objects, all present and verified",
            f.ts,
            f.restore_objects()
        )),
        "{lines:?}"
    );
    let s = last(&lines);
    assert!(
        s.starts_with(&format!("SUMMARY backup {}: {n} objects, ", f.ts))
            && s.ends_with(&format!(
                "{n} OK, 0 FAILED, 0 UNRECORDED, 0 MISSING: COMPLETE"
            )),
        "{s}"
    );
}

// ---- verify_backup ---------------------------------------------------------------------------

fn single_data_file_backup(env: &Env) {
    let f = Fixture::new("sdf-nocompress");
    f.store(env);
    assert_complete(env, &f, 0);

    // --json: one document with the verdict and every object.
    let (out, lines) = verify(env, &f.ts, &["--json"]);
    ok(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let doc: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(doc["verdict"], "COMPLETE");
    assert_eq!(doc["manifest"], true);
    assert_eq!(doc["summary"]["ok"], 8);
    assert_eq!(doc["summary"]["missing"], 0);
    let seg0 = format!("gpbackup_0_{}", f.ts);
    let o = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == f.rel(&seg0).as_str())
        .unwrap();
    assert_eq!(o["status"], "OK");
    assert_eq!(o["bytes"], 31_193_471);

    // An object the manifest does not name is reported, not failed.
    env.backup_data(&f.ts, "notes.txt", b"by hand\n");
    let (out, lines) = verify(env, &f.ts, &[]);
    ok(&out);
    assert_eq!(
        starting(&lines, "EXTRA"),
        [format!("EXTRA {} 8", f.rel("notes.txt"))]
    );
    assert!(last(&lines).contains("1 EXTRA (not in the manifest): COMPLETE"));

    // Segment 0's data rewritten shorter, with a record that matches it:
    // only the segment TOC's byte ranges tell.
    let whole = bytes(31_193_471, 1);
    env.backup_data(&f.ts, &seg0, &whole[..31_000_000]);
    let (out, lines) = verify(env, &f.ts, &[]);
    let err = fails(&out);
    assert!(err.contains("is DAMAGED"), "{err}");
    assert_eq!(
        starting(&lines, "FAILED"),
        [format!(
            "FAILED {}: it is 31000000 bytes but its segment TOC gpbackup_0_{}_toc.yaml says 31193471 (truncated or replaced)",
            f.rel(&seg0),
            f.ts
        )]
    );
    assert!(lines.iter().any(|l| l.starts_with(&format!(
        "BACKUP {} DAMAGED: 1 objects failed verification",
        f.ts
    ))));
    env.backup_data(&f.ts, &seg0, &whole);
    assert_eq!(verify(env, &f.ts, &[]).0.status.code(), Some(0));

    // One segment's data gone, its record left: MISSING, and the backup
    // is incomplete.
    let seg1 = format!("gpbackup_1_{}", f.ts);
    remove_object(env, &f.rel(&seg1));
    let (out, lines) = verify(env, &f.ts, &[]);
    let err = fails(&out);
    assert!(
        err.contains(&format!(
            "backup {} is INCOMPLETE: 1 of 8 objects missing",
            f.ts
        )) && err.contains("MISSING lines"),
        "{err}"
    );
    assert_eq!(
        starting(&lines, "MISSING"),
        [format!("MISSING {}: the data of segment 1", f.rel(&seg1))]
    );
    assert_eq!(starting(&lines, "OK ").len(), 7);
    assert!(last(&lines).ends_with(
        "7 OK, 0 FAILED, 0 UNRECORDED, 1 MISSING, 1 EXTRA (not in the manifest): INCOMPLETE"
    ));
    let (out, lines) = verify(env, &f.ts, &["--json"]);
    fails(&out);
    let doc: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(doc["verdict"], "INCOMPLETE");
    assert_eq!(doc["summary"]["missing"], 1);
}

fn per_table_backup(env: &Env) {
    let f = Fixture::new("per-table-gzip");
    f.store(env);
    assert_complete(env, &f, 0);

    // One table's file on one segment gone.
    let table = format!("gpbackup_0_{}_16391.gz", f.ts);
    remove_object(env, &f.rel(&table));
    let (out, lines) = verify(env, &f.ts, &[]);
    let err = fails(&out);
    assert!(err.contains("INCOMPLETE: 1 of 16 objects missing"), "{err}");
    assert_eq!(
        starting(&lines, "MISSING"),
        [format!(
            "MISSING {}: table public.ao1 on segment 0",
            f.rel(&table)
        )]
    );
    let size = f.objects.iter().find(|(n, _)| *n == table).unwrap().1;
    env.backup_data(&f.ts, &table, &bytes(size, 1));
    assert_complete(env, &f, 0);

    // A config whose status is not Success: gpbackup says the backup failed.
    let name = format!("gpbackup_{}_config.yaml", f.ts);
    let text = String::from_utf8(f.manifest_file(&name).unwrap()).unwrap();
    assert!(text.contains("status: Success"));
    backup_file(
        env,
        &f.ts,
        &name,
        text.replace("status: Success", "status: Failure")
            .as_bytes(),
    );
    let (out, lines) = verify(env, &f.ts, &[]);
    let err = fails(&out);
    assert!(
        err.contains(&format!(
            "backup {} is FAILED: gpbackup recorded status \"Failure\"",
            f.ts
        )),
        "{err}"
    );
    assert!(last(&lines).ends_with("0 MISSING: FAILED"), "{lines:?}");
}

fn data_only_and_metadata_only_backups(env: &Env) {
    let data_only = Fixture::new("sdf-data-only");
    data_only.store(env);
    assert_complete(env, &data_only, 0);

    let meta = Fixture::new("metadata-only");
    meta.store(env);
    assert_complete(env, &meta, 0);
    let name = format!("gpbackup_{}_metadata.sql", meta.ts);
    remove_object(env, &meta.rel(&name));
    let (out, lines) = verify(env, &meta.ts, &[]);
    fails(&out);
    assert_eq!(
        starting(&lines, "MISSING"),
        [format!("MISSING {}: its metadata", meta.rel(&name))]
    );
}

fn incremental_backup_and_its_base(env: &Env) {
    let base = Fixture::new("incremental-base-full");
    let inc = Fixture::new("incremental");
    base.store(env);
    inc.store(env);
    // The base's TOC and the two tables the restore plan takes from it, on
    // both segments.
    assert_complete(env, &inc, 5);
    assert_complete(env, &base, 0);
    let (_, lines) = verify(env, &inc.ts, &[]);
    assert_eq!(
        lines[lines.len() - 3],
        format!(
            "BACKUP {} COMPLETE: 5 objects a restore of {} opens, all present and verified",
            base.ts, inc.ts
        )
    );

    // A file of the base that the incremental's restore needs is gone: the
    // base alone would say so too, and the incremental is incomplete.
    let table = format!("gpbackup_1_{}_16803.gz", base.ts);
    remove_object(env, &base.rel(&table));
    let (out, lines) = verify(env, &inc.ts, &[]);
    let err = fails(&out);
    assert!(
        err.contains(&format!(
            "backup {} is INCOMPLETE: earlier backup {} of its restore plan is INCOMPLETE",
            inc.ts, base.ts
        )),
        "{err}"
    );
    assert_eq!(
        starting(&lines, "MISSING"),
        [format!(
            "MISSING {}: table public.ao_part_1_prt_p1 on segment 1",
            base.rel(&table)
        )]
    );
    assert!(
        lines.contains(&format!(
            "BACKUP {} INCOMPLETE: 1 of 5 objects missing",
            base.ts
        )),
        "{lines:?}"
    );
    fails(&verify(env, &base.ts, &[]).0);

    // The base deleted altogether.
    ok(&env.run(&["delete_backup", env.cfg(), &base.ts]));
    let (out, lines) = verify(env, &inc.ts, &[]);
    let err = fails(&out);
    assert!(err.contains("INCOMPLETE"), "{err}");
    assert_eq!(
        starting(&lines, "MISSING"),
        [format!(
            "MISSING {}: the TOC of earlier backup {}",
            base.rel(&format!("gpbackup_{}_toc.yaml", base.ts)),
            base.ts
        )]
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with(&format!("BACKUP {} INCOMPLETE: ", base.ts))
                && l.contains(
                    "is missing, so the table data a restore takes from it cannot be named"
                )
        ),
        "{lines:?}"
    );
}

fn backup_interrupted_before_teardown(env: &Env) {
    let f = Fixture::new("interrupted-before-teardown");
    f.store(env);
    let (out, lines) = verify(env, &f.ts, &[]);
    let err = fails(&out);
    assert!(
        err.contains(&format!(
            "backup {} is INCOMPLETE: no gpbackup_{}_config.yaml and no report",
            f.ts, f.ts
        )) && err.contains("teardown"),
        "{err}"
    );
    // What its TOCs allow is still checked: both segments' data, with the
    // sizes their segment TOCs give, the TOCs and the metadata.
    assert_eq!(starting(&lines, "OK ").len(), 6, "{lines:?}");
    assert!(starting(&lines, "MISSING").is_empty(), "{lines:?}");
    assert!(last(&lines).ends_with("6 OK, 0 FAILED, 0 UNRECORDED, 0 MISSING: INCOMPLETE"));
}

// ---- list_backups ----------------------------------------------------------------------------

const LISTING: &str = "\
TIMESTAMP       DATABASE  STATUS      TYPE                        DATA           COMPRESSION  OBJECTS
20261202004135  e2edb     Success     full                        per-table      gzip         17
20261202004236  e2einc    Success     full                        per-table      gzip         15
20261202004239  e2einc    Success     incremental:20261202004236  per-table      gzip         11
20261202022204  e2edb     Success     full                        metadata-only  gzip         5
20261202022206  -         incomplete  -                           -              -            -        # no gpbackup_20261202022206_config.yaml: still running, or stopped before gpbackup's teardown
";

fn list_backups_shows_each_backup(env: &Env) {
    let all = [
        "per-table-gzip",
        "incremental-base-full",
        "incremental",
        "metadata-only",
    ]
    .map(Fixture::new);
    for f in all.iter().rev() {
        f.store(env);
    }
    // Listed by its folder even without data or config.
    let interrupted = Fixture::new("interrupted-before-teardown");
    interrupted.store_some(env, false);
    // Not backups: ignored.
    env.put_raw("backups/20261202/notes.txt", b"x");

    let out = env.run(&["list_backups", env.cfg()]);
    ok(&out);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), LISTING);

    let out = env.run(&["list_backups", env.cfg(), "--json", "--sizes"]);
    ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["backups"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for (f, row) in all.iter().zip(rows) {
        assert_eq!(row["timestamp"], f.ts.as_str());
        assert_eq!(row["status"], "Success");
        assert_eq!(row["objects"], f.objects.len());
        assert_eq!(row["stored_objects"], f.objects.len());
        // As stored (the fixture's host paths were rewritten after the run).
        let bytes: usize = f
            .objects
            .iter()
            .map(|(n, s)| f.manifest_file(n).map_or(*s, |t| t.len()))
            .sum();
        assert_eq!(row["stored_bytes"], bytes, "{}", f.name);
        assert_eq!(row["replica"], serde_json::Value::Null);
    }
    assert_eq!(rows[2]["type"], "incremental");
    assert_eq!(rows[2]["depends_on"], serde_json::json!([all[1].ts]));
    assert_eq!(rows[0]["single_data_file"], false);
    assert_eq!(rows[3]["metadata_only"], true);
    assert_eq!(rows[4]["status"], "incomplete");
    assert_eq!(rows[4]["objects"], serde_json::Value::Null);
    assert_eq!(rows[4]["stored_objects"], 5);

    // Text with sizes: two more columns.
    let out = env.run(&["list_backups", env.cfg(), "--sizes"]);
    ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("OBJECTS  STORED  BYTES"),
        "{text}"
    );

    // Nothing stored yet is an empty list, not an error.
    let empty = Env::new(env.backend);
    let out = empty.run(&["list_backups", empty.cfg(), "--json"]);
    ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["backups"], serde_json::json!([]));
}

fn list_backups_replica_needs_a_remote_system(env: &Env) {
    let out = env.run(&["list_backups", env.cfg(), "--replica"]);
    let err = fails(&out);
    assert!(err.contains("remote"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn list_backups_with_a_replica() {
    let env = Env::new(Backend::DdBoostMock);
    create_system(&env.dd_root(), "dd-replica");
    let remote = format!(
        "  remote_hostname: dd-replica\n  remote_username: {DD_USER}\n  remote_password: {DD_PASSWORD}\n  remote_storage_unit: {DD_SU}\n  remote_directory: gpdb/replica\n"
    );
    let with_remote = env.other_config(
        "with_remote.yaml",
        &format!("{}{remote}", env.backend_options()),
    );
    let with_remote = with_remote.to_str().unwrap();
    let copied = Fixture::new("per-table-gzip");
    let not_copied = Fixture::new("metadata-only");
    copied.store(&env);
    not_copied.store(&env);
    ok(&env.run(&["replicate_backup", with_remote, &copied.ts]));

    // Without --replica the remote system is not asked (nor named).
    let out = env.run(&["list_backups", with_remote]);
    ok(&out);
    let plain = String::from_utf8(out.stdout).unwrap();
    assert!(!plain.contains("REPLICA"), "{plain}");

    let out = env.run(&["list_backups", with_remote, "--replica"]);
    ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("OBJECTS  REPLICA"), "{text}");
    assert!(
        lines[1].starts_with(&copied.ts) && lines[1].ends_with("  yes"),
        "{text}"
    );
    assert!(
        lines[2].starts_with(&not_copied.ts) && lines[2].ends_with("  no"),
        "{text}"
    );

    // With sizes both systems' objects are compared.
    let (_i, conn) = env.dd_connect("dd-replica");
    conn.unlink(
        DD_SU,
        &format!(
            "gpdb/replica/{}",
            copied.rel(&format!("gpbackup_1_{}_16446.gz", copied.ts))
        ),
    )
    .unwrap();
    let out = env.run(&[
        "list_backups",
        with_remote,
        "--replica",
        "--sizes",
        "--json",
    ]);
    ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["backups"][0]["replica"], "partial:16/17");
    assert_eq!(doc["backups"][1]["replica"], "no");
    let out = env.run(&["list_backups", with_remote, "--replica", "--json"]);
    ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["backups"][0]["replica"], "yes");
}

/// On a terminal, verify_backup draws its progress on stderr (elsewhere
/// stderr stays silent: every `ok` above checks it).
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    use std::io::Read;
    let env = Env::new(Backend::Local);
    let f = Fixture::new("per-table-gzip");
    f.store(&env);
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = env.command(&["verify_backup", env.cfg(), &f.ts]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::from(pty.slave));
    let child = cmd.spawn().unwrap();
    drop(cmd);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut master = std::fs::File::from(pty.master);
    let mut drawn = Vec::new();
    let mut buf = [0u8; 65536];
    // Whatever the pty holds now (the child has exited).
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&master),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        drawn.extend_from_slice(&buf[..n]);
    }
    let drawn = String::from_utf8_lossy(&drawn);
    assert!(
        drawn.contains("verify_backup: 16 of 16 objects"),
        "{drawn:?}"
    );
    // stdout is the same as without a terminal.
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().last().unwrap().ends_with(": COMPLETE"),
        "{text}"
    );
}

// ---- instantiation ---------------------------------------------------------------------------

macro_rules! all_cases {
    ($backend_mod:ident, $backend:expr) => {
        per_backend!(
            $backend_mod,
            $backend,
            [
                single_data_file_backup,
                per_table_backup,
                data_only_and_metadata_only_backups,
                incremental_backup_and_its_base,
                backup_interrupted_before_teardown,
                list_backups_shows_each_backup,
                list_backups_replica_needs_a_remote_system,
            ]
        );
    };
}

all_cases!(local, super::Backend::Local);
all_cases!(ddboost_mock, super::Backend::DdBoostMock);
