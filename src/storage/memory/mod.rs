//! An in-memory backend: the smallest complete `Storage`, used by the
//! storage suite and as the example of what a backend provides. Objects
//! live as long as the value; nothing is shared between processes, so it is
//! not offered as option `backend` (a backend that is would add its schema
//! beside it and one line to `backends::BACKENDS`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    temp_name, ClosedObject, CreateOptions, DeleteSummary, ObjectInfo, ObjectReader, ObjectWriter,
    OpenOptions, Storage, StoragePath,
};
use crate::error::{Error, Result};

type Files = Arc<Mutex<BTreeMap<StoragePath, Arc<Vec<u8>>>>>;

/// Files by path; folders exist implicitly while they hold a file, or
/// explicitly once created.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    files: Files,
    dirs: Arc<Mutex<Vec<StoragePath>>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<StoragePath, Arc<Vec<u8>>>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dirs(&self) -> MutexGuard<'_, Vec<StoragePath>> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const BLOCK: usize = 64 << 10;

impl Storage for MemoryStorage {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn create_dir_all(&self, dir: &StoragePath) -> Result<()> {
        let mut dirs = self.dirs();
        let mut path = StoragePath::root();
        for part in dir.components() {
            path = path.child(part)?;
            if !dirs.contains(&path) {
                dirs.push(path.clone());
            }
        }
        Ok(())
    }

    fn create(&self, path: &StoragePath, _: &CreateOptions) -> Result<Box<dyn ObjectWriter>> {
        self.create_dir_all(&path.parent().unwrap_or_default())?;
        let temp = path.sibling(&temp_name(path.file_name()))?;
        self.files().insert(temp.clone(), Arc::new(Vec::new()));
        Ok(Box::new(MemoryWriter {
            files: self.files.clone(),
            temp,
            target: path.clone(),
            data: Vec::new(),
            committed: false,
        }))
    }

    fn open(&self, path: &StoragePath, _: &OpenOptions) -> Result<Box<dyn ObjectReader>> {
        let data = self.files().get(path).cloned();
        let data = data.ok_or_else(|| Error::not_found(format!("{path} not found in memory")))?;
        Ok(Box::new(MemoryReader { data }))
    }

    fn list(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        let all = self.list_all(dir)?;
        Ok(all
            .into_iter()
            .filter(|o| !o.path.components().any(|c| c.starts_with('.')))
            .collect())
    }

    fn list_all(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .files()
            .iter()
            .filter(|(p, _)| p.is_within(dir))
            .map(|(p, d)| ObjectInfo {
                path: p.clone(),
                size: d.len() as u64,
            })
            .collect())
    }

    fn delete_dir_all(&self, dir: &StoragePath) -> Result<DeleteSummary> {
        let mut files = self.files();
        let before = files.len();
        files.retain(|p, _| !p.is_within(dir));
        let mut dirs = self.dirs();
        let dirs_before = dirs.len();
        dirs.retain(|d| !d.is_within(dir));
        Ok(DeleteSummary {
            files: (before - files.len()) as u64,
            dirs: (dirs_before - dirs.len()) as u64,
        })
    }

    fn delete(&self, path: &StoragePath) -> Result<bool> {
        Ok(self.files().remove(path).is_some())
    }

    fn exists(&self, path: &StoragePath) -> Result<bool> {
        Ok(self.files().contains_key(path) || self.dirs().contains(path))
    }

    fn remove_dir_if_empty(&self, dir: &StoragePath) -> Result<bool> {
        if self.files().keys().any(|p| p.is_within(dir)) {
            return Ok(false);
        }
        let mut dirs = self.dirs();
        if dirs.iter().any(|d| d != dir && d.is_within(dir)) {
            return Ok(false);
        }
        let before = dirs.len();
        dirs.retain(|d| d != dir);
        Ok(dirs.len() < before)
    }

    fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        let mut files = self.files();
        let data = files
            .remove(from)
            .ok_or_else(|| Error::not_found(format!("{from} not found in memory")))?;
        files.insert(to.clone(), data);
        Ok(())
    }
}

struct MemoryWriter {
    files: Files,
    temp: StoragePath,
    target: StoragePath,
    data: Vec<u8>,
    committed: bool,
}

impl ObjectWriter for MemoryWriter {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn close(mut self: Box<Self>) -> Result<Box<dyn ClosedObject>> {
        self.committed = true;
        Ok(Box::new(MemoryClosed {
            files: self.files.clone(),
            temp: self.temp.clone(),
            target: self.target.clone(),
            data: std::mem::take(&mut self.data),
            renamed: false,
        }))
    }
}

struct MemoryClosed {
    files: Files,
    temp: StoragePath,
    target: StoragePath,
    data: Vec<u8>,
    renamed: bool,
}

impl ClosedObject for MemoryClosed {
    fn temp(&self) -> &StoragePath {
        &self.temp
    }

    fn rename(&mut self) -> Result<()> {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.remove(&self.temp);
        files.insert(
            self.target.clone(),
            Arc::new(std::mem::take(&mut self.data)),
        );
        self.renamed = true;
        Ok(())
    }

    fn renamed(&mut self) -> Result<bool> {
        Ok(self.renamed)
    }
}

impl Drop for MemoryClosed {
    fn drop(&mut self) {
        if !self.renamed {
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            files.remove(&self.temp);
        }
    }
}

impl Drop for MemoryWriter {
    fn drop(&mut self) {
        if !self.committed {
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            files.remove(&self.temp);
        }
    }
}

struct MemoryReader {
    data: Arc<Vec<u8>>,
}

impl ObjectReader for MemoryReader {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let start = (offset as usize).min(self.data.len());
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }
}
