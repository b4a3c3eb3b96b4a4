//! `ddboost-mock`: administers the emulated Data Domain systems of the mock libDDBoost.
//!
//! ```text
//! ddboost-mock create-system --root DIR --host NAME --user U --password P [--storage-unit SU]...
//! ddboost-mock totals --root DIR --host NAME [--json]
//! ddboost-mock fill --root DIR --host NAME --folder PATH --objects N [--size BYTES]
//!     [--storage-unit SU] [--prefix P] [--first N] [--seed S] [--records]
//! ```
//!
//! `create-system` is idempotent: on an existing system it adds (or re-keys) the user and
//! adds the storage units. `totals` prints `key=value` lines (or one JSON object):
//! `logical_bytes_written`, `unique_segment_bytes`, `stored_bytes`, `unique_segments`,
//! `files`, `logical_bytes_present`. `fill` writes N small objects into one folder, each
//! with a container and index log of its own, compacted as processes opening the system
//! compact them: a system as many writer processes leave it. With `--records`, each object
//! `<name>` also gets the checksum record `.<name>.checksum` that `gpbackup_ddboost_plugin`
//! writes beside the objects it stores, so the plugin verifies, restores and replicates
//! filled objects as its own (name them `gpbackup_<content>_<ts>_` with `--prefix` and the
//! first table oid with `--first` for the data files of a per-table backup).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ddboost-mock",
    version,
    about = "Administer the emulated Data Domain systems of the mock libDDBoost"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a system (or add a user / storage units to an existing one).
    CreateSystem {
        /// Directory holding the systems (the value of DDBOOST_MOCK_ROOT).
        #[arg(long)]
        root: PathBuf,
        /// Host name of the system.
        #[arg(long)]
        host: String,
        /// DD Boost user name.
        #[arg(long)]
        user: String,
        /// Password (stored as a salted SHA-256 hash).
        #[arg(long)]
        password: String,
        /// Storage unit to create (repeatable).
        #[arg(long = "storage-unit")]
        storage_unit: Vec<String>,
    },
    /// Print a system's totals.
    Totals {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        host: String,
        /// Print one JSON object instead of key=value lines.
        #[arg(long)]
        json: bool,
    },
    /// Write many small objects into one folder, as many writer processes would.
    Fill {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        host: String,
        /// Storage unit (must exist).
        #[arg(long = "storage-unit", default_value = "GPDB")]
        storage_unit: String,
        /// Folder inside the storage unit (created when missing).
        #[arg(long)]
        folder: String,
        /// Number of objects.
        #[arg(long)]
        objects: u64,
        /// Bytes per object.
        #[arg(long, default_value_t = 20_000)]
        size: usize,
        /// Object names are PREFIX<n>.
        #[arg(long, default_value = "object_")]
        prefix: String,
        /// Number of the first object.
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Seed of the contents (other seeds, other bytes).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write each object's checksum record `.<name>.checksum`, as the plugin does.
        #[arg(long)]
        records: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Fill {
            root,
            host,
            storage_unit,
            folder,
            objects,
            size,
            prefix,
            first,
            seed,
            records,
        } => {
            let spec = ddboost_mock::fill::Fill {
                su: &storage_unit,
                folder: &folder,
                prefix: &prefix,
                first,
                objects,
                size,
                seed,
                records,
            };
            fill(&root, &host, &spec)
        }
        Cmd::CreateSystem {
            root,
            host,
            user,
            password,
            storage_unit,
        } => {
            let mut r = ddboost_mock::admin::create_system(&root, &host, &user, &password, None);
            for su in &storage_unit {
                if r.is_ok() {
                    r = ddboost_mock::admin::create_system(
                        &root,
                        &host,
                        &user,
                        &password,
                        Some(su),
                    );
                }
            }
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!(
                        "ddboost-mock: create-system failed: {}",
                        ddboost_mock::error::DdError::name(e.0)
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Totals { root, host, json } => totals(&root, &host, json),
    }
}

fn fill(root: &std::path::Path, host: &str, spec: &ddboost_mock::fill::Fill<'_>) -> ExitCode {
    let start = std::time::Instant::now();
    let progress = |n: u64| {
        if n.is_multiple_of(10_000) {
            eprintln!("ddboost-mock: fill: {n} of {} objects", spec.objects);
        }
    };
    match ddboost_mock::fill::fill(&root.join(host), spec, progress) {
        Ok(bytes) => {
            eprintln!(
                "ddboost-mock: fill: {} objects, {bytes} bytes in {:.1} s",
                spec.objects,
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "ddboost-mock: fill of {host:?} under {} failed: {}",
                root.display(),
                ddboost_mock::error::DdError::name(e.0)
            );
            ExitCode::FAILURE
        }
    }
}

fn totals(root: &std::path::Path, host: &str, json: bool) -> ExitCode {
    match ddboost_mock::store::totals(&root.join(host)) {
        Ok(t) => {
            if json {
                println!("{}", serde_json::to_string(&t).unwrap_or_default());
            } else {
                println!("logical_bytes_written={}", t.logical_bytes_written);
                println!("unique_segment_bytes={}", t.unique_segment_bytes);
                println!("stored_bytes={}", t.stored_bytes);
                println!("unique_segments={}", t.unique_segments);
                println!("files={}", t.files);
                println!("logical_bytes_present={}", t.logical_bytes_present);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "ddboost-mock: no system {host:?} under {}: {}",
                root.display(),
                ddboost_mock::error::DdError::name(e.0)
            );
            ExitCode::FAILURE
        }
    }
}
