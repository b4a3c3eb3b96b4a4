//! Option declarations, and typed access to the flat option map through
//! them, collecting every problem rather than stopping at the first.
//!
//! Each option is declared once, with [`declare_options!`]: its name, how
//! its value is read, its default and whether it is secret. Code reads an
//! option through its declaration (`opts.on_off(&FSYNC)`), never by its name,
//! and the README's option table is checked against the declarations.

use std::collections::BTreeMap;

/// One option the plugin knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt {
    pub name: &'static str,
    pub kind: Kind,
    /// Its value is never logged or shown.
    pub secret: bool,
}

/// How an option's value is read, with its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text that must be given and not be empty.
    Required,
    /// Text with a default ("" for none).
    Text(&'static str),
    /// `on`/`off` with a default.
    OnOff(bool),
    /// A whole number from `min` to `max`, with a default.
    Number { default: u64, min: u64, max: u64 },
    /// Added by gpbackup or gprestore: accepted; read, if at all, as text.
    Injected,
}

impl Opt {
    pub const fn required(name: &'static str) -> Opt {
        Opt::new(name, Kind::Required)
    }
    pub const fn text(name: &'static str, default: &'static str) -> Opt {
        Opt::new(name, Kind::Text(default))
    }
    pub const fn on_off(name: &'static str, default: bool) -> Opt {
        Opt::new(name, Kind::OnOff(default))
    }
    pub const fn number(name: &'static str, default: u64, min: u64, max: u64) -> Opt {
        Opt::new(name, Kind::Number { default, min, max })
    }
    pub const fn injected(name: &'static str) -> Opt {
        Opt::new(name, Kind::Injected)
    }
    const fn new(name: &'static str, kind: Kind) -> Opt {
        Opt {
            name,
            kind,
            secret: false,
        }
    }
    /// The same option, secret.
    pub const fn secret(self) -> Opt {
        Opt {
            secret: true,
            ..self
        }
    }

    /// The default as the README's option table shows it (None: no default).
    pub fn default_text(&self) -> Option<String> {
        match self.kind {
            Kind::Required | Kind::Injected | Kind::Text("") => None,
            Kind::Text(d) => Some(d.to_string()),
            Kind::OnOff(d) => Some(if d { "on" } else { "off" }.to_string()),
            Kind::Number { default, .. } => Some(default.to_string()),
        }
    }
}

/// Declares options, each as a constant [`Opt`] made by the constructor of
/// that name, and the list of them:
///
/// ```
/// gpbackup_ddboost_plugin::declare_options! { OPTIONS:
///     /// Flush each object before succeeding.
///     FSYNC = on_off("fsync", true);
///     TOKEN = required("token").secret();
/// }
/// assert_eq!(OPTIONS, &[FSYNC, TOKEN]);
/// assert!(TOKEN.secret);
/// ```
#[macro_export]
macro_rules! declare_options {
    ($list:ident: $($(#[$doc:meta])* $name:ident = $ctor:ident($($arg:expr),*) $(.$modifier:ident())*;)*) => {
        $(
            $(#[$doc])*
            pub const $name: $crate::config::options::Opt =
                $crate::config::options::Opt::$ctor($($arg),*) $(.$modifier())*;
        )*
        /// Every option declared here.
        pub const $list: &[$crate::config::options::Opt] = &[$($name),*];
    };
}

/// The options of a plugin config, as raw text, and the problems found in
/// them so far (each names its option).
pub struct Options<'a> {
    map: &'a BTreeMap<String, String>,
    problems: Vec<String>,
}

impl<'a> Options<'a> {
    pub fn new(map: &'a BTreeMap<String, String>) -> Self {
        Options {
            map,
            problems: Vec::new(),
        }
    }

    /// The same options with no problems recorded yet (for a group of
    /// options whose problems are reported separately).
    pub fn fresh(&self) -> Options<'a> {
        Options::new(self.map)
    }

    /// The raw value of `opt`, if given.
    pub fn get(&self, opt: &Opt) -> Option<&'a str> {
        self.map.get(opt.name).map(|s| s.as_str())
    }

    /// The value of a text option, trimmed; its default when absent or empty.
    pub fn text(&self, opt: &Opt) -> &'a str {
        let default = match opt.kind {
            Kind::Text(d) => d,
            _ => "",
        };
        match self.get(opt).map(str::trim) {
            None | Some("") => default,
            Some(v) => v,
        }
    }

    /// Every option name given.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.map.keys().map(|k| k.as_str())
    }

    /// Records a problem.
    pub fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    /// The problems recorded.
    pub fn into_problems(self) -> Vec<String> {
        self.problems
    }

    /// A required, non-empty value; records a problem when missing.
    pub fn required(&mut self, opt: &Opt) -> Option<String> {
        let key = opt.name;
        match self.get(opt).map(str::trim) {
            Some(v) if !v.is_empty() => Some(v.to_string()),
            Some(_) => {
                self.problem(format!("option \"{key}\" is empty"));
                None
            }
            None => {
                self.problem(format!("option \"{key}\" is required"));
                None
            }
        }
    }

    /// A whole number in the option's range; its default when absent, a
    /// problem when not a number in range.
    pub fn number(&mut self, opt: &Opt) -> u64 {
        let (default, min, max) = match opt.kind {
            Kind::Number { default, min, max } => (default, min, max),
            _ => (0, 0, u64::MAX),
        };
        match self.get(opt).map(str::trim) {
            None | Some("") => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.problem(format!(
                        "option \"{}\" must be a whole number from {min} to {max} (got \"{v}\")",
                        opt.name
                    ));
                    default
                }
            },
        }
    }

    /// `on`/`off` (also true/false, yes/no); the option's default when absent.
    pub fn on_off(&mut self, opt: &Opt) -> bool {
        let default = matches!(opt.kind, Kind::OnOff(true));
        match self.get(opt).map(|v| v.trim().to_ascii_lowercase()) {
            None => default,
            Some(v) if v.is_empty() => default,
            Some(v) => match v.as_str() {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => {
                    self.problem(format!(
                        "option \"{}\" must be on or off (got \"{v}\")",
                        opt.name
                    ));
                    default
                }
            },
        }
    }
}
