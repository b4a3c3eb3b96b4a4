//! list_backups: the backups stored below `directory`, one line each, from
//! what gpbackup stored with them, for a DBA without `gpbackup_history.db`.
//!
//! Backups are found by their folders (`backups::catalog`) and described by
//! their config (`backups::files`): a few calls per backup, none per
//! object. `--sizes` lists each backup folder (per object); `--replica`
//! asks the remote system too (otherwise it is never connected).

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Mutex;

use serde_json::json;

use crate::backups::{catalog, files};
use crate::error::{Error, Result};
use crate::process::fanout;
use crate::protocol::keys::Timestamp;
use crate::storage::Storage;

use super::Context;

/// The command's switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub sizes: bool,
    pub replica: bool,
    pub json: bool,
    /// Metrics for node_exporter's textfile collector.
    pub openmetrics: bool,
}

/// What is stored of one backup.
#[derive(Debug, Default)]
struct Totals {
    objects: u64,
    bytes: u64,
}

/// One backup as listed.
#[derive(Debug)]
struct Row {
    ts: Timestamp,
    config: Option<std::result::Result<files::BackupConfig, String>>,
    stored: Option<Totals>,
    replica: Option<String>,
}

impl Row {
    fn status(&self) -> String {
        match &self.config {
            None => "incomplete".into(),
            Some(Err(_)) => "unreadable".into(),
            Some(Ok(c)) if c.status.is_empty() => "unknown".into(),
            Some(Ok(c)) => c.status.clone(),
        }
    }

    fn config(&self) -> Option<&files::BackupConfig> {
        self.config.as_ref().and_then(|c| c.as_ref().ok())
    }

    fn depends_on(&self) -> Vec<String> {
        self.config()
            .map(|c| c.depends_on(self.ts.as_str()))
            .unwrap_or_default()
    }

    fn kind(&self) -> &'static str {
        match self.config() {
            None => "-",
            Some(c) if c.incremental => "incremental",
            Some(_) => "full",
        }
    }

    fn data(&self) -> String {
        let Some(c) = self.config() else {
            return "-".into();
        };
        let mut words = vec![if c.metadataonly {
            "metadata-only"
        } else if c.singledatafile {
            "single-data-file"
        } else {
            "per-table"
        }];
        if c.dataonly {
            words.push("data-only");
        }
        words.join(",")
    }

    fn note(&self) -> Option<String> {
        match &self.config {
            None => Some(format!(
                "no {}: still running, or stopped before gpbackup's teardown",
                files::names::file(self.ts.as_str(), files::names::CONFIG)
            )),
            Some(Err(e)) => Some(format!("config does not parse: {e}")),
            Some(Ok(_)) => None,
        }
    }

    fn json(&self) -> serde_json::Value {
        let c = self.config();
        json!({
            "timestamp": self.ts.as_str(),
            "database": c.map(|c| c.databasename.as_str()),
            "status": self.status(),
            "type": c.map(|_| self.kind()),
            "depends_on": self.depends_on(),
            "single_data_file": c.map(|c| c.singledatafile),
            "data_only": c.map(|c| c.dataonly),
            "metadata_only": c.map(|c| c.metadataonly),
            "compression": c.map(|c| c.compression()),
            "segments": c.map(|c| c.segmentcount),
            "end_time": c.map(|c| c.endtime.as_str()).filter(|e| !e.is_empty()),
            "objects": c.and_then(|c| c.named_objects(self.ts.as_str())),
            "stored_objects": self.stored.as_ref().map(|s| s.objects),
            "stored_bytes": self.stored.as_ref().map(|s| s.bytes),
            "replica": self.replica,
            "note": self.note(),
        })
    }

    fn cells(&self, flags: Flags) -> Vec<String> {
        let c = self.config();
        let dash = || "-".to_string();
        let mut kind = self.kind().to_string();
        let deps = self.depends_on();
        if !deps.is_empty() {
            kind = format!("{kind}:{}", deps.join(","));
        }
        let mut cells = vec![
            self.ts.to_string(),
            c.map(|c| c.databasename.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(dash),
            self.status(),
            kind,
            self.data(),
            c.map(|c| c.compression().to_string()).unwrap_or_else(dash),
            c.and_then(|c| c.named_objects(self.ts.as_str()))
                .map(|n| n.to_string())
                .unwrap_or_else(dash),
        ];
        if flags.sizes {
            let s = self.stored.as_ref();
            cells.push(s.map(|s| s.objects.to_string()).unwrap_or_else(dash));
            cells.push(s.map(|s| s.bytes.to_string()).unwrap_or_else(dash));
        }
        if flags.replica {
            cells.push(self.replica.clone().unwrap_or_else(dash));
        }
        cells
    }
}

pub fn run(ctx: &Context, flags: Flags) -> Result<()> {
    let storage = if flags.replica {
        ctx.storage_with_replica()?
    } else {
        ctx.storage()?
    };
    let found = catalog::find(storage.as_ref())?;
    let remote = match flags.replica {
        false => None,
        true => {
            let replica = storage.replica().ok_or_else(|| {
                Error::config(format!(
                    "list_backups --replica: {} has no remote system (backend ddboost with remote_* options)",
                    storage.describe()
                ))
            })?;
            let held: BTreeSet<Timestamp> = catalog::find(replica.storage())?.into_iter().collect();
            Some((replica.storage(), held))
        }
    };
    let configs = read_configs(ctx, storage.as_ref(), &found)?;
    let mut rows = Vec::new();
    for (ts, config) in found.into_iter().zip(configs) {
        let stored = match flags.sizes {
            true => Some(stored(storage.as_ref(), &ts)?),
            false => None,
        };
        let replica = match &remote {
            None => None,
            Some((_, held)) if !held.contains(&ts) => Some("no".to_string()),
            Some((r, _)) => Some(match &stored {
                // With sizes, compare what both systems hold.
                Some(here) => {
                    let there = self::stored(*r, &ts)?;
                    if there.objects == here.objects && there.bytes == here.bytes {
                        "yes".to_string()
                    } else {
                        format!("partial:{}/{}", there.objects, here.objects)
                    }
                }
                None => "yes".to_string(),
            }),
        };
        rows.push(Row {
            ts,
            config,
            stored,
            replica,
        });
    }
    log::info!(
        "list_backups: {} backups in {}",
        rows.len(),
        storage.describe()
    );
    let text = if flags.openmetrics {
        metrics(ctx, &rows)
    } else if flags.json {
        let doc = json!({
            "storage": storage.describe(),
            "backups": rows.iter().map(Row::json).collect::<Vec<_>>(),
        });
        format!("{doc}\n")
    } else {
        table(&rows, flags)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if crate::error::is_broken_pipe(&e) => Err(Error::broken_pipe()),
        Err(e) => Err(Error::io(format!("cannot write to standard output: {e}"))),
        Ok(()) => Ok(()),
    }
}

/// Per backup: stored bytes and objects, whether gpbackup's config (its
/// manifest) is there and says it succeeded, and the last `verify_backup`
/// on this host. Labels: the backup's timestamp only.
fn metrics(ctx: &Context, rows: &[Row]) -> String {
    use crate::observe::textfile::{labels, Text};
    let checks = crate::observe::verified::last_checks(&ctx.config.redacted_options);
    let mut t = Text::default();
    type Value<'a> = dyn Fn(&Row) -> Option<f64> + 'a;
    let families: [(&str, &str, &Value); 6] = [
        (
            "backup_size_bytes",
            "Bytes stored in the backup's folder.",
            &|r| r.stored.as_ref().map(|s| s.bytes as f64),
        ),
        (
            "backup_objects",
            "Objects stored in the backup's folder.",
            &|r| r.stored.as_ref().map(|s| s.objects as f64),
        ),
        (
            "backup_complete",
            "1 when gpbackup's config (its manifest of the backup) is stored.",
            &|r| Some(f64::from(u8::from(r.config.is_some()))),
        ),
        (
            "backup_succeeded",
            "1 when gpbackup's config says the backup succeeded.",
            &|r| {
                Some(f64::from(u8::from(
                    r.config().is_some_and(|c| c.succeeded()),
                )))
            },
        ),
        (
            "backup_last_verify_timestamp_seconds",
            "When verify_backup last checked the backup on this host (Unix time).",
            &|r| checks.get(r.ts.as_str()).map(|c| c.at as f64),
        ),
        (
            "backup_last_verify_ok",
            "1 when the last verify_backup of the backup on this host passed.",
            &|r| checks.get(r.ts.as_str()).map(|c| f64::from(u8::from(c.ok))),
        ),
    ];
    for (name, help, value) in families {
        t.family(name, "gauge", help);
        for row in rows {
            if let Some(v) = value(row) {
                t.sample(name, &labels(&[("backup", row.ts.as_str())]), v);
            }
        }
    }
    t.finish()
}

/// The config of each backup of `found`, in order, read on up to
/// `command_connections` connections at once.
type Config = Option<std::result::Result<files::BackupConfig, String>>;
fn read_configs(ctx: &Context, storage: &dyn Storage, found: &[Timestamp]) -> Result<Vec<Config>> {
    let read: Mutex<Vec<Option<Config>>> = Mutex::new(vec![None; found.len()]);
    // Configs are read on the primary: the other connections need no replica.
    let open = || ctx.storage();
    let width = ctx.config.backend.command_connections();
    fanout::run(
        storage,
        width,
        open,
        (0..found.len()).collect(),
        |s, i, _| {
            let ts = &found[i];
            let config = files::read_config(s, ts).map_err(|e| {
                e.context(format!(
                    "list_backups: cannot read the config of backup {ts}"
                ))
            })?;
            read.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(config);
            Ok(())
        },
    )?;
    let read = read.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(read.into_iter().map(Option::flatten).collect())
}

/// The objects and bytes stored for backup `ts`.
fn stored(storage: &dyn Storage, ts: &Timestamp) -> Result<Totals> {
    let listing = storage.list(ts.prefix()).map_err(|e| {
        e.context(format!(
            "list_backups: cannot list backup {ts} in {}",
            storage.describe()
        ))
    })?;
    Ok(Totals {
        objects: listing.len() as u64,
        bytes: listing.iter().map(|o| o.size).sum(),
    })
}

/// Aligned columns with a header; notes (a missing or broken config) follow
/// their row's cells.
fn table(rows: &[Row], flags: Flags) -> String {
    let mut header: Vec<String> = [
        "TIMESTAMP",
        "DATABASE",
        "STATUS",
        "TYPE",
        "DATA",
        "COMPRESSION",
        "OBJECTS",
    ]
    .map(String::from)
    .to_vec();
    if flags.sizes {
        header.push("STORED".into());
        header.push("BYTES".into());
    }
    if flags.replica {
        header.push("REPLICA".into());
    }
    let mut all = vec![header];
    all.extend(rows.iter().map(|r| r.cells(flags)));
    let widths: Vec<usize> = (0..all[0].len())
        .map(|i| all.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, cells) in all.iter().enumerate() {
        let mut line: String = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        if let Some(note) = i.checked_sub(1).and_then(|r| rows[r].note()) {
            line.push_str("  # ");
            line.push_str(&note);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
