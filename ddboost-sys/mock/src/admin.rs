//! Creating systems and users (used by the `ddboost-mock` CLI and by tests).

use crate::error::{DdError, DdResult};
use crate::util::{hex, now_nanos};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub user: String,
    pub salt: String,
    /// hex SHA-256 of salt bytes followed by the password.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SystemConfig {
    pub users: Vec<User>,
}

fn hash(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(password.as_bytes());
    hex(&h.finalize())
}

/// Checks a host name or storage-unit name: one non-empty path component.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() < crate::ffi::DDP_MAX_NAME_LEN
        && !name.contains('/')
        && !name.contains('\0')
}

pub fn system_dir(root: &Path, host: &str) -> DdResult<PathBuf> {
    if !valid_name(host) {
        return Err(DdError::CONNECT);
    }
    Ok(root.join(host))
}

pub fn load_config(sysdir: &Path) -> DdResult<SystemConfig> {
    let s = fs::read_to_string(sysdir.join("system.json"))?;
    serde_json::from_str(&s).map_err(|_| DdError::IO)
}

/// Creates (or updates) a system: adds or replaces the user, creates the storage unit.
/// Idempotent.
pub fn create_system(
    root: &Path,
    host: &str,
    user: &str,
    password: &str,
    su: Option<&str>,
) -> DdResult<()> {
    let dir = system_dir(root, host).map_err(|_| DdError::INVALID)?;
    fs::create_dir_all(dir.join("su"))?;
    let mut cfg = load_config(&dir).unwrap_or_default();
    let salt = hex(&Sha256::digest(format!("{}:{}:{user}", now_nanos(), std::process::id()))[..16]);
    cfg.users.retain(|u| u.user != user);
    cfg.users.push(User {
        user: user.to_string(),
        sha256: hash(&salt, password),
        salt,
    });
    let tmp = dir.join(format!(".system.json.{}", std::process::id()));
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(&cfg).map_err(|_| DdError::IO)?,
    )?;
    fs::rename(&tmp, dir.join("system.json"))?;
    for d in ["store/containers", "store/index", "tmp", "streams"] {
        fs::create_dir_all(dir.join(d))?;
    }
    if let Some(su) = su {
        if !valid_name(su) {
            return Err(DdError::INVALID);
        }
        fs::create_dir_all(dir.join("su").join(su))?;
    }
    Ok(())
}

/// Verifies a user's password on a system.
pub fn authenticate(sysdir: &Path, user: &str, password: &str) -> DdResult<()> {
    let cfg = load_config(sysdir).map_err(|_| DdError::CONNECT)?;
    match cfg.users.iter().find(|u| u.user == user) {
        Some(u) if hash(&u.salt, password) == u.sha256 => Ok(()),
        _ => Err(DdError::AUTH),
    }
}
