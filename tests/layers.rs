//! Imports point down the layer list of the crate docs (src/lib.rs): a
//! module of one layer uses only modules of layers below it, wherever in its
//! file the path is written (a `use` or an inline `crate::x::y`). Unit tests
//! (items marked `#[cfg(test)]`) may import anything.

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

/// The code of a file without its comments and its unit tests: each item
/// marked `#[cfg(test)]` (a `mod tests { ... }`, a test-only function) is left
/// out whole, and everything else, however far down the file, is kept.
fn code(path: &Path) -> String {
    code_of(&std::fs::read_to_string(path).unwrap())
}

fn code_of(text: &str) -> String {
    let text = without_comments(text);
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        rest = &rest[at + "#[cfg(test)]".len()..];
        rest = &rest[item_len(rest)..];
    }
    out.push_str(rest);
    out
}

/// The length of the item `text` starts with: up to its first `;` outside
/// brackets, or to the `}` that closes its first `{`.
fn item_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i),
            b'\'' => i = char_end(bytes, i),
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && bytes[i] == b'}' {
                    return i + 1;
                }
            }
            b';' if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The index of the closing quote of the string literal whose opening quote
/// is at `start` (raw strings `r#"..."#` included).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut hashes = 0;
    while start > hashes && bytes[start - hashes - 1] == b'#' {
        hashes += 1;
    }
    let raw = start > hashes && bytes[start - hashes - 1] == b'r';
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !raw => i += 1,
            b'"' if bytes[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&b| b == b'#')
                .count()
                == hashes =>
            {
                return i + hashes;
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The index of the closing quote of the character literal at `start`, or
/// `start` itself for a lifetime (`'a`).
fn char_end(bytes: &[u8], start: usize) -> usize {
    let close = match bytes.get(start + 1) {
        Some(b'\\') => bytes
            .get(start + 3..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\''))
            .map(|p| start + 3 + p),
        // One character: 1 to 4 bytes in UTF-8, then the quote.
        Some(&first) => {
            let len = match first {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            Some(start + 1 + len).filter(|&i| bytes.get(i) == Some(&b'\''))
        }
        None => None,
    };
    close.unwrap_or(start)
}

/// `text` without its `//` and `/* */` comments (string and character
/// literals kept as they are).
fn without_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            (b'/', Some(b'*')) => {
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(b' ');
                continue;
            }
            (b'"', _) | (b'\'', _) => {
                let end = if bytes[i] == b'"' {
                    string_end(bytes, i)
                } else {
                    char_end(bytes, i)
                };
                let end = (end + 1).min(bytes.len());
                out.extend_from_slice(&bytes[i..end]);
                i = end;
                continue;
            }
            _ => out.push(bytes[i]),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
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
fn the_check_reads_past_test_items_and_skips_only_them() {
    let file = r#"
use crate::a::A;
#[cfg(test)]
fn only_in_tests(x: &'static str) -> char { let _ = "}"; let _ = crate::t1::x; '{' }
#[cfg(test)]
use crate::t2::Y;
/* crate::c1 in a comment */ fn f<'a>(x: &'a str) { crate::b::read(x, '\''); } // crate::c2
#[cfg(test)]
mod tests { fn g() { crate::t3::z(); let _ = r"{"; } }
fn h() { crate::c::d() }
"#;
    assert_eq!(used_modules(&code_of(file)), ["a", "b", "c"]);
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
