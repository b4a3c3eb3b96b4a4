//! gpbackup's files of a backup, as its source defines them: the config
//! (`history.BackupConfig`), the TOC's data entries, the segment TOCs' byte
//! ranges, the file names (`filepath.go`), and reading them from storage.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::keys::Timestamp;
use crate::storage::{OpenOptions, Storage, StoragePath};

/// The largest manifest file read (a TOC of a database with very many tables).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// gpbackup's `history.BackupConfig` (history/history.go): the fields read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BackupConfig {
    pub compressed: bool,
    pub compressiontype: String,
    pub databasename: String,
    pub segmentcount: u32,
    pub dataonly: bool,
    pub metadataonly: bool,
    pub incremental: bool,
    pub leafpartitiondata: bool,
    /// None in backups older than incremental support (gprestore then takes
    /// every data entry of the TOC: `SetRestorePlanForLegacyBackup`).
    pub restoreplan: Option<Vec<RestorePlanEntry>>,
    pub singledatafile: bool,
    pub timestamp: String,
    pub endtime: String,
    pub withstatistics: bool,
    pub status: String,
}

/// `history.RestorePlanEntry`: the tables a restore takes from one backup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RestorePlanEntry {
    pub timestamp: String,
    pub tablefqns: Vec<String>,
}

/// gpbackup's `history.BackupStatusSucceed`.
pub const STATUS_SUCCESS: &str = "Success";

impl BackupConfig {
    pub fn parse(text: &[u8]) -> std::result::Result<BackupConfig, String> {
        parse_yaml(text)
    }

    /// The data files' suffix, as `utils.InitializePipeThroughParameters`
    /// (utils/compression.go) sets it from `compressed` and
    /// `compressiontype`: none when uncompressed (whatever the type says),
    /// `.gz` for gzip (and for an empty type, older backups), `.zst` for zstd.
    pub fn extension(&self) -> std::result::Result<&'static str, String> {
        if !self.compressed {
            return Ok("");
        }
        match self.compressiontype.as_str() {
            "" | "gzip" => Ok(".gz"),
            "zstd" => Ok(".zst"),
            other => Err(format!(
                "unknown compression type \"{}\"",
                other.escape_debug()
            )),
        }
    }

    /// The compression as a word for listings.
    pub fn compression(&self) -> &str {
        match self.extension() {
            Ok("") => "none",
            Ok(".zst") => "zstd",
            Ok(_) => "gzip",
            Err(_) => self.compressiontype.as_str(),
        }
    }

    /// Whether gpbackup recorded a success. Configs of gpbackup versions
    /// before the `status` field count as successful: gpbackup stored them
    /// only at the end of a run.
    pub fn succeeded(&self) -> bool {
        self.status.is_empty() || self.status == STATUS_SUCCESS
    }

    /// The earlier backups an incremental restore of `ts` reads from (the
    /// restore plan's other timestamps), in plan order.
    pub fn depends_on(&self, ts: &str) -> Vec<String> {
        self.restoreplan
            .iter()
            .flatten()
            .filter(|e| e.timestamp != ts)
            .map(|e| e.timestamp.clone())
            .collect()
    }

    /// How many objects gpbackup stores in the folder of backup `ts`, from
    /// the config alone: the config, metadata, TOC, report and plugin config
    /// (`backupMetadata` and `DoTeardown`, backup/backup.go), the statistics
    /// with `--with-stats`, and unless metadata-only, per segment one data
    /// file and one segment TOC with `--single-data-file`, else one data file
    /// per table of this backup's own restore-plan entry. None for a backup
    /// without a restore plan (older gpbackup: only its TOC says).
    pub fn named_objects(&self, ts: &str) -> Option<u64> {
        let mut n = 5 + u64::from(self.withstatistics);
        if self.metadataonly {
            return Some(n);
        }
        let segments = u64::from(self.segmentcount);
        if self.singledatafile {
            n += 2 * segments;
        } else {
            let plan = self.restoreplan.as_ref()?;
            let own = plan.iter().find(|e| e.timestamp == ts)?;
            n += segments * own.tablefqns.len() as u64;
        }
        Some(n)
    }
}

/// The part of gpbackup's coordinator TOC (`toc.TOC`) read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Toc {
    pub dataentries: Vec<TocDataEntry>,
}

/// `toc.CoordinatorDataEntry`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TocDataEntry {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    pub isreplicated: bool,
}

impl TocDataEntry {
    /// `utils.MakeFQN`: schema and name joined by a dot, as the restore
    /// plan lists tables.
    pub fn fqn(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A segment TOC (`toc.SegmentTOC`): each table's byte range in that
/// segment's single data file, in the uncompressed stream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SegmentToc {
    pub dataentries: BTreeMap<u32, ByteRange>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct ByteRange {
    pub startbyte: u64,
    pub endbyte: u64,
}

impl SegmentToc {
    /// The size of the uncompressed data file: the end of its last table.
    pub fn data_size(&self) -> u64 {
        self.dataentries
            .values()
            .map(|r| r.endbyte)
            .max()
            .unwrap_or(0)
    }
}

/// File names, as gpbackup's filepath/filepath.go makes them.
pub mod names {
    /// `GetBackupFilePath`: `gpbackup_<ts>_<suffix>` (suffixes from its
    /// `metadataFilenameMap`).
    pub fn file(ts: &str, suffix: &str) -> String {
        format!("gpbackup_{ts}_{suffix}")
    }
    pub const CONFIG: &str = "config.yaml";
    pub const METADATA: &str = "metadata.sql";
    pub const TOC: &str = "toc.yaml";
    pub const REPORT: &str = "report";
    pub const STATISTICS: &str = "statistics.sql";
    pub const PLUGIN_CONFIG: &str = "plugin_config.yaml";

    /// `GetSegmentTOCFilePath`: `gpbackup_<content>_<ts>_toc.yaml`.
    pub fn segment_toc(content: u32, ts: &str) -> String {
        format!("gpbackup_{content}_{ts}_toc.yaml")
    }

    /// `GetTableBackupFilePathForCopyCommand`: `gpbackup_<content>_<ts>`,
    /// then `_<oid>` unless single-data-file, then the compression suffix.
    pub fn data_file(content: u32, ts: &str, oid: Option<u32>, extension: &str) -> String {
        match oid {
            Some(oid) => format!("gpbackup_{content}_{ts}_{oid}{extension}"),
            None => format!("gpbackup_{content}_{ts}{extension}"),
        }
    }

    /// What a segment's file of backup `ts` is, by its name.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum SegmentFile {
        Data {
            content: u32,
            oid: Option<u32>,
            extension: &'static str,
        },
        Toc {
            content: u32,
        },
    }

    /// Reads a name made by [`segment_toc`] or [`data_file`].
    pub fn segment_file(name: &str, ts: &str) -> Option<SegmentFile> {
        let rest = name.strip_prefix("gpbackup_")?;
        let (content, rest) = rest.split_once('_')?;
        if content.is_empty() || !content.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let content: u32 = content.parse().ok()?;
        let rest = rest.strip_prefix(ts)?;
        if rest == "_toc.yaml" {
            return Some(SegmentFile::Toc { content });
        }
        let (rest, extension) = [".gz", ".zst"]
            .into_iter()
            .find_map(|e| rest.strip_suffix(e).map(|r| (r, e)))
            .unwrap_or((rest, ""));
        let oid = match rest {
            "" => None,
            r => Some(r.strip_prefix('_')?.parse().ok()?),
        };
        Some(SegmentFile::Data {
            content,
            oid,
            extension,
        })
    }
}

/// Parses one of gpbackup's YAML files into `T`, straight from the
/// parser's events: a TOC of 50,000 tables (7 MB) is read in 16 MiB, where
/// a parser that first loads every event of the document took 123 MiB.
/// Its limits are those of a manifest file's size (nesting stays limited,
/// as in the parser's defaults).
pub(super) fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &[u8],
) -> std::result::Result<T, String> {
    let most = usize::try_from(MAX_MANIFEST_BYTES).unwrap_or(usize::MAX);
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(most),
            max_events: most,
            max_nodes: most,
            max_total_scalar_bytes: most,
            max_documents: 1,
        },
    };
    serde_saphyr::from_slice_with_options(text, options).map_err(|e| e.to_string())
}

/// Reads a whole (small) object.
pub fn read_object(storage: &dyn Storage, path: &StoragePath) -> Result<Vec<u8>> {
    // Opened for a first read at 0, which on DD Boost also tells a small
    // object's size (a short first read is its end): no stat.
    let mut reader = storage
        .open(path, &OpenOptions::at(0))
        .map_err(|e| e.context(format!("cannot read {path} in {}", storage.describe())))?;
    let size = reader.size();
    if size > MAX_MANIFEST_BYTES {
        return Err(Error::invalid(format!(
            "{path} is {size} bytes, more than a gpbackup manifest file can be"
        )));
    }
    // The size the first read gave, as restores take it (a short read is
    // the end): no read at the end to learn it.
    crate::storage::read_to_end(reader.as_mut())
}

/// The config of backup `ts`: None when it has none (running, or stopped
/// before gpbackup's teardown); Some(Err) when it does not parse.
pub fn read_config(
    storage: &dyn Storage,
    ts: &Timestamp,
) -> Result<Option<std::result::Result<BackupConfig, String>>> {
    let path = ts
        .prefix()
        .child(&names::file(ts.as_str(), names::CONFIG))?;
    match read_object(storage, &path) {
        Ok(text) => Ok(Some(BackupConfig::parse(&text))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::names::*;
    use super::*;

    #[test]
    fn names_follow_gpbackup() {
        let ts = "20261202004029";
        assert_eq!(file(ts, CONFIG), "gpbackup_20261202004029_config.yaml");
        assert_eq!(segment_toc(1, ts), "gpbackup_1_20261202004029_toc.yaml");
        assert_eq!(data_file(0, ts, None, ""), "gpbackup_0_20261202004029");
        assert_eq!(
            data_file(12, ts, Some(16385), ".zst"),
            "gpbackup_12_20261202004029_16385.zst"
        );
        for (c, oid, ext) in [(0, None, ""), (3, Some(7), ".gz"), (1, None, ".zst")] {
            assert_eq!(
                segment_file(&data_file(c, ts, oid, ext), ts),
                Some(SegmentFile::Data {
                    content: c,
                    oid,
                    extension: ext
                })
            );
        }
        assert_eq!(
            segment_file(&segment_toc(5, ts), ts),
            Some(SegmentFile::Toc { content: 5 })
        );
        for other in [
            file(ts, CONFIG),
            file(ts, TOC),
            "gpbackup_x_20261202004029".into(),
            "gpbackup_0_20261202004030".into(),
            "gpbackup_0_20261202004029_abc".into(),
        ] {
            assert_eq!(segment_file(&other, ts), None, "{other}");
        }
    }

    #[test]
    fn extension_follows_compressed_then_type() {
        let c = |compressed, t: &str| BackupConfig {
            compressed,
            compressiontype: t.into(),
            ..Default::default()
        };
        assert_eq!(c(false, "gzip").extension(), Ok(""));
        assert_eq!(c(true, "").extension(), Ok(".gz"));
        assert_eq!(c(true, "gzip").extension(), Ok(".gz"));
        assert_eq!(c(true, "zstd").extension(), Ok(".zst"));
        assert!(c(true, "lz4").extension().is_err());
        assert_eq!(c(false, "zstd").compression(), "none");
    }

    #[test]
    fn legacy_and_failed_configs() {
        let c = BackupConfig::parse(b"segmentcount: 2\nstatus: Failure\n").unwrap();
        assert!(c.restoreplan.is_none() && !c.succeeded());
        let c = BackupConfig::parse(b"segmentcount: 2\nrestoreplan: []\n").unwrap();
        assert_eq!(c.restoreplan.as_ref().map(Vec::len), Some(0));
        assert!(c.succeeded(), "no status: older gpbackup");
        assert!(BackupConfig::parse(b"segmentcount: [").is_err());
    }
}
