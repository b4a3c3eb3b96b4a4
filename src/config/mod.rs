//! The plugin config file.
//!
//! gpbackup hands the plugin a re-marshalled copy of the user's file with
//! injected keys (`pgport`, `backup_plugin_version`, and the encryption key
//! under the plugin's own name), while gpbackup_manager, gpbackman and the
//! plugin test bench pass hand-written files. Parsing is therefore lenient:
//! any scalar is taken as its raw text (`on`, `"on"`, `10` and `"10"` all
//! work), unknown keys are warnings, and every problem is reported at once,
//! each naming its key.
//!
//! Reading is three steps: `yaml` turns the text into a flat option map;
//! the common options and the backend's own options are checked through
//! `options::Options`, each backend's by its schema
//! (`storage::<backend>::config`); then secrets that need I/O (encrypted
//! passwords and their keys) are resolved. Only the first and last step do
//! any I/O. The config assembled from these steps, and the registry of
//! backends it picks a schema from, are `crate::backends`, above both this
//! module and `storage`.

pub mod options;
pub mod secret;
pub mod yaml;

use std::path::PathBuf;

pub use secret::Secret;

/// The per-host connection broker's settings (options `broker`,
/// `broker_idle_seconds`, `broker_connections`), for backends whose logins
/// are worth sharing between processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerSettings {
    /// How long the broker waits for a request before it stops.
    pub idle: std::time::Duration,
    /// How many connections it holds at most.
    pub connections: usize,
}

/// Where the key of an encrypted password may come from.
#[derive(Debug, Clone, Default)]
pub struct KeySources {
    /// The key gpbackup injects as option `gpbackup_ddboost_plugin`.
    pub injected: Option<Secret>,
    /// Coordinator data directories whose `.encrypt` may hold it.
    pub data_dirs: Vec<PathBuf>,
}

crate::declare_options! { COMMON_OPTIONS:
    /// The backend: a name in `backends::BACKENDS`.
    BACKEND = text("backend", "ddboost");
    /// Where backups go; each backend checks it its own way.
    DIRECTORY = required("directory");
    LOGGER_VERBOSITY = text("logger_verbosity", "info");
    /// Read by gpbackup_helper, not by the plugin: only checked.
    RESTORE_SUBSET = on_off("restore_subset", true);
    /// Reads in flight in a restore (`data::stream` keeps the same bounds).
    READ_AHEAD = number("read_ahead", 8, 1, 32);
    /// A node_exporter textfile-collector folder the cleanup hooks write
    /// their metrics into (empty: none).
    METRICS_TEXTFILE_DIR = text("metrics_textfile_dir", "");
}

// Options gpbackup and gprestore inject into the per-host copy.
crate::declare_options! { INJECTED_OPTIONS:
    PGPORT = injected("pgport");
    BACKUP_PLUGIN_VERSION = injected("backup_plugin_version");
    /// The encryption key, under the plugin's own name.
    ENCRYPTION_KEY = injected(crate::about::PLUGIN_NAME).secret();
}
