//! Typed access to the flat option map, collecting every problem rather than
//! stopping at the first.

use std::collections::BTreeMap;

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

    /// The raw value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).map(|s| s.as_str())
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
    pub fn required(&mut self, key: &str) -> Option<String> {
        match self.get(key).map(str::trim) {
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

    /// A whole number in `range`; `default` when absent, a problem when not.
    pub fn number(&mut self, key: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
        match self.get(key).map(str::trim) {
            None | Some("") => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    self.problem(format!(
                        "option \"{key}\" must be a whole number from {} to {} (got \"{v}\")",
                        range.start(),
                        range.end()
                    ));
                    default
                }
            },
        }
    }

    /// `on`/`off` (also true/false, yes/no); `default` when absent.
    pub fn on_off(&mut self, key: &str, default: bool) -> bool {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => default,
            Some(v) if v.is_empty() => default,
            Some(v) => match v.as_str() {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => {
                    self.problem(format!("option \"{key}\" must be on or off (got \"{v}\")"));
                    default
                }
            },
        }
    }
}
