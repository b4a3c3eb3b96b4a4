//! Small objects written and read over 1, 2 and 3 lanes (connections to one
//! mock Data Domain, logged in beforehand, as a per-host broker holds them):
//! the time until the reply (the commit, or the last byte output) per
//! object, and the deferred steps after it.
//!
//! ```text
//! cargo build --release -p ddboost-mock && cargo build --release --example lanes
//! DDBOOST_MOCK_LATENCY_MS=5 target/release/examples/lanes \
//!     $PWD/target/release/libddboost_mock.so target/release/ddboost-mock 60
//! ```

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use gpbackup_ddboost_plugin::backends::PluginConfig;
use gpbackup_ddboost_plugin::data::repo::{self, Part, WriteInfo};
use gpbackup_ddboost_plugin::storage::{Remote, Storage, StoragePath};

/// Sizes in turn: about a quarter empty, the rest 2 KiB to 300 KiB.
const SIZES: [usize; 7] = [0, 2048, 9000, 0, 40_000, 120_000, 300_000];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: lanes LIBDDBOOST_MOCK DDBOOST_MOCK_ADMIN OBJECTS");
        std::process::exit(2);
    }
    let (lib, cli) = (&args[1], &args[2]);
    let objects: usize = args[3].parse().expect("OBJECTS is a number");
    let root = std::env::temp_dir().join(format!("lanes-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("a folder for the mock");
    std::env::set_var("DDBOOST_MOCK_ROOT", &root);
    let made = Command::new(cli)
        .args(["create-system", "--root"])
        .arg(&root)
        .args([
            "--host",
            "dd-lanes",
            "--user",
            "bench",
            "--password",
            "Bench-pw-1",
        ])
        .args(["--storage-unit", "SU"])
        .status()
        .expect("the mock's admin command runs");
    assert!(made.success(), "create-system failed");
    let text = format!(
        "options:\n  hostname: dd-lanes\n  username: bench\n  password: Bench-pw-1\n  storage_unit: SU\n  directory: bench\n  ddboost_library: {lib}\n"
    );
    let cfg = PluginConfig::parse(&text, Path::new("lanes.yaml")).expect("config");
    let conns: Vec<Box<dyn Storage>> = (0..3)
        .map(|_| cfg.backend.open(Remote::Never).expect("connect"))
        .collect();
    let lanes: Vec<&dyn Storage> = conns.iter().map(|c| c.as_ref()).collect();
    lanes[0]
        .create_dir_all(&StoragePath::parse("t").unwrap())
        .expect("the folder");
    let write = WriteInfo {
        command: "backup_data",
        source: "standard input",
        timestamp: "20990101000000",
        options: &[],
    };
    println!("lanes  backup reply  deferred  restore reply  deferred  (ms per object, {objects} objects)");
    let mut replies = Vec::new();
    for n in 1..=3 {
        let (mut b, mut bd, mut r, mut rd) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..objects {
            let data: Vec<u8> = (0..SIZES[i % SIZES.len()])
                .map(|j| (j * 31 + i * 7 + n) as u8)
                .collect();
            let path = StoragePath::parse(&format!("t/{n}/obj{i}")).unwrap();
            let t = Instant::now();
            let input = Box::new(std::io::Cursor::new(data.clone()));
            let (_, deferred) =
                repo::store_with_lanes(&lanes[..n], &path, input, &write).expect("store");
            b += t.elapsed().as_secs_f64();
            let t = Instant::now();
            deferred.finish();
            bd += t.elapsed().as_secs_f64();
            let mut out = tempfile_in(&root);
            let t = Instant::now();
            let (got, deferred) = repo::restore_with_lanes(
                &lanes[..n],
                &path,
                Part::Whole,
                "restore_data",
                out.try_clone().expect("a file"),
                8,
            )
            .expect("restore");
            r += t.elapsed().as_secs_f64();
            let t = Instant::now();
            deferred.finish();
            rd += t.elapsed().as_secs_f64();
            assert_eq!(got, data.len() as u64);
            let mut back = Vec::new();
            use std::io::Seek;
            out.rewind().expect("rewind");
            out.read_to_end(&mut back).expect("read back");
            assert!(back == data, "{path} restores byte for byte");
        }
        let per = |s: f64| s * 1000.0 / objects as f64;
        println!(
            "{n}      {:12.1}  {:8.1}  {:13.1}  {:8.1}",
            per(b),
            per(bd),
            per(r),
            per(rd)
        );
        replies.push((per(b), per(r)));
    }
    let (b1, r1) = replies[0];
    let (b3, r3) = replies[2];
    println!(
        "1 lane / 3 lanes, until the reply: backup {:.2}x, restore {:.2}x",
        b1 / b3,
        r1 / r3
    );
    drop(lanes);
    drop(conns);
    let _ = std::fs::remove_dir_all(&root);
}

/// A new empty file in `dir`, removed once opened.
fn tempfile_in(dir: &Path) -> std::fs::File {
    let p = dir.join(format!("out-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .expect("an output file");
    let _ = std::fs::remove_file(&p);
    f
}
