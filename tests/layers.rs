//! Imports point down the layer list of the crate docs (src/lib.rs): a
//! module of one layer uses only modules of layers below it. Unit tests
//! (after `#[cfg(test)]`) may import anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Each top-level module and its rank (1 = top), from the numbered list
/// `//! N. `a`, `b`: ...` of src/lib.rs.
fn layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut ranks = BTreeMap::new();
    for line in lib.lines() {
        let Some(item) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((number, rest)) = item.split_once(". `") else {
            continue;
        };
        let Ok(rank) = number.parse::<usize>() else {
            continue;
        };
        let names = rest.split_once(':').map_or(rest, |(names, _)| names);
        for name in names.split(", ") {
            ranks.insert(name.trim_matches('`').to_string(), rank);
        }
    }
    ranks
}

/// The `.rs` files below `path` (or `path` itself).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The code of a file without its unit tests and comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `text` names: `crate::x` paths and the members of
/// `use crate::{x, y::z}` groups.
fn used_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = &group[..group.find('}').unwrap_or(group.len())];
            for member in body.split(',') {
                out.push(ident(member.trim()));
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn the_layer_list_names_every_module() {
    let ranks = layers();
    for entry in std::fs::read_dir(src()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        assert!(
            ranks.contains_key(&name),
            "src/lib.rs lists no layer for {name}"
        );
    }
}

#[test]
fn imports_point_down_the_layers() {
    let ranks = layers();
    let mut upward = Vec::new();
    for (module, rank) in &ranks {
        let dir = src().join(module);
        let path = if dir.is_dir() {
            dir
        } else {
            src().join(format!("{module}.rs"))
        };
        for file in rust_files(&path) {
            for used in used_modules(&code(&file)) {
                // Items at the crate root (exported macros) are not modules.
                let is_module =
                    src().join(&used).is_dir() || src().join(format!("{used}.rs")).is_file();
                if used == *module || !is_module {
                    continue;
                }
                match ranks.get(&used) {
                    Some(r) if r > rank => {}
                    _ => upward.push(format!(
                        "{} ({module}, layer {rank}) uses crate::{used} (layer {})",
                        file.strip_prefix(src()).unwrap().display(),
                        ranks.get(&used).map_or("?".into(), |r| r.to_string())
                    )),
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down the layer list of src/lib.rs:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_readme_shows_the_same_layers() {
    let readme = std::fs::read_to_string(src().join("../README.md")).unwrap();
    let mut by_rank: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (module, rank) in layers() {
        by_rank.entry(rank).or_default().push(format!("`{module}`"));
    }
    let line = by_rank
        .values()
        .map(|names| names.join(", "))
        .collect::<Vec<_>>()
        .join(" -> ");
    assert!(
        readme.contains(&line),
        "README's Developing section lacks the layer line {line}"
    );
}
