//! Finding the backups below `directory` without listing their objects:
//! the plugin keeps each backup in `backups/<YYYYMMDD>/<timestamp>/`, so the
//! date folders and the timestamp folders in them name every backup (one
//! folder read per date, no stat, nothing per object).

use crate::error::Result;
use crate::protocol::keys::{Timestamp, BACKUPS_DIR};
use crate::storage::{Storage, StoragePath};

/// Every backup timestamp with a folder below `backups/`, sorted. Other
/// names (not 8-digit dates, not 14-digit timestamps of that date) are
/// skipped: they are no backup of gpbackup's.
pub fn find(storage: &dyn Storage) -> Result<Vec<Timestamp>> {
    let mut out = Vec::new();
    let backups = StoragePath::root().child(BACKUPS_DIR)?;
    let dates = storage.list_names(&backups, false).map_err(|e| {
        e.context(format!(
            "cannot list {BACKUPS_DIR} in {}",
            storage.describe()
        ))
    })?;
    for date in dates
        .iter()
        .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
    {
        let dir = backups.child(date)?;
        let names = storage
            .list_names(&dir, false)
            .map_err(|e| e.context(format!("cannot list {dir} in {}", storage.describe())))?;
        out.extend(
            names
                .iter()
                .filter(|n| n.starts_with(date.as_str()))
                .filter_map(|n| Timestamp::parse(n).ok()),
        );
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[test]
    fn finds_timestamp_folders_only() {
        let s = MemoryStorage::new();
        for p in [
            "backups/20250102/20250102010101/a",
            "backups/20250101/20250101120000/gpbackup_20250101120000_config.yaml",
            "backups/20250101/20250101120000/.x.checksum",
            "backups/20250101/2025010112/a",
            "backups/20250101/20250202120000/a",
            "backups/2025x101/20250101130000/a",
            "other/20250101/20250101140000/a",
        ] {
            let mut w = s
                .create(&StoragePath::parse(p).unwrap(), &Default::default())
                .unwrap();
            w.write(b"x").unwrap();
            w.commit().unwrap();
        }
        let found: Vec<String> = find(&s).unwrap().iter().map(|t| t.to_string()).collect();
        assert_eq!(found, ["20250101120000", "20250102010101"]);
        assert!(find(&MemoryStorage::new()).unwrap().is_empty());
    }
}
