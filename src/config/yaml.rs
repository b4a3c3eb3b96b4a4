//! The config file's YAML: `executablepath` plus a flat `options` map, each
//! option's value kept as the raw text of its scalar.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::error::{Error, Result};

/// What the YAML holds, before any option is interpreted.
pub struct RawConfig {
    pub options: BTreeMap<String, String>,
    /// Shape problems (an option that is a list, no `options` key, ...).
    pub problems: Vec<String>,
    /// Non-fatal findings (unknown top-level keys).
    pub warnings: Vec<String>,
}

/// A scalar's raw text: `010` stays `010`, `on` stays `on`, null is "".
struct RawScalar(String);

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawScalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<RawScalar, E> {
                Ok(RawScalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<RawScalar, E> {
                Ok(RawScalar(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<RawScalar, E> {
                Ok(RawScalar(String::new()))
            }
        }
        // deserialize_str hands over a plain scalar's text as written.
        d.deserialize_str(V)
    }
}

/// The text of a scalar `Value` (used only when raw text is unavailable).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Tagged(t) => scalar_text(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

fn shape(v: &Value) -> &'static str {
    match v {
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        _ => "a value",
    }
}

/// Reads config text; only text that is not YAML at all is an error here,
/// every other problem is collected. `path` is only used in messages.
pub fn read(text: &str, path: &Path) -> Result<RawConfig> {
    let bad_yaml = |e: serde_yaml_ng::Error| {
        Error::config(format!(
            "plugin config {} is not valid YAML: {e}",
            path.display()
        ))
    };
    let top: Value = serde_yaml_ng::from_str(text).map_err(bad_yaml)?;
    let top = match top {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        other => {
            return Err(Error::config(format!(
                "plugin config {} must be a map with keys executablepath and options, not {}",
                path.display(),
                shape(&other)
            )))
        }
    };
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut options_value = None;
    for (key, value) in &top {
        let key = scalar_text(key).unwrap_or_default();
        match key.as_str() {
            // The plugin's path, for gpbackup; the plugin does not need it.
            "executablepath" => {
                if scalar_text(value).is_none() {
                    problems.push(format!(
                        "\"executablepath\" must be a path, not {}",
                        shape(value)
                    ));
                }
            }
            "options" => options_value = Some(value.clone()),
            other => warnings.push(format!("unknown top-level key \"{other}\" ignored")),
        }
    }
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    match options_value {
        None => problems.push("key \"options\" is missing".to_string()),
        Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            let mut all_scalars = true;
            for (k, v) in &m {
                let k = scalar_text(k).unwrap_or_default();
                match scalar_text(v) {
                    Some(t) => {
                        map.insert(k, t);
                    }
                    None => {
                        all_scalars = false;
                        problems.push(format!(
                            "option \"{k}\" must be a single value, not {}",
                            shape(v)
                        ));
                    }
                }
            }
            if all_scalars {
                // Again, for the raw text of every scalar.
                #[derive(Deserialize)]
                struct Raw {
                    options: BTreeMap<String, RawScalar>,
                }
                let raw: Raw = serde_yaml_ng::from_str(text).map_err(bad_yaml)?;
                map = raw.options.into_iter().map(|(k, v)| (k, v.0)).collect();
            }
        }
        Some(other) => problems.push(format!(
            "\"options\" must be a map of option names to values, not {}",
            shape(&other)
        )),
    }
    Ok(RawConfig {
        options: map,
        problems,
        warnings,
    })
}
