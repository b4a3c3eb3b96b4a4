//! `ddboost-mock fill --records`: objects filled in bulk with the checksum
//! records the plugin writes are the plugin's own. A per-table backup filled
//! that way (and its manifest stored through the plugin) verifies whole, a
//! filled record is byte for byte the one the plugin writes for the same
//! bytes, and one changed byte of a filled object is found.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

const TS: &str = "20250101120000";
const SEGMENTS: u32 = 2;
const FIRST_OID: u32 = 20000;

fn rel(name: &str) -> String {
    format!("backups/{}/{TS}/{name}", &TS[..8])
}

fn data_file(seg: u32, oid: u32) -> String {
    format!("gpbackup_{seg}_{TS}_{oid}")
}

/// Fills `objects` data files of segment `seg` from table oid `first`, of
/// `size` bytes each, with their records, into the backup folder.
fn fill(env: &Env, seg: u32, first: u32, objects: u32, size: usize) {
    let out = Command::new(&mock().cli)
        .args(["fill", "--root", env.dd_root().to_str().unwrap()])
        .args(["--host", "dd-primary", "--storage-unit", DD_SU])
        .args(["--folder", &format!("gpdb/backups/{}", rel(""))])
        .args(["--prefix", &format!("gpbackup_{seg}_{TS}_")])
        .args(["--first", &first.to_string()])
        .args(["--objects", &objects.to_string()])
        .args(["--size", &size.to_string(), "--records"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn backup_file(env: &Env, name: &str, text: &str) {
    let key = env.key(TS, name);
    std::fs::create_dir_all(Path::new(&key).parent().unwrap()).unwrap();
    std::fs::write(&key, text).unwrap();
    ok(&env.run(&["backup_file", env.cfg(), &key]));
}

/// gpbackup's manifest of a per-table backup of `tables` tables on two
/// segments (config, TOC, metadata, report), stored through the plugin.
fn store_manifest(env: &Env, tables: u32) {
    let fqns: String = (0..tables).map(|i| format!("  - public.t{i}\n")).collect();
    backup_file(
        env,
        &format!("gpbackup_{TS}_config.yaml"),
        &format!(
            "backupversion: 1.30.0\ncompressed: false\ncompressiontype: gzip\ndatabasename: bench\n\
             segmentcount: {SEGMENTS}\nsingledatafile: false\nincremental: false\n\
             restoreplan:\n- timestamp: \"{TS}\"\n  tablefqns:\n{fqns}timestamp: \"{TS}\"\nstatus: Success\n"
        ),
    );
    let entries: String = (0..tables)
        .map(|i| {
            format!(
                "- schema: public\n  name: t{i}\n  oid: {}\n  isreplicated: false\n",
                FIRST_OID + i
            )
        })
        .collect();
    backup_file(
        env,
        &format!("gpbackup_{TS}_toc.yaml"),
        &format!("globalentries: []\ndataentries:\n{entries}"),
    );
    backup_file(
        env,
        &format!("gpbackup_{TS}_metadata.sql"),
        "SET client_encoding = 'UTF8';\n",
    );
    backup_file(env, &format!("gpbackup_{TS}_report"), "Backup Report\n");
}

#[test]
fn a_filled_backup_with_records_verifies_and_damage_is_found() {
    let env = Env::new(Backend::DdBoostMock);
    // Per segment: 3 small tables, an empty one and one of several blocks
    // (the last short).
    let big = 3 * (1 << 20) + 5;
    for seg in 0..SEGMENTS {
        fill(&env, seg, FIRST_OID, 3, 20_000);
        fill(&env, seg, FIRST_OID + 3, 1, 0);
        fill(&env, seg, FIRST_OID + 4, 1, big);
    }
    let tables = 5;
    store_manifest(&env, tables);

    let (out, lines) = verify_lines(&env, TS, &[]);
    ok(&out);
    let data: Vec<(String, usize)> = (0..SEGMENTS)
        .flat_map(|s| {
            [(0, 20_000), (1, 20_000), (2, 20_000), (3, 0), (4, big)]
                .map(|(i, size)| (data_file(s, FIRST_OID + i), size))
        })
        .collect();
    let oks = with_status(&lines, "OK");
    for (name, size) in &data {
        assert!(
            oks.contains(&format!("OK {} {size}", rel(name))),
            "{name}: {lines:?}"
        );
    }
    assert_eq!(
        oks.len(),
        data.len() + 4,
        "data and 4 manifest files: {lines:?}"
    );
    for status in ["MISSING", "FAILED", "UNRECORDED", "EXTRA"] {
        assert!(with_status(&lines, status).is_empty(), "{lines:?}");
    }

    // A filled record is the plugin's own for the same bytes: the object
    // restored, stored again through the plugin (in another backup's
    // folder), gets the same record.
    let other = "20250101130000";
    for (name, size) in [&data[3], &data[4], &data[5]] {
        let bytes = env.restore_data(TS, name);
        assert_eq!(bytes.len(), *size);
        env.backup_data(other, name, &bytes);
        let filled = env.get_raw(&rel(&format!(".{name}.checksum"))).unwrap();
        let written = env
            .get_raw(&format!("backups/{}/{other}/.{name}.checksum", &other[..8]))
            .unwrap();
        assert_eq!(
            String::from_utf8(filled).unwrap(),
            String::from_utf8(written).unwrap(),
            "{name}"
        );
    }

    // One byte changed in a filled object (its record left as it was).
    let damaged = data_file(1, FIRST_OID + 4);
    env.corrupt(TS, &damaged);
    let (out, lines) = verify_lines(&env, TS, &[]);
    assert!(!out.status.success(), "{lines:?}");
    let failed = with_status(&lines, "FAILED");
    assert_eq!(failed.len(), 1, "{lines:?}");
    assert!(
        failed[0].starts_with(&format!("FAILED {}", rel(&damaged))),
        "{failed:?}"
    );
}
