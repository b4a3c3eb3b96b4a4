//! The backends and the plugin config assembled from them.
//!
//! [`BACKENDS`] is the registry: each backend's name (option `backend`), the
//! options only it reads, and its schema (`storage::<backend>::config`).
//! [`PluginConfig`] is a config file checked against the common options
//! (`config`) and the chosen backend's schema, and [`open`] opens the storage
//! it names. This sits above both `config` and `storage`, so that neither
//! needs the other's registry.

use std::path::{Path, PathBuf};

use crate::config::options::{Opt, Options};
use crate::config::{
    yaml, KeySources, Secret, BACKEND, COMMON_OPTIONS, ENCRYPTION_KEY, INJECTED_OPTIONS,
    LOGGER_VERBOSITY, METRICS_TEXTFILE_DIR, READ_AHEAD, RESTORE_SUBSET,
};
use crate::error::{Error, Result};
use crate::process::logging::Verbosity;
use crate::storage::{ddboost, local, BackendConfig, Remote, Storage};

/// A backend: its name (option `backend`), the options only it reads, and
/// its schema, which checks them. Both config validation and [`open`] go
/// through this table; a new backend is its own folder plus one line here.
pub struct Backend {
    pub name: &'static str,
    pub options: &'static [Opt],
    /// Checks the backend's options (no I/O), recording every problem.
    pub parse: fn(&mut Options) -> Option<Box<dyn BackendConfig>>,
}

impl Backend {
    pub const fn new(
        name: &'static str,
        options: &'static [Opt],
        parse: fn(&mut Options) -> Option<Box<dyn BackendConfig>>,
    ) -> Backend {
        Backend {
            name,
            options,
            parse,
        }
    }
}

/// Every backend, one line each.
pub const BACKENDS: &[Backend] = &[
    Backend::new("ddboost", ddboost::config::OPTIONS, ddboost::config::parse),
    Backend::new("local", local::config::OPTIONS, local::config::parse),
];

/// The parsed plugin config.
#[derive(Debug)]
pub struct PluginConfig {
    pub path: PathBuf,
    /// The backend's own settings (its schema is beside the backend).
    pub backend: Box<dyn BackendConfig>,
    pub verbosity: Verbosity,
    /// Reads in flight in a restore (option `read_ahead`).
    pub read_ahead: usize,
    /// The node_exporter textfile folder for metrics (option
    /// `metrics_textfile_dir`), if any.
    pub metrics_dir: Option<PathBuf>,
    /// Non-fatal findings (unknown keys, ignored options) for the log.
    pub warnings: Vec<String>,
    /// Every option as given, secrets redacted, for the debug log.
    pub redacted_options: Vec<(String, String)>,
    /// Where keys of encrypted passwords come from (resolved on load).
    pub key_sources: KeySources,
}

/// Every option the plugin knows: the common ones, the injected ones and
/// every backend's.
pub fn all_options() -> impl Iterator<Item = &'static Opt> {
    COMMON_OPTIONS
        .iter()
        .chain(INJECTED_OPTIONS)
        .chain(BACKENDS.iter().flat_map(|b| b.options))
}

/// The declaration of the option called `key`, if some part of the plugin
/// knows it.
fn declared(key: &str) -> Option<&'static Opt> {
    all_options().find(|o| o.name == key)
}

/// "option "x" is unknown", with the nearest known name when one is close.
fn unknown_option(key: &str) -> String {
    let nearest = all_options()
        .map(|o| (strsim::damerau_levenshtein(key, o.name), o.name))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match nearest {
        Some((_, k)) => format!("option \"{key}\" is unknown; did you mean \"{k}\"?"),
        None => format!("option \"{key}\" is unknown"),
    }
}

impl PluginConfig {
    /// Reads the config file at `path`, checks it, and resolves its secrets
    /// (encrypted passwords: the key from gpbackup's injected option or the
    /// coordinator's `.encrypt`).
    pub fn load(path: &Path) -> Result<PluginConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read plugin config {}: {e}; check the path passed to the plugin",
                path.display()
            ))
        })?;
        let mut config = Self::parse(&text, path)?;
        config.key_sources.data_dirs = crate::crypto::keyfile::data_dirs_from_env();
        config.resolve_secrets()?;
        Ok(config)
    }

    /// Resolves the secrets that need I/O, reporting every problem at once.
    pub fn resolve_secrets(&mut self) -> Result<()> {
        self.backend
            .resolve_secrets(&self.key_sources)
            .map_err(|problems| {
                Error::config(format!(
                    "plugin config {}: {}",
                    self.path.display(),
                    problems.join("; ")
                ))
            })
    }

    /// Checks config text without any I/O; `path` is only used in messages.
    /// Encrypted passwords stay encrypted until [`PluginConfig::resolve_secrets`].
    pub fn parse(text: &str, path: &Path) -> Result<PluginConfig> {
        let raw = yaml::read(text, path)?;
        let map = raw.options;
        let mut warnings = raw.warnings;
        let mut opts = Options::new(&map);
        for p in raw.problems {
            opts.problem(p);
        }
        // Unknown options are warnings in a valid config, and part of the
        // error of an invalid one (a misspelt required option is the usual
        // reason it is "missing").
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| declared(k).is_none())
            .map(|k| unknown_option(k))
            .collect();
        let verbosity = verbosity(&mut opts);
        // Read by gpbackup_helper, not by the plugin: only checked.
        opts.on_off(&RESTORE_SUBSET);
        let read_ahead = opts.number(&READ_AHEAD) as usize;
        let metrics_dir = Some(opts.text(&METRICS_TEXTFILE_DIR))
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let settings = backend_settings(&mut opts, &mut warnings);
        let mut problems = opts.into_problems();
        if problems.is_empty() {
            warnings.extend(unknown.into_iter().map(|u| format!("{u}; ignored")));
        } else {
            problems.extend(unknown);
        }
        match settings {
            Some(backend) if problems.is_empty() => Ok(PluginConfig {
                path: path.to_path_buf(),
                backend,
                verbosity,
                read_ahead,
                metrics_dir,
                warnings,
                redacted_options: redacted(&map),
                key_sources: KeySources {
                    injected: map.get(ENCRYPTION_KEY.name).map(Secret::new),
                    data_dirs: Vec::new(),
                },
            }),
            _ => Err(Error::config(format!(
                "plugin config {}: {}",
                path.display(),
                problems.join("; ")
            ))),
        }
    }
}

/// Every option as given, the values of secret options shown as `***`, and
/// those of unknown ones too (a misspelt secret is still a secret).
fn redacted(map: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            let shown = match declared(k) {
                Some(o) if !o.secret => v.clone(),
                _ => "***".to_string(),
            };
            (k.clone(), shown)
        })
        .collect()
}

/// Option `logger_verbosity`.
fn verbosity(opts: &mut Options) -> Verbosity {
    let v = opts.text(&LOGGER_VERBOSITY);
    match v.to_ascii_lowercase().as_str() {
        "error" => Verbosity::Error,
        "info" => Verbosity::Info,
        "verbose" => Verbosity::Verbose,
        "debug" => Verbosity::Debug,
        _ => {
            opts.problem(format!(
                "option \"logger_verbosity\" must be error, info, verbose or debug (got \"{v}\")"
            ));
            Verbosity::Info
        }
    }
}

/// The backend option `backend` names, checked by its schema; options of
/// other backends are ignored, with a warning.
fn backend_settings(
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Option<Box<dyn BackendConfig>> {
    let name = opts.text(&BACKEND).to_ascii_lowercase();
    let Some(b) = BACKENDS.iter().find(|b| b.name == name) else {
        let names: Vec<&str> = BACKENDS.iter().map(|b| b.name).collect();
        opts.problem(format!(
            "option \"backend\" must be {} (got \"{name}\")",
            names.join(" or ")
        ));
        return None;
    };
    let reads = |options: &[Opt], key: &str| options.iter().any(|o| o.name == key);
    for key in opts.keys() {
        if reads(b.options, key) || reads(COMMON_OPTIONS, key) {
            continue;
        }
        if let Some(other) = BACKENDS.iter().find(|o| reads(o.options, key)) {
            warnings.push(format!(
                "option \"{key}\" is used only with backend {}; ignored with backend {}",
                other.name, b.name
            ));
        }
    }
    (b.parse)(opts)
}

/// Opens the backend the config selects; `remote` says whether the command
/// needs the replica system.
pub fn open(config: &PluginConfig, remote: Remote) -> Result<Box<dyn Storage>> {
    let storage = config.backend.open(remote)?;
    // Injected failures for the test suite (builds with test-support only).
    #[cfg(feature = "test-support")]
    if let Some(f) = crate::storage::faulty::Faults::from_env()? {
        return Ok(Box::new(crate::storage::faulty::FaultyStorage::new(
            storage, f,
        )));
    }
    Ok(storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PluginConfig> {
        PluginConfig::parse(s, Path::new("/tmp/cfg.yaml"))
    }

    #[test]
    fn bare_and_quoted_scalars_and_injected_keys() {
        let c = parse(
            "executablepath: /usr/local/bin/gpbackup_ddboost_plugin\noptions:\n  backend: local\n  directory: \"/backup\"\n  restore_subset: \"off\"\n  pgport: 6000\n  backup_plugin_version: \"\"\n  gpbackup_ddboost_plugin: 0123abc\n  logger_verbosity: debug\n",
        )
        .unwrap();
        assert_eq!(c.verbosity, Verbosity::Debug);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let shown = format!("{:?}", c);
        assert!(!shown.contains("0123abc"), "{shown}");
        let local = c
            .backend
            .as_any()
            .downcast_ref::<crate::storage::local::config::LocalConfig>()
            .expect("local backend");
        assert_eq!(local.directory, PathBuf::from("/backup"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = parse(
            "options:\n  backend: local\n  logger_verbosity: loud\n  restore_subset: maybe\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"directory\" is required"), "{e}");
        assert!(e.contains("\"logger_verbosity\""), "{e}");
        assert!(e.contains("\"restore_subset\""), "{e}");
    }

    #[test]
    fn duplicates_and_nested_values_rejected() {
        let e =
            parse("options:\n  backend: local\n  directory: /a\n  directory: /b\n  x: [1, 2]\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("directory"), "{e}");
        let e = parse("options:\n  backend: local\n  directory: /a\n  x: [1, 2]\n  y: {a: 1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"x\" must be a single value"), "{e}");
        assert!(e.contains("\"y\" must be a single value"), "{e}");
    }

    #[test]
    fn misspelt_options_are_named_with_the_nearest_known_one() {
        let e = parse("options:\n  hostname: dd1\n  usernme: u\n  password: p\n  storage_unit: SU\n  directory: d\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"username\" is required"), "{e}");
        assert!(
            e.contains("option \"usernme\" is unknown; did you mean \"username\"?"),
            "{e}"
        );
        let c = parse("options:\n  backend: local\n  directory: /a\n  fsyncc: off\n  zzzzzz: 1\n")
            .unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("did you mean \"fsync\"")),
            "{:?}",
            c.warnings
        );
        assert!(
            c.warnings
                .iter()
                .any(|w| w == "option \"zzzzzz\" is unknown; ignored"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn unknown_keys_warn() {
        let c = parse("executablepath: /x\nfoo: 1\noptions:\n  backend: local\n  directory: /a\n  colour: blue\n").unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    }

    #[test]
    fn raw_scalar_text_is_kept() {
        let c = parse("options:\n  backend: local\n  directory: /a\n  replication_streams: 010\n")
            .unwrap();
        assert!(c
            .redacted_options
            .contains(&("replication_streams".into(), "010".into())));
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;
    use crate::config::options::Kind;

    /// The example config parses with no warnings.
    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../plugin_config.example.yaml");
        let c = PluginConfig::parse(text, Path::new("plugin_config.example.yaml")).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(c
            .backend
            .as_any()
            .is::<crate::storage::ddboost::config::DdBoostConfig>());
    }

    proptest::proptest! {
        /// Any text, YAML-looking or not, gives a config or an error, never a panic.
        #[test]
        fn never_panics(body in "(options:\n)?([ a-z_]{0,12}: ?[\\[\\]{}\"'a-z0-9/:~!&*-]{0,16}\n){0,8}") {
            let _ = PluginConfig::parse(&body, Path::new("c.yaml"));
        }
    }

    /// One row of the README's option table: the options it names, whether
    /// they are required, their defaults (backticked), its text.
    struct Row<'a> {
        names: Vec<&'a str>,
        required: &'a str,
        defaults: Vec<&'a str>,
        meaning: &'a str,
    }

    fn backticked(cell: &str) -> Vec<&str> {
        cell.split('`').skip(1).step_by(2).collect()
    }

    fn option_rows(readme: &str) -> Vec<Row<'_>> {
        let start = readme
            .find("| option | required | default | meaning |")
            .unwrap();
        readme[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split(" | ").map(|c| c.trim_matches('|').trim()).collect();
                Row {
                    names: backticked(cells[0]),
                    required: cells[1],
                    defaults: backticked(cells[2]),
                    meaning: cells.get(3).copied().unwrap_or(""),
                }
            })
            .collect()
    }

    /// The README's option table agrees with the declarations: every option
    /// has a row, required ones are not marked "no", the default shown is
    /// the declared one, and a number's range is given.
    #[test]
    fn readme_documents_every_option() {
        let readme = include_str!("../README.md");
        let rows = option_rows(readme);
        for opt in all_options() {
            let row = rows
                .iter()
                .find(|r| r.names.contains(&opt.name))
                .unwrap_or_else(|| panic!("README's option table lacks option {}", opt.name));
            let i = row.names.iter().position(|n| *n == opt.name).unwrap();
            let shown = match row.defaults.len() {
                0 => None,
                1 => Some(row.defaults[0]),
                _ => row.defaults.get(i).copied(),
            };
            assert_eq!(
                shown.map(str::to_string),
                opt.default_text(),
                "README's default of option {}",
                opt.name
            );
            match opt.kind {
                Kind::Required => assert_ne!(row.required, "no", "{} is required", opt.name),
                Kind::Injected => assert_eq!(row.required, "–", "{} is injected", opt.name),
                _ => assert_eq!(row.required, "no", "{} is optional", opt.name),
            }
            if let Kind::Number { min, max, .. } = opt.kind {
                assert!(
                    row.meaning.contains(&format!("{min}-{max}")),
                    "README gives no range {min}-{max} for option {}",
                    opt.name
                );
            }
        }
    }

    /// Option `read_ahead` has the bounds the restore streams use.
    #[test]
    fn read_ahead_bounds_are_the_streams() {
        use crate::data::stream::{DEFAULT_READ_AHEAD, MAX_READ_AHEAD};
        assert_eq!(
            READ_AHEAD.kind,
            Kind::Number {
                default: DEFAULT_READ_AHEAD as u64,
                min: 1,
                max: MAX_READ_AHEAD as u64
            }
        );
    }

    /// Options are secret by declaration: the passwords and the injected key.
    #[test]
    fn secret_options_are_declared_so() {
        let secret: Vec<&str> = all_options().filter(|o| o.secret).map(|o| o.name).collect();
        assert_eq!(
            secret,
            ["gpbackup_ddboost_plugin", "password", "remote_password"]
        );
        let c = PluginConfig::parse(
            "options:\n  backend: local\n  directory: /a\n  remote_pasword: hunter2\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        assert!(c
            .redacted_options
            .contains(&("remote_pasword".into(), "***".into())));
    }
}
