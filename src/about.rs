//! What the plugin calls itself. Imports nothing, so any module may use it.

/// The plugin's name: the first word of `--version`, the key name gpbackup
/// uses for it in `.encrypt`, and the log file prefix.
pub const PLUGIN_NAME: &str = "gpbackup_ddboost_plugin";

/// The plugin API version gpbackup checks (at least 0.3.0; the test bench wants 0.4.0).
pub const API_VERSION: &str = "0.5.0";

/// This build's version, as `--version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
