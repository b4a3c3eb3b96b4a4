//! gpbackup's own manifest of a backup, and every object a restore of it
//! opens.
//!
//! gpbackup stores, through the plugin, `gpbackup_<ts>_config.yaml` (its
//! `history.BackupConfig`: segment count, single-data-file, compression,
//! data-only and metadata-only, the incremental restore plan, the status),
//! `gpbackup_<ts>_toc.yaml` (one data entry per table: schema, name, oid) and,
//! for single-data-file backups, `gpbackup_<content>_<ts>_toc.yaml` per
//! segment (each table's byte range in that segment's data file). From them
//! [`Manifest::read`] derives the objects gprestore opens, with the rules of
//! gpbackup's own source (greenplum-db/gpbackup, cited at each rule), and
//! compares them with one listing of each backup folder involved.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::protocol::keys::Timestamp;
use crate::storage::{ObjectInfo, Storage, StoragePath};

use super::files::{names, parse_yaml, read_object, BackupConfig, SegmentToc, Toc, TocDataEntry};

/// The backup's config (None when it has none or it does not parse), the
/// layout it gives (else the one its stored names show), and the problems
/// found on the way.
fn config_and_layout(
    storage: &dyn Storage,
    ts: &Timestamp,
    own: &BTreeSet<&str>,
) -> Result<(Option<BackupConfig>, Layout, Vec<Problem>)> {
    let ts_s = ts.as_str();
    let has = |suffix: &str| own.contains(names::file(ts_s, suffix).as_str());
    let mut problems = Vec::new();
    let problem = |problems: &mut Vec<Problem>, backup: &str, kind, text: String| {
        problems.push(Problem {
            backup: backup.to_string(),
            kind,
            text,
        })
    };

    let config = if has(names::CONFIG) {
        let path = ts.prefix().child(&names::file(ts_s, names::CONFIG))?;
        match BackupConfig::parse(&read_object(storage, &path)?) {
            Ok(c) => Some(c),
            Err(e) => {
                problem(
                    &mut problems,
                    ts_s,
                    ProblemKind::Unreadable,
                    format!("cannot parse {path}: {e}"),
                );
                None
            }
        }
    } else {
        problem(
            &mut problems,
            ts_s,
            ProblemKind::NoTeardown,
            format!(
                "no {}{}: gpbackup stores the config and the report only at its teardown, so this backup is still running or was stopped before it finished",
                names::file(ts_s, names::CONFIG),
                if has(names::REPORT) { "" } else { " and no report" },
            ),
        );
        None
    };
    if let Some(c) = config.as_ref().filter(|c| !c.succeeded()) {
        problem(
            &mut problems,
            ts_s,
            ProblemKind::NotSuccess,
            format!("gpbackup recorded status \"{}\"", c.status.escape_debug()),
        );
    }
    let layout = match &config {
        Some(c) => Layout {
            single_data_file: c.singledatafile,
            extension: c.extension().unwrap_or_else(|e| {
                problem(&mut problems, ts_s, ProblemKind::Unreadable, e);
                ""
            }),
            segments: c.segmentcount,
            metadata_only: c.metadataonly,
            statistics: c.withstatistics,
            inferred: false,
        },
        None => infer_layout(own, ts_s),
    };

    Ok((config, layout, problems))
}

/// How the backup's data is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub single_data_file: bool,
    pub extension: &'static str,
    pub segments: u32,
    pub metadata_only: bool,
    pub statistics: bool,
    /// Taken from the stored files' names, for want of a config.
    pub inferred: bool,
}

/// An object a restore opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Relative to `directory`.
    pub path: StoragePath,
    /// The backup whose folder holds it.
    pub backup: String,
    /// What it is, for MISSING lines.
    pub what: String,
    /// The exact size and the segment TOC that implies it (uncompressed
    /// single data files only).
    pub size: Option<(u64, String)>,
}

/// Why a backup is not whole, beyond single objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// No config (and report): gpbackup never reached its teardown.
    NoTeardown,
    /// The config's status is not Success.
    NotSuccess,
    /// A manifest file that cannot be parsed.
    Unreadable,
    /// Objects that cannot be named because a TOC is missing, or a table of
    /// the restore plan that its TOC does not have.
    Underivable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub backup: String,
    pub kind: ProblemKind,
    pub text: String,
}

/// A backup's manifest and what it implies.
#[derive(Debug)]
pub struct Manifest {
    pub ts: String,
    pub config: Option<BackupConfig>,
    pub layout: Layout,
    /// Every object a restore of this backup opens, earlier backups' included.
    pub expected: Vec<Expected>,
    /// Objects in this backup's folder that the manifest does not name.
    pub extra: Vec<ObjectInfo>,
    /// The earlier backups of the restore plan, in plan order.
    pub earlier: Vec<String>,
    pub problems: Vec<Problem>,
    /// Size of every object listed in the folders involved, by path.
    stored: BTreeMap<StoragePath, u64>,
}

impl Manifest {
    /// The manifest of backup `ts`, whose folder lists as `listing`; the
    /// folders of earlier backups in its restore plan are listed once each.
    /// None when the folder holds neither a config nor a TOC of `ts` (not a
    /// gpbackup backup, or one still in its data phase). A storage failure
    /// is an error; a manifest file that cannot be parsed is a problem.
    pub fn read(
        storage: &dyn Storage,
        ts: &Timestamp,
        listing: &[ObjectInfo],
    ) -> Result<Option<Manifest>> {
        let ts_s = ts.as_str();
        let folder = ts.prefix();
        let own: BTreeSet<&str> = listing
            .iter()
            .filter_map(|o| {
                let (dir, name) = o.path.folder_and_name();
                (dir == folder.as_str()).then_some(name)
            })
            .collect();
        let own_path = |suffix: &str| Ok(folder.child(&names::file(ts_s, suffix))?);
        let has = |suffix: &str| own.contains(names::file(ts_s, suffix).as_str());
        if !has(names::CONFIG) && !has(names::TOC) {
            return Ok(None);
        }
        let (config, layout, problems) = config_and_layout(storage, ts, &own)?;

        let mut m = Manifest {
            ts: ts_s.to_string(),
            config,
            layout,
            expected: Vec::new(),
            extra: Vec::new(),
            earlier: Vec::new(),
            problems,
            stored: listing.iter().map(|o| (o.path.clone(), o.size)).collect(),
        };
        // gprestore restores the config, the metadata and the report first,
        // and the statistics with --with-stats (`RecoverMetadataFilesUsingPlugin`,
        // restore/wrappers.go), then the TOC of every backup in the restore
        // plan, or only this one's when metadata-only.
        let mut own_files = Vec::new();
        if m.config.is_some() || has(names::REPORT) {
            own_files.push((names::CONFIG, "its config"));
            own_files.push((names::REPORT, "its report"));
        }
        own_files.push((names::METADATA, "its metadata"));
        if m.layout.statistics {
            own_files.push((names::STATISTICS, "its statistics"));
        }
        own_files.push((names::TOC, "its TOC"));
        for (suffix, what) in own_files {
            m.push(ts_s, &own_path(suffix)?, what.to_string(), None);
        }

        for (plan_ts, tables) in m.plan() {
            m.add_plan_entry(storage, &plan_ts, tables.as_ref())?;
        }

        m.extra = m.unnamed(listing, &own_path)?;
        Ok(Some(m))
    }

    /// Objects of this folder that gpbackup's manifest does not name (the
    /// plugin config is stored by gpbackup but opened by no restore).
    fn unnamed(
        &self,
        listing: &[ObjectInfo],
        own_path: &dyn Fn(&str) -> Result<StoragePath>,
    ) -> Result<Vec<ObjectInfo>> {
        let mut known: BTreeSet<StoragePath> = self
            .expected
            .iter()
            .filter(|e| e.backup == self.ts)
            .map(|e| e.path.clone())
            .collect();
        for suffix in [
            names::CONFIG,
            names::REPORT,
            names::PLUGIN_CONFIG,
            names::STATISTICS,
        ] {
            known.insert(own_path(suffix)?);
        }
        Ok(listing
            .iter()
            .filter(|o| !known.contains(&o.path))
            .cloned()
            .collect())
    }

    /// The restore plan as gprestore follows it: each backup's timestamp and
    /// the tables taken from it (None: every data entry of its TOC, gprestore's
    /// `SetRestorePlanForLegacyBackup` for configs without a plan, used here
    /// too for a backup without a config). Empty when metadata-only.
    fn plan(&self) -> Vec<(String, Option<BTreeSet<String>>)> {
        if self.layout.metadata_only {
            return Vec::new();
        }
        match self.config.as_ref().and_then(|c| c.restoreplan.as_ref()) {
            Some(plan) => plan
                .iter()
                .map(|e| {
                    (
                        e.timestamp.clone(),
                        Some(e.tablefqns.iter().cloned().collect()),
                    )
                })
                .collect(),
            None => vec![(self.ts.clone(), None)],
        }
    }

    /// The objects a restore opens for one restore-plan entry
    /// (`restoreData` and `restoreDataFromTimestamp`, restore/restore.go and
    /// restore/data.go). As gprestore does, the file names use this backup's
    /// settings (single data file, compression) for every backup of the plan.
    fn add_plan_entry(
        &mut self,
        storage: &dyn Storage,
        plan_ts: &str,
        tables: Option<&BTreeSet<String>>,
    ) -> Result<()> {
        let Ok(pts) = Timestamp::parse(plan_ts) else {
            self.problems.push(Problem {
                backup: self.ts.clone(),
                kind: ProblemKind::Unreadable,
                text: format!(
                    "the restore plan names \"{}\", not a backup timestamp",
                    plan_ts.escape_debug()
                ),
            });
            return Ok(());
        };
        let folder = pts.prefix();
        if plan_ts != self.ts {
            self.earlier.push(plan_ts.to_string());
            let listing = storage.list(folder).map_err(|e| {
                e.context(format!(
                    "cannot list the earlier backup {plan_ts} of the restore plan in {}",
                    storage.describe()
                ))
            })?;
            self.stored
                .extend(listing.into_iter().map(|o| (o.path, o.size)));
        }
        let in_folder = |name: String| folder.child(&name);
        let toc_path = in_folder(names::file(plan_ts, names::TOC))?;
        if plan_ts != self.ts {
            self.push(
                plan_ts,
                &toc_path,
                format!("the TOC of earlier backup {plan_ts}"),
                None,
            );
        }
        // Single-data-file restores fetch every segment's TOC
        // (`RestoreSegmentTOCs`, utils/plugin.go).
        let sdf = self.layout.single_data_file;
        if sdf {
            for c in 0..self.layout.segments {
                let p = in_folder(names::segment_toc(c, plan_ts))?;
                self.push(plan_ts, &p, format!("the TOC of segment {c}"), None);
            }
        }
        let Some(matching) = self.plan_tables(storage, plan_ts, &toc_path, tables)? else {
            return Ok(());
        };
        // No table from this backup: gprestore opens none of its data.
        if matching.is_empty() {
            return Ok(());
        }
        self.add_data_files(storage, plan_ts, folder, &matching)
    }

    /// The data entries of backup `plan_ts`'s TOC (at `toc_path`) that a
    /// restore takes (`tables`, None: all); None when they cannot be named,
    /// which is recorded as a problem.
    fn plan_tables(
        &mut self,
        storage: &dyn Storage,
        plan_ts: &str,
        toc_path: &StoragePath,
        tables: Option<&BTreeSet<String>>,
    ) -> Result<Option<Vec<TocDataEntry>>> {
        // The tables taken from it: the TOC's data entries the plan names
        // (`GetDataEntriesMatching`, toc/toc.go).
        if !self.stored.contains_key(toc_path) {
            let what = if plan_ts == self.ts {
                "its TOC is missing, so the table data it holds cannot be named".to_string()
            } else {
                format!("the TOC of earlier backup {plan_ts} is missing, so the table data a restore takes from it cannot be named")
            };
            self.underivable(plan_ts, what)?;
            return Ok(None);
        }
        let toc = match parse_yaml::<Toc>(&read_object(storage, toc_path)?) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(Problem {
                    backup: plan_ts.to_string(),
                    kind: ProblemKind::Unreadable,
                    text: format!("cannot parse {toc_path}: {e}"),
                });
                return Ok(None);
            }
        };
        let matching: Vec<TocDataEntry> = toc
            .dataentries
            .iter()
            .filter(|e| tables.is_none_or(|t| t.contains(&e.fqn())))
            .cloned()
            .collect();
        if let Some(tables) = tables {
            let in_toc: BTreeSet<String> = toc.dataentries.iter().map(|e| e.fqn()).collect();
            let absent: Vec<&String> = tables.iter().filter(|t| !in_toc.contains(*t)).collect();
            if !absent.is_empty() {
                let text = format!(
                    "{} table(s) of the restore plan have no data entry in the TOC of backup {plan_ts} (first: {}): a restore would skip their data",
                    absent.len(),
                    absent[0]
                );
                self.underivable(plan_ts, text)?;
            }
        }
        Ok(Some(matching))
    }

    /// The data files of backup `plan_ts` (in `folder`) a restore of the
    /// tables `matching` opens.
    fn add_data_files(
        &mut self,
        storage: &dyn Storage,
        plan_ts: &str,
        folder: &StoragePath,
        matching: &[TocDataEntry],
    ) -> Result<()> {
        let sdf = self.layout.single_data_file;
        let in_folder = |name: String| folder.child(&name);
        let ext = self.layout.extension;
        for c in 0..self.layout.segments {
            if sdf {
                let p = in_folder(names::data_file(c, plan_ts, None, ext))?;
                // Segment TOC byte ranges are those of the uncompressed
                // stream: only an uncompressed file's size is known.
                let size = if ext.is_empty() {
                    self.segment_data_size(
                        storage,
                        &in_folder(names::segment_toc(c, plan_ts))?,
                        plan_ts,
                    )?
                } else {
                    None
                };
                self.push(plan_ts, &p, format!("the data of segment {c}"), size);
            } else {
                // One file per table and segment, replicated tables too
                // (`COPY ... ON SEGMENT`, backup/data.go; a restore to a
                // cluster of the same size reads every segment's file).
                for e in matching {
                    let p = in_folder(names::data_file(c, plan_ts, Some(e.oid), ext))?;
                    self.push(
                        plan_ts,
                        &p,
                        format!("table {} on segment {c}", e.fqn()),
                        None,
                    );
                }
            }
        }
        Ok(())
    }

    fn push(
        &mut self,
        backup: &str,
        path: &StoragePath,
        what: String,
        size: Option<(u64, String)>,
    ) {
        self.expected.push(Expected {
            path: path.clone(),
            backup: backup.to_string(),
            what,
            size,
        });
    }

    fn underivable(&mut self, backup: &str, text: String) -> Result<()> {
        self.problems.push(Problem {
            backup: backup.to_string(),
            kind: ProblemKind::Underivable,
            text,
        });
        Ok(())
    }

    /// The size the segment TOC at `path` implies for its data file, when it
    /// is stored and parses.
    fn segment_data_size(
        &mut self,
        storage: &dyn Storage,
        path: &StoragePath,
        backup: &str,
    ) -> Result<Option<(u64, String)>> {
        if !self.stored.contains_key(path) {
            return Ok(None);
        }
        match parse_yaml::<SegmentToc>(&read_object(storage, path)?) {
            Ok(t) => Ok(Some((t.data_size(), path.file_name().to_string()))),
            Err(e) => {
                self.problems.push(Problem {
                    backup: backup.to_string(),
                    kind: ProblemKind::Unreadable,
                    text: format!("cannot parse {path}: {e}"),
                });
                Ok(None)
            }
        }
    }

    /// The listed size of `path`, if it is stored.
    pub fn stored_size(&self, path: &str) -> Option<u64> {
        self.stored.get(path).copied()
    }

    /// Every backup involved: the earlier ones of the plan, then this one.
    pub fn backups(&self) -> Vec<String> {
        let mut v = self.earlier.clone();
        v.push(self.ts.clone());
        v
    }
}

/// The layout a backup without a config shows by its stored files' names:
/// single-data-file when a segment TOC or an oid-less data file is there,
/// the segment count from the highest content id, the suffix of its data files.
fn infer_layout(own: &BTreeSet<&str>, ts: &str) -> Layout {
    let mut layout = Layout {
        single_data_file: false,
        extension: "",
        segments: 0,
        metadata_only: true,
        statistics: own.contains(names::file(ts, names::STATISTICS).as_str()),
        inferred: true,
    };
    for name in own {
        let Some(f) = names::segment_file(name, ts) else {
            continue;
        };
        layout.metadata_only = false;
        let content = match f {
            names::SegmentFile::Toc { content } => {
                layout.single_data_file = true;
                content
            }
            names::SegmentFile::Data {
                content,
                oid,
                extension,
            } => {
                layout.single_data_file |= oid.is_none();
                layout.extension = extension;
                content
            }
        };
        layout.segments = layout.segments.max(content + 1);
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(files: &[(&str, &str)]) -> (crate::storage::memory::MemoryStorage, Vec<ObjectInfo>) {
        let s = crate::storage::memory::MemoryStorage::new();
        for (p, text) in files {
            let mut w = s
                .create(&StoragePath::parse(p).unwrap(), &Default::default())
                .unwrap();
            w.write(text.as_bytes()).unwrap();
            w.commit().unwrap();
        }
        let listing = s
            .list(&StoragePath::parse("backups/20250101/20250101120000").unwrap())
            .unwrap();
        (s, listing)
    }

    const TOC_TWO_TABLES: &str = "dataentries:\n- schema: public\n  name: a\n  oid: 100\n  isreplicated: true\n- schema: s\n  name: b\n  oid: 200\n";

    fn expected_names(m: &Manifest) -> Vec<String> {
        m.expected
            .iter()
            .map(|e| e.path.file_name().to_string())
            .collect()
    }

    #[test]
    fn legacy_config_takes_every_toc_entry_and_zstd_suffixes() {
        let d = "backups/20250101/20250101120000";
        let (s, listing) = store(&[
            (
                &format!("{d}/gpbackup_20250101120000_config.yaml"),
                "compressed: true\ncompressiontype: zstd\nsegmentcount: 2\nstatus: Success\n",
            ),
            (
                &format!("{d}/gpbackup_20250101120000_toc.yaml"),
                TOC_TWO_TABLES,
            ),
            (&format!("{d}/gpbackup_20250101120000_unrelated"), "x"),
        ]);
        let ts = Timestamp::parse("20250101120000").unwrap();
        let m = Manifest::read(&s, &ts, &listing).unwrap().unwrap();
        assert_eq!(
            expected_names(&m),
            [
                "gpbackup_20250101120000_config.yaml",
                "gpbackup_20250101120000_report",
                "gpbackup_20250101120000_metadata.sql",
                "gpbackup_20250101120000_toc.yaml",
                // The replicated table too, on every segment.
                "gpbackup_0_20250101120000_100.zst",
                "gpbackup_0_20250101120000_200.zst",
                "gpbackup_1_20250101120000_100.zst",
                "gpbackup_1_20250101120000_200.zst",
            ]
        );
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(m.extra.len(), 1);
        assert!(m.earlier.is_empty());
    }

    #[test]
    fn compressed_single_data_file_has_no_known_size_and_plan_gaps_are_problems() {
        let d = "backups/20250101/20250101120000";
        let (s, listing) = store(&[
            (
                &format!("{d}/gpbackup_20250101120000_config.yaml"),
                "compressed: true\nsegmentcount: 1\nsingledatafile: true\nstatus: In Progress\nrestoreplan:\n- timestamp: \"20250101120000\"\n  tablefqns: [public.a, public.gone]\n",
            ),
            (&format!("{d}/gpbackup_20250101120000_toc.yaml"), TOC_TWO_TABLES),
            (&format!("{d}/gpbackup_0_20250101120000_toc.yaml"), "dataentries:\n  100: {startbyte: 0, endbyte: 7}\n"),
        ]);
        let ts = Timestamp::parse("20250101120000").unwrap();
        let m = Manifest::read(&s, &ts, &listing).unwrap().unwrap();
        let data = m
            .expected
            .iter()
            .find(|e| e.path.ends_with("gpbackup_0_20250101120000.gz"))
            .unwrap();
        assert_eq!(
            data.size, None,
            "byte ranges are of the uncompressed stream"
        );
        let kinds: Vec<ProblemKind> = m.problems.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [ProblemKind::NotSuccess, ProblemKind::Underivable]);
        assert!(
            m.problems[1].text.contains("public.gone"),
            "{:?}",
            m.problems
        );
    }

    #[test]
    fn no_config_infers_the_layout_from_stored_names() {
        let d = "backups/20250101/20250101120000";
        let (s, listing) = store(&[
            (
                &format!("{d}/gpbackup_20250101120000_toc.yaml"),
                TOC_TWO_TABLES,
            ),
            (&format!("{d}/gpbackup_0_20250101120000_100.gz"), "x"),
            (&format!("{d}/gpbackup_2_20250101120000_200.gz"), "x"),
        ]);
        let ts = Timestamp::parse("20250101120000").unwrap();
        let m = Manifest::read(&s, &ts, &listing).unwrap().unwrap();
        assert!(m.layout.inferred && !m.layout.single_data_file);
        assert_eq!((m.layout.segments, m.layout.extension), (3, ".gz"));
        assert_eq!(m.problems[0].kind, ProblemKind::NoTeardown);
        assert_eq!(
            m.expected.len(),
            2 + 6,
            "metadata, TOC, 2 tables x 3 segments"
        );
        // Neither config nor TOC: no manifest.
        let (s, listing) = store(&[(&format!("{d}/gpbackup_0_20250101120000"), "x")]);
        assert!(Manifest::read(&s, &ts, &listing).unwrap().is_none());
    }
}
