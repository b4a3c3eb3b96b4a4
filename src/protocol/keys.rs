//! Mapping from the local paths gpbackup passes to object keys.
//!
//! An object's key is `backups/<YYYYMMDD>/<timestamp>/<file name>` below the
//! configured directory, taken from the last three components of the path.
//! Everything before them (segment data directories, which differ between
//! hosts and in resize restores) is ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::path::{check_component, is_dots, PathError, StoragePath};

/// Top-level folder below the configured directory.
pub const BACKUPS_DIR: &str = "backups";

/// A backup timestamp: 14 ASCII digits (not checked as a real date), and
/// the folder of its backup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(String, StoragePath);

impl Timestamp {
    pub fn parse(s: &str) -> Result<Timestamp> {
        Timestamp::new(s).ok_or_else(|| {
            Error::invalid(format!(
                "invalid backup timestamp \"{}\": expected 14 digits YYYYMMDDHHMMSS",
                s.escape_debug()
            ))
        })
    }

    /// The timestamp `s`, when it is 14 digits.
    fn new(s: &str) -> Option<Timestamp> {
        if !is_digits(s, 14) {
            return None;
        }
        let prefix = StoragePath::parse(&format!("{BACKUPS_DIR}/{}/{s}", &s[..8])).ok()?;
        Some(Timestamp(s.to_string(), prefix))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The date directory: the first 8 digits.
    pub fn date(&self) -> &str {
        &self.0[..8]
    }
    /// The folder that holds every object of this backup, relative to the base directory.
    pub fn prefix(&self) -> &StoragePath {
        &self.1
    }
}

impl TryFrom<String> for Timestamp {
    type Error = Error;
    fn try_from(s: String) -> Result<Timestamp> {
        Timestamp::parse(&s)
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object: its backup timestamp and file name, and its path.
/// Sent (to the connection broker) as its path, and read back checked as
/// a path from gpbackup is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey {
    pub timestamp: Timestamp,
    pub name: String,
    path: StoragePath,
}

impl ObjectKey {
    /// The key for a local path such as
    /// `/data/gpseg0/backups/20250101/20250101120000/gpbackup_0_20250101120000`.
    pub fn from_path(path: &str) -> Result<ObjectKey> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "cannot map path \"{}\" to a backup object: {why}",
                path.escape_debug()
            ))
        };
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        if trimmed.len() != path.len() {
            return Err(bad("it ends with '/', a file name is needed"));
        }
        let parts: Vec<&str> = trimmed.rsplitn(4, '/').collect();
        let name = parts[0];
        validate_name(name).map_err(|why| bad(&why))?;
        // A "." or ".." among the components the key is built from would be
        // normalised away by the storage and land on another object.
        if let Some(dots) = parts.iter().take(3).find_map(|p| is_dots(p)) {
            return Err(bad(&format!(
                "it contains a \"{dots}\" component; give the path as gpbackup does, without \".\" or \"..\""
            )));
        }
        if parts.len() >= 3 && is_digits(parts[2], 8) && is_digits(parts[1], 14) {
            let (date, ts) = (parts[2], parts[1]);
            if !ts.starts_with(date) {
                return Err(bad(&format!(
                    "date directory {date} does not match timestamp {ts}"
                )));
            }
            let timestamp = Timestamp::new(ts).ok_or_else(|| bad("invalid timestamp"))?;
            return ObjectKey::new(timestamp, name);
        }
        // A report stored under a custom path (gpbackman --plugin-report-file-path):
        // take the timestamp from the gpbackup file name itself.
        if let Some(ts) = timestamp_from_name(name) {
            return ObjectKey::new(ts, name);
        }
        Err(bad(
            "expected .../<YYYYMMDD>/<YYYYMMDDHHMMSS>/<file name> or a gpbackup_<timestamp>_* file name",
        ))
    }

    /// The object `name` (a checked name) of backup `timestamp`.
    fn new(timestamp: Timestamp, name: &str) -> Result<ObjectKey> {
        let path = timestamp.prefix().child(name)?;
        Ok(ObjectKey {
            timestamp,
            name: name.to_string(),
            path,
        })
    }

    /// Path relative to the base directory.
    pub fn relative(&self) -> String {
        self.path.to_string()
    }

    /// The object's path in the storage.
    pub fn path(&self) -> &StoragePath {
        &self.path
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = Error;
    fn try_from(s: String) -> Result<ObjectKey> {
        ObjectKey::from_path(&s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> String {
        k.relative()
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.relative())
    }
}

/// The backup folder named by a hook's local backup directory
/// (`.../<YYYYMMDD>/<timestamp>`), if it has that shape.
pub fn timestamp_of_dir(dir: &str) -> Option<Timestamp> {
    let trimmed = dir.trim_end_matches('/');
    let mut it = trimmed.rsplit('/');
    let ts = it.next()?;
    let date = it.next()?;
    if is_digits(date, 8) && ts.starts_with(date) {
        Timestamp::new(ts)
    } else {
        None
    }
}

/// A file name the plugin accepts as an object name.
///
/// Names starting with '.' are reserved for the plugin's temporaries and
/// checksum records; gpbackup never produces them.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    match check_component(name) {
        Err(PathError::EmptyComponent) => return Err("the file name is empty".into()),
        Err(PathError::Dots(d)) => return Err(format!("\"{d}\" is not a file name")),
        Err(_) if !name.starts_with('.') => return Err("the file name contains a separator".into()),
        _ => {}
    }
    if name.starts_with('.') {
        return Err("file names starting with '.' are reserved".into());
    }
    if name.len() > 200 {
        return Err("the file name is longer than 200 bytes".into());
    }
    Ok(())
}

fn timestamp_from_name(name: &str) -> Option<Timestamp> {
    let rest = name.strip_prefix("gpbackup_")?;
    rest.split('_')
        .take(2)
        .map(|p| p.get(..14).unwrap_or(p))
        .find_map(Timestamp::new)
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn maps_last_three_components() {
        let k = ObjectKey::from_path(
            "/data/gpseg0/backups/20250101/20250101120000/gpbackup_0_20250101120000",
        )
        .unwrap();
        assert_eq!(
            k.relative(),
            "backups/20250101/20250101120000/gpbackup_0_20250101120000"
        );
        let k2 = ObjectKey::from_path(
            "/other/gpseg3/backups/20250101/20250101120000/gpbackup_0_20250101120000",
        )
        .unwrap();
        assert_eq!(k, k2);
    }

    #[test]
    fn bench_style_random_timestamps_are_accepted() {
        let k = ObjectKey::from_path(
            "/tmp/testseg/backups/99998911/99998911234567/testdata_99998911234567.txt",
        )
        .unwrap();
        assert_eq!(k.timestamp.date(), "99998911");
    }

    #[test]
    fn report_under_custom_path() {
        let k =
            ObjectKey::from_path("/home/gpadmin/reports/gpbackup_20250101120000_report").unwrap();
        assert_eq!(
            k.relative(),
            "backups/20250101/20250101120000/gpbackup_20250101120000_report"
        );
        let k = ObjectKey::from_path("/x/gpbackup_3_20250101120000_toc.yaml").unwrap();
        assert_eq!(k.timestamp.as_str(), "20250101120000");
    }

    #[test]
    fn bad_paths() {
        for p in [
            "",
            "/a/b/c/",
            "/x/20250101/20250101120000/..",
            "/x/20250101/20250101120000/.",
            "/x/20250101/20250101120000/.hidden",
            "/x/2025010/20250101120000/f",
            "/x/20250101/2025010112000a/f",
            "/x/20250102/20250101120000/f",
            "relative_name",
            "/x/backups/20250101/20250101120000/../gpbackup_0_20250101120000",
            "/x/backups/../20250101120000/gpbackup_0_20250101120000",
            "/x/backups/20250101/./gpbackup_0_20250101120000",
            "/x/./../gpbackup_20250101120000_report",
        ] {
            assert!(ObjectKey::from_path(p).is_err(), "{p:?} accepted");
        }
    }

    #[test]
    fn timestamps() {
        assert!(Timestamp::parse("20250101120000").is_ok());
        for t in [
            "2025010112000",
            "202501011200000",
            "2025-01-01",
            "",
            "abcdefghijklmn",
            "\"20250101120000\"",
        ] {
            assert!(Timestamp::parse(t).is_err(), "{t:?}");
        }
    }

    proptest! {
        #[test]
        fn any_valid_shape_roundtrips(date in "[0-9]{8}", time in "[0-9]{6}", name in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", pre in "(/[a-z0-9]{1,8}){0,4}") {
            let ts = format!("{date}{time}");
            let path = format!("{pre}/{date}/{ts}/{name}");
            let k = ObjectKey::from_path(&path).unwrap();
            prop_assert_eq!(k.relative(), format!("backups/{date}/{ts}/{name}"));
        }

        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = ObjectKey::from_path(&s);
            let _ = Timestamp::parse(&s);
            let _ = timestamp_of_dir(&s);
        }
    }
}
