//! The storage suite: what every `Storage` implementation must do, checked
//! in-process through the trait (the binary-level suite is
//! `tests/conformance.rs`). Run on every backend: memory, local, ddboost
//! against the mock, and the fault-injecting wrapper with no rules.

mod support;

use std::path::Path;
use std::sync::OnceLock;

use gpbackup_ddboost_plugin::backends::PluginConfig;
use gpbackup_ddboost_plugin::error::ErrorKind;
use gpbackup_ddboost_plugin::storage::faulty::{Faults, FaultyStorage};
use gpbackup_ddboost_plugin::storage::memory::MemoryStorage;
use gpbackup_ddboost_plugin::storage::{Remote, Storage, StoragePath};

use support::bytes;

/// A path the suite names.
fn p(text: &str) -> StoragePath {
    StoragePath::parse(text).unwrap()
}

fn write(s: &dyn Storage, path: &str, data: &[u8]) {
    let mut w = s.create(&p(path), &Default::default()).unwrap();
    assert!(w.block_size() >= 4096);
    for c in data.chunks(w.block_size()) {
        w.write(c).unwrap();
    }
    w.commit().unwrap();
}

fn read(s: &dyn Storage, path: &str) -> Vec<u8> {
    let mut r = s.open(&p(path), &Default::default()).unwrap();
    let mut out = vec![0u8; r.size() as usize];
    let mut got = 0;
    while got < out.len() {
        let n = r.read_at(&mut out[got..], got as u64).unwrap();
        assert!(n > 0, "short object {path}");
        got += n;
    }
    let mut extra = [0u8; 1];
    assert_eq!(
        r.read_at(&mut extra, got as u64).unwrap(),
        0,
        "past the end"
    );
    out
}

/// The kind of error opening `path` gives (it must fail).
fn open_error(s: &dyn Storage, path: &str) -> ErrorKind {
    match s.open(&p(path), &Default::default()) {
        Ok(_) => panic!("{path} opened"),
        Err(e) => e.kind(),
    }
}

fn paths(list: Vec<gpbackup_ddboost_plugin::storage::ObjectInfo>) -> Vec<String> {
    list.into_iter().map(|o| o.path.into()).collect()
}

// ---- the suite ------------------------------------------------------------------------

fn commit_makes_an_object_visible(s: &dyn Storage) {
    let data = bytes(300_000, 1);
    let mut w = s.create(&p("a/b/obj"), &Default::default()).unwrap();
    w.write(&data).unwrap();
    assert_eq!(open_error(s, "a/b/obj"), ErrorKind::NotFound);
    assert!(s.list(&p("a")).unwrap().is_empty(), "visible before commit");
    w.commit().unwrap();
    assert_eq!(read(s, "a/b/obj"), data);
    let l = s.list(&p("a")).unwrap();
    assert_eq!(paths(l.clone()), vec!["a/b/obj"]);
    assert_eq!(l[0].size, data.len() as u64);
}

fn dropped_writer_leaves_nothing(s: &dyn Storage) {
    write(s, "d/obj", b"old");
    let mut w = s.create(&p("d/obj"), &Default::default()).unwrap();
    w.write(b"new and longer").unwrap();
    drop(w);
    assert_eq!(read(s, "d/obj"), b"old");
    assert_eq!(
        paths(s.list_all(&p("d")).unwrap()),
        vec!["d/obj"],
        "temporary left"
    );
}

fn overwrite_replaces(s: &dyn Storage) {
    write(s, "o/obj", &bytes(100_000, 2));
    write(s, "o/obj", b"short");
    assert_eq!(read(s, "o/obj"), b"short");
    write(s, "o/empty", b"");
    assert_eq!(read(s, "o/empty"), b"");
}

fn reads_at_any_offset(s: &dyn Storage) {
    let data = bytes(2 * (1 << 20) + 3, 3);
    write(s, "r/obj", &data);
    let mut r = s.open(&p("r/obj"), &Default::default()).unwrap();
    assert_eq!(r.size(), data.len() as u64);
    for off in [0usize, 1, 65_535, 1 << 20, data.len() - 1] {
        let mut buf = vec![0u8; 1000];
        let n = r.read_at(&mut buf, off as u64).unwrap();
        assert!(n > 0);
        assert_eq!(buf[..n], data[off..off + n], "at {off}");
    }
}

fn missing_objects_are_not_found(s: &dyn Storage) {
    assert_eq!(open_error(s, "none/obj"), ErrorKind::NotFound);
    assert!(s.list(&p("none")).unwrap().is_empty());
    assert!(s.list_all(&p("none")).unwrap().is_empty());
    assert!(!s.delete(&p("none/obj")).unwrap());
    assert_eq!(s.delete_dir_all(&p("none")).unwrap().files, 0);
}

fn listings_are_recursive_sorted_and_hide_own_names(s: &dyn Storage) {
    for p in ["l/x/2", "l/x/1", "l/y/3", "l/.hidden", "l/x/.rec"] {
        write(s, p, p.as_bytes());
    }
    assert_eq!(
        paths(s.list(&p("l")).unwrap()),
        vec!["l/x/1", "l/x/2", "l/y/3"]
    );
    let all = paths(s.list_all(&p("l")).unwrap());
    assert!(all.contains(&"l/.hidden".to_string()), "{all:?}");
    assert!(all.contains(&"l/x/.rec".to_string()), "{all:?}");
    assert_eq!(
        paths(s.list(&p("l/x/1")).unwrap()),
        vec!["l/x/1"],
        "a file lists itself"
    );
}

fn deletes(s: &dyn Storage) {
    for p in ["k/a/1", "k/a/2", "k/b/3", "keep/4"] {
        write(s, p, b"x");
    }
    assert!(s.delete(&p("k/b/3")).unwrap());
    assert!(!s.delete(&p("k/b/3")).unwrap());
    let sum = s.delete_dir_all(&p("k")).unwrap();
    assert_eq!(sum.files, 2);
    assert!(s.list(&p("k")).unwrap().is_empty());
    assert_eq!(read(s, "keep/4"), b"x");
    assert_eq!(
        s.delete_dir_all(&p("k")).unwrap().files,
        0,
        "a repeat is harmless"
    );
}

fn empty_folders(s: &dyn Storage) {
    s.create_dir_all(&p("e/f/g")).unwrap();
    s.create_dir_all(&p("e/f/g")).unwrap();
    write(s, "e/f/obj", b"x");
    assert!(!s.remove_dir_if_empty(&p("e/f")).unwrap(), "not empty");
    assert!(s.remove_dir_if_empty(&p("e/f/g")).unwrap());
    assert!(!s.remove_dir_if_empty(&p("e/f/g")).unwrap(), "gone");
}

fn rename_replaces_in_one_step(s: &dyn Storage) {
    write(s, "n/a", b"new");
    write(s, "n/b", b"old");
    s.rename(&p("n/a"), &p("n/b")).unwrap();
    assert_eq!(read(s, "n/b"), b"new");
    assert_eq!(open_error(s, "n/a"), ErrorKind::NotFound);
}

fn descriptions_name_no_secret(s: &dyn Storage) {
    let d = s.describe();
    assert!(!d.is_empty());
    assert!(!d.contains(support::DD_PASSWORD), "{d}");
}

// ---- the backends -----------------------------------------------------------------------

fn local(dir: &Path) -> Box<dyn Storage> {
    let text = format!(
        "options:\n  backend: local\n  directory: {}\n  fsync: off\n",
        dir.display()
    );
    let cfg = PluginConfig::parse(&text, Path::new("t.yaml")).unwrap();
    cfg.backend.open(Remote::Never).unwrap()
}

/// A fresh mock system for each test (one root for the process).
fn ddboost(host: &str) -> Box<dyn Storage> {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("DDBOOST_MOCK_ROOT", t.path());
        t
    });
    support::create_system(root.path(), host);
    support::open_mock(host, "suite")
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $case() { super::$case(&gpbackup_ddboost_plugin::storage::memory::MemoryStorage::new()); } )*
        }
        mod local {
            $( #[test] fn $case() {
                let t = tempfile::tempdir().unwrap();
                super::$case(super::local(t.path()).as_ref());
            } )*
        }
        mod ddboost_mock {
            $( #[test] fn $case() { super::$case(super::ddboost(stringify!($case)).as_ref()); } )*
        }
        mod faulty_without_rules {
            $( #[test] fn $case() {
                let inner = Box::new(super::MemoryStorage::new());
                let s = super::FaultyStorage::new(inner, super::Faults::parse("").unwrap());
                super::$case(&s);
            } )*
        }
    };
}

suite!(
    commit_makes_an_object_visible,
    dropped_writer_leaves_nothing,
    overwrite_replaces,
    reads_at_any_offset,
    missing_objects_are_not_found,
    listings_are_recursive_sorted_and_hide_own_names,
    deletes,
    empty_folders,
    rename_replaces_in_one_step,
    descriptions_name_no_secret,
);

#[test]
fn injected_faults_fail_the_named_call_only() {
    let s = FaultyStorage::new(
        Box::new(MemoryStorage::new()),
        Faults::parse("write:nth=2:err=io;open:path=gone:err=notfound").unwrap(),
    );
    let mut w = s.create(&p("f/obj"), &Default::default()).unwrap();
    w.write(b"1").unwrap();
    assert_eq!(w.write(b"2").unwrap_err().kind(), ErrorKind::Storage);
    drop(w);
    write(&s, "f/gone", b"x");
    assert_eq!(open_error(&s, "f/gone"), ErrorKind::NotFound);
    write(&s, "f/other", b"y");
    assert_eq!(read(&s, "f/other"), b"y");
}
