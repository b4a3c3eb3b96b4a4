//! A shared or boxed storage is storage: every call goes to what it holds,
//! so that wrappers (the broker's lent connections, the lanes of a request)
//! need not forward each method themselves.

use std::sync::Arc;

use super::{
    CreateOptions, DeleteSummary, Finding, ObjectInfo, ObjectReader, ObjectWriter, OpenOptions,
    Replica, Storage, StoragePath,
};
use crate::error::Result;

macro_rules! forward_storage {
    ($holder:ident) => {
        impl<T: Storage + ?Sized> Storage for $holder<T> {
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn create_dir_all(&self, dir: &StoragePath) -> Result<()> {
                (**self).create_dir_all(dir)
            }
            fn create(
                &self,
                path: &StoragePath,
                opts: &CreateOptions,
            ) -> Result<Box<dyn ObjectWriter>> {
                (**self).create(path, opts)
            }
            fn open(
                &self,
                path: &StoragePath,
                opts: &OpenOptions,
            ) -> Result<Box<dyn ObjectReader>> {
                (**self).open(path, opts)
            }
            fn list(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
                (**self).list(dir)
            }
            fn list_all(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
                (**self).list_all(dir)
            }
            fn list_names(&self, dir: &StoragePath, hidden: bool) -> Result<Vec<String>> {
                (**self).list_names(dir, hidden)
            }
            fn delete_dir_all(&self, dir: &StoragePath) -> Result<DeleteSummary> {
                (**self).delete_dir_all(dir)
            }
            fn delete(&self, path: &StoragePath) -> Result<bool> {
                (**self).delete(path)
            }
            fn exists(&self, path: &StoragePath) -> Result<bool> {
                (**self).exists(path)
            }
            fn remove_dir_if_empty(&self, dir: &StoragePath) -> Result<bool> {
                (**self).remove_dir_if_empty(dir)
            }
            fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
                (**self).rename(from, to)
            }
            fn replica(&self) -> Option<&dyn Replica> {
                (**self).replica()
            }
            fn facts(&self, write: bool) -> Vec<Finding> {
                (**self).facts(write)
            }
        }
    };
}

forward_storage!(Arc);
forward_storage!(Box);
