//! The local backend's options: `directory` (shared), `fsync`, `file_mode`.

use std::path::PathBuf;

use crate::config::options::Options;
use crate::config::DIRECTORY;
use crate::error::Result;
use crate::storage::{timed, BackendConfig, Finding, Remote, Storage};

// The options only this backend reads.
crate::declare_options! { OPTIONS:
    FSYNC = on_off("fsync", true);
    FILE_MODE = text("file_mode", "0600");
}

/// `backend: local`: a mounted filesystem.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Absolute base directory; backups go under `<directory>/backups/`.
    pub directory: PathBuf,
    /// fsync every object and its directory before reporting success.
    pub fsync: bool,
    /// Permissions of the files the backend creates (option `file_mode`);
    /// folders get [`dir_mode_for`] of it.
    pub file_mode: u32,
}

/// The default of option `file_mode`: owner only.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// The folder mode that goes with a file mode: each read bit gains its
/// execute bit (0600 -> 0700, 0640 -> 0750).
pub fn dir_mode_for(file_mode: u32) -> u32 {
    file_mode | ((file_mode & 0o444) >> 2)
}

impl BackendConfig for LocalConfig {
    fn open(&self, _remote: Remote) -> Result<Box<dyn Storage>> {
        Ok(Box::new(super::LocalStorage::new(self)?))
    }

    fn check_open(&self, out: &mut dyn FnMut(Finding)) -> Option<Box<dyn Storage>> {
        let opened = timed(|| super::LocalStorage::new(self));
        let detail = |_: &super::LocalStorage| {
            format!(
                "{} is a folder (the mount point, or a folder on it)",
                self.directory.display()
            )
        };
        let storage = Finding::step(out, "directory", opened, detail).ok()?;
        Some(Box::new(storage))
    }

    #[cfg(any(test, feature = "test-support"))]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Option `file_mode`: an octal mode giving the owner read and write and the
/// group at most read and write; nothing for others, no execute or special bits.
fn file_mode(opts: &mut Options) -> u32 {
    let v = opts.text(&FILE_MODE);
    let digits = v.strip_prefix("0o").unwrap_or(v);
    let mode = if (3..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        u32::from_str_radix(digits, 8).ok()
    } else {
        None
    };
    match mode {
        Some(m) if m & !0o660 == 0 && m & 0o600 == 0o600 => m,
        _ => {
            opts.problem(format!(
                "option \"file_mode\" must be an octal mode that gives the owner read and write and the group at most read and write, such as \"0600\" or \"0640\" (got \"{v}\")"
            ));
            DEFAULT_FILE_MODE
        }
    }
}

/// Checks the local backend's options.
pub fn parse(opts: &mut Options) -> Option<Box<dyn BackendConfig>> {
    let fsync = opts.on_off(&FSYNC);
    let file_mode = file_mode(opts);
    let dir = opts.required(&DIRECTORY)?;
    let path = PathBuf::from(&dir);
    if !path.is_absolute() {
        opts.problem(format!(
            "option \"directory\" must be an absolute path with backend local (got \"{dir}\")"
        ));
        return None;
    }
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        opts.problem(format!(
            "option \"directory\" must not contain \"..\" (got \"{dir}\")"
        ));
        return None;
    }
    Some(Box::new(LocalConfig {
        directory: path,
        fsync,
        file_mode,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::PluginConfig;
    use std::path::Path;

    fn local(text: &str) -> crate::error::Result<LocalConfig> {
        PluginConfig::parse(text, Path::new("/tmp/cfg.yaml")).map(|c| {
            c.backend
                .as_any()
                .downcast_ref::<LocalConfig>()
                .expect("local backend")
                .clone()
        })
    }

    #[test]
    fn file_mode_values() {
        let mode = |v: &str| {
            local(&format!("options:\n  backend: local\n  directory: /a\n{v}")).map(|l| l.file_mode)
        };
        assert_eq!(mode("").unwrap(), 0o600);
        for (v, m) in [("0600", 0o600), ("\"0640\"", 0o640), ("660", 0o660)] {
            assert_eq!(mode(&format!("  file_mode: {v}\n")).unwrap(), m, "{v}");
        }
        for v in [
            "0644", "0700", "0400", "4600", "0o", "640x", "rw", "06400", "-600",
        ] {
            let e = mode(&format!("  file_mode: \"{v}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("\"file_mode\""), "{v}: {e}");
        }
        assert_eq!(dir_mode_for(0o600), 0o700);
        assert_eq!(dir_mode_for(0o640), 0o750);
        assert_eq!(dir_mode_for(0o660), 0o770);
    }

    #[test]
    fn directory_must_be_absolute() {
        assert_eq!(
            local("options:\n  backend: local\n  directory: \"/backup\"\n")
                .unwrap()
                .directory,
            PathBuf::from("/backup")
        );
        let e = local("options:\n  backend: local\n  directory: rel/x\n").unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }
}
