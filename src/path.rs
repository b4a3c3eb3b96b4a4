//! Paths in the storage: relative to the configured base folder, components
//! separated by '/'. A [`StoragePath`] is checked once, when it is built
//! from text ([`StoragePath::parse`]); every storage call takes and returns
//! one, so no backend sees `..`, an empty component or a separator inside a
//! name.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// A checked path relative to the storage's base folder: no leading or
/// trailing '/', no empty, `.` or `..` component, no backslash or NUL. The
/// empty path ([`StoragePath::root`]) is the base folder itself.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoragePath(String);

/// Why text is not a storage path (or a name not a component of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// A '/' at the start or the end.
    EdgeSlash,
    /// Two '/' in a row, or an empty name.
    EmptyComponent,
    /// A `.` or `..` component.
    Dots(&'static str),
    /// A backslash or NUL character.
    Forbidden(char),
    /// A name (one component) with a '/' in it.
    Separator,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::EdgeSlash => f.write_str("it starts or ends with '/'"),
            PathError::EmptyComponent => f.write_str("it has an empty component"),
            PathError::Dots(d) => write!(f, "it contains a \"{d}\" component"),
            PathError::Forbidden('\0') => f.write_str("it contains a NUL character"),
            PathError::Forbidden(c) => write!(f, "it contains a '{c}'"),
            PathError::Separator => f.write_str("a name contains a '/'"),
        }
    }
}

impl std::error::Error for PathError {}

impl From<PathError> for Error {
    fn from(e: PathError) -> Error {
        Error::new(ErrorKind::Invalid, format!("invalid storage path: {e}"))
    }
}

/// Whether `c` is a `.` or `..` component (which would name another place).
pub fn is_dots(c: &str) -> Option<&'static str> {
    match c {
        "." => Some("."),
        ".." => Some(".."),
        _ => None,
    }
}

/// Checks one component (a file or folder name).
pub fn check_component(c: &str) -> Result<(), PathError> {
    if c.is_empty() {
        return Err(PathError::EmptyComponent);
    }
    if let Some(d) = is_dots(c) {
        return Err(PathError::Dots(d));
    }
    if c.contains('/') {
        return Err(PathError::Separator);
    }
    match c.chars().find(|ch| matches!(ch, '\\' | '\0')) {
        Some(ch) => Err(PathError::Forbidden(ch)),
        None => Ok(()),
    }
}

impl StoragePath {
    /// The base folder itself.
    pub fn root() -> StoragePath {
        StoragePath(String::new())
    }

    /// Checks `text` (empty: the root).
    pub fn parse(text: &str) -> Result<StoragePath, PathError> {
        if text.is_empty() {
            return Ok(Self::root());
        }
        if text.starts_with('/') || text.ends_with('/') {
            return Err(PathError::EdgeSlash);
        }
        for c in text.split('/') {
            check_component(c)?;
        }
        Ok(StoragePath(text.to_string()))
    }

    /// Like [`StoragePath::parse`] after dropping empty and `.` components
    /// (a folder as a user types it: `a//b/./c/`); `..` is still refused.
    pub fn parse_lenient(text: &str) -> Result<StoragePath, PathError> {
        let kept: Vec<&str> = text
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        Self::parse(&kept.join("/"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The components, none for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The folder and the last component (`("", name)` at the top; the
    /// root gives `("", "")`).
    pub fn folder_and_name(&self) -> (&str, &str) {
        match self.0.rfind('/') {
            Some(i) => (&self.0[..i], &self.0[i + 1..]),
            None => ("", &self.0),
        }
    }

    /// The last component ("" for the root).
    pub fn file_name(&self) -> &str {
        self.folder_and_name().1
    }

    /// The folder this path is in; None for the root.
    pub fn parent(&self) -> Option<StoragePath> {
        (!self.is_root()).then(|| StoragePath(self.folder_and_name().0.to_string()))
    }

    /// `name` (one component, checked) in this folder.
    pub fn child(&self, name: &str) -> Result<StoragePath, PathError> {
        check_component(name)?;
        Ok(self.join_unchecked(name))
    }

    /// `rel` below this folder.
    pub fn join(&self, rel: &StoragePath) -> StoragePath {
        self.join_unchecked(&rel.0)
    }

    /// `name` (one component, checked) beside this path, in its folder.
    pub fn sibling(&self, name: &str) -> Result<StoragePath, PathError> {
        check_component(name)?;
        Ok(StoragePath(self.folder_and_name().0.to_string()).join_unchecked(name))
    }

    /// Whether this path is `dir` or below it (everything is below the root).
    pub fn is_within(&self, dir: &StoragePath) -> bool {
        self.relative_to(dir).is_some()
    }

    /// This path relative to `dir` ("" for `dir` itself), when within it.
    pub fn relative_to(&self, dir: &StoragePath) -> Option<&str> {
        if dir.is_root() {
            return Some(&self.0);
        }
        let rest = self.0.strip_prefix(dir.as_str())?;
        match rest.strip_prefix('/') {
            Some(r) => Some(r),
            None if rest.is_empty() => Some(rest),
            None => None,
        }
    }

    /// Both parts valid, so the join is.
    fn join_unchecked(&self, rel: &str) -> StoragePath {
        match (self.is_root(), rel.is_empty()) {
            (_, true) => self.clone(),
            (true, false) => StoragePath(rel.to_string()),
            (false, false) => StoragePath(format!("{}/{rel}", self.0)),
        }
    }
}

impl std::str::FromStr for StoragePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<StoragePath, PathError> {
        StoragePath::parse(s)
    }
}

impl std::ops::Deref for StoragePath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StoragePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoragePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StoragePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq<str> for StoragePath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StoragePath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Lookups by text in maps and sets keyed by paths (ordering and hashing
/// are the text's).
impl std::borrow::Borrow<str> for StoragePath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<StoragePath> for String {
    fn from(p: StoragePath) -> String {
        p.0
    }
}

/// Read back checked, as [`StoragePath::parse`] checks it.
impl TryFrom<String> for StoragePath {
    type Error = PathError;
    fn try_from(s: String) -> Result<StoragePath, PathError> {
        StoragePath::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> StoragePath {
        StoragePath::parse(s).unwrap()
    }

    #[test]
    fn every_bad_form_is_refused_with_its_reason() {
        for (text, why) in [
            ("/a", PathError::EdgeSlash),
            ("a/", PathError::EdgeSlash),
            ("/", PathError::EdgeSlash),
            ("a//b", PathError::EmptyComponent),
            (".", PathError::Dots(".")),
            ("a/./b", PathError::Dots(".")),
            ("..", PathError::Dots("..")),
            ("a/../b", PathError::Dots("..")),
            ("a/..", PathError::Dots("..")),
            ("a\\b", PathError::Forbidden('\\')),
            ("a/b\0c", PathError::Forbidden('\0')),
        ] {
            assert_eq!(StoragePath::parse(text), Err(why), "{text:?}");
        }
        for name in ["", ".", "..", "a/b", "a\\b", "a\0"] {
            assert!(p("d").child(name).is_err(), "{name:?}");
            assert!(p("d/f").sibling(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn reasons_read_as_one_line() {
        let e: Error = StoragePath::parse("a/../b").unwrap_err().into();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert_eq!(
            e.to_string(),
            "invalid storage path: it contains a \"..\" component"
        );
        assert_eq!(
            PathError::Forbidden('\0').to_string(),
            "it contains a NUL character"
        );
    }

    #[test]
    fn names_that_only_look_odd_are_accepted() {
        for text in [
            "a",
            ".a",
            "a/.b.checksum.next",
            "...",
            "a/..b",
            "b../c",
            "a b/ü",
        ] {
            assert_eq!(p(text).as_str(), text);
        }
    }

    #[test]
    fn the_root_is_the_empty_path() {
        let root = StoragePath::root();
        assert_eq!(p(""), root);
        assert!(root.is_root());
        assert_eq!(root.components().count(), 0);
        assert_eq!(root.parent(), None);
        assert_eq!(root.folder_and_name(), ("", ""));
        assert_eq!(root.child("a").unwrap(), "a");
        assert_eq!(root.join(&p("a/b")), "a/b");
        assert_eq!(p("a/b").join(&root), "a/b");
        assert_eq!(p("a").relative_to(&root), Some("a"));
    }

    #[test]
    fn joins_splits_and_children() {
        let f = p("backups/20250101/x");
        assert_eq!(f.child("obj").unwrap(), "backups/20250101/x/obj");
        assert_eq!(f.join(&p("y/z")), "backups/20250101/x/y/z");
        assert_eq!(f.folder_and_name(), ("backups/20250101", "x"));
        assert_eq!(f.file_name(), "x");
        assert_eq!(f.parent().unwrap(), "backups/20250101");
        assert_eq!(p("top").parent().unwrap(), StoragePath::root());
        assert_eq!(
            f.sibling(".x.checksum").unwrap(),
            "backups/20250101/.x.checksum"
        );
        assert_eq!(p("top").sibling(".top.tmp").unwrap(), ".top.tmp");
        assert_eq!(
            f.components().collect::<Vec<_>>(),
            ["backups", "20250101", "x"]
        );
        assert!(f.is_within(&p("backups")));
        assert!(f.is_within(&f));
        assert!(
            !f.is_within(&p("back")),
            "a prefix of a name is not a folder"
        );
        assert!(!p("backups").is_within(&f));
        assert_eq!(f.relative_to(&p("backups")), Some("20250101/x"));
        assert_eq!(f.relative_to(&f), Some(""));
    }

    #[test]
    fn lenient_parse_drops_empty_and_dot_components_only() {
        assert_eq!(StoragePath::parse_lenient("/a//b/./c/").unwrap(), "a/b/c");
        assert_eq!(
            StoragePath::parse_lenient("./").unwrap(),
            StoragePath::root()
        );
        assert_eq!(
            StoragePath::parse_lenient("a/../b"),
            Err(PathError::Dots(".."))
        );
    }

    proptest! {
        /// Whatever parses prints back as the same text, and splits and
        /// joins back to itself.
        #[test]
        fn round_trips(text in "[a-z.\\\\/]{0,12}") {
            if let Ok(path) = StoragePath::parse(&text) {
                prop_assert_eq!(path.to_string(), text.clone());
                prop_assert_eq!(StoragePath::parse(path.as_str()), Ok(path.clone()));
                if let Some(parent) = path.parent() {
                    prop_assert_eq!(parent.child(path.file_name()), Ok(path.clone()));
                }
                let rebuilt = path
                    .components()
                    .fold(StoragePath::root(), |acc, c| acc.child(c).unwrap());
                prop_assert_eq!(rebuilt, path);
            }
        }
    }
}
