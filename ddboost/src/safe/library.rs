//! Finding and loading `libDDBoost.so`, and the SDK's process-wide init.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::adapter::{self, Api};

use super::error::{Error, Result};

/// File name of the DD Boost SDK library.
pub const LIBRARY_FILE_NAME: &str = "libDDBoost.so";

/// Why the library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened as a shared library.
    #[error("cannot load {origin}: {reason}")]
    Open {
        /// The path or name given to the loader.
        origin: String,
        /// The loader's message.
        reason: String,
    },
    /// The library loaded but lacks a function the header declares.
    #[error(
        "{origin} lacks the DD Boost function {symbol}; is it the libDDBoost.so of a DD Boost SDK?"
    )]
    MissingSymbol {
        /// The path or name given to the loader.
        origin: String,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// No place in the lookup order had a loadable library.
    #[error("cannot load {LIBRARY_FILE_NAME}; tried {}; put it in one of those places or name it with the ddboost_library option", DisplayAttempts(.tried))]
    NotFound {
        /// Every place tried, in order, with why it failed.
        tried: Vec<Attempt>,
    },
}

/// One place [`Library::find`] tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The path, or `libDDBoost.so (loader search path)`.
    pub place: String,
    /// Why it failed.
    pub reason: String,
}

struct DisplayAttempts<'a>(&'a [Attempt]);

impl fmt::Display for DisplayAttempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({})", a.place, a.reason)?;
        }
        Ok(())
    }
}

/// Where [`Library::find`] looks, in order, when no explicit path is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Candidate {
    /// A file path.
    Path(PathBuf),
    /// The bare file name, resolved by the dynamic loader's search path.
    SearchPath,
}

impl Candidate {
    fn place(&self) -> String {
        match self {
            Candidate::Path(p) => p.display().to_string(),
            Candidate::SearchPath => format!("{LIBRARY_FILE_NAME} (loader search path)"),
        }
    }
}

/// The lookup order for an executable at `exe`: `<bindir>/../lib/libDDBoost.so`,
/// `<bindir>/libDDBoost.so`, then the loader's search path.
pub(crate) fn candidates(exe: Option<&Path>) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(bin_dir) = exe.and_then(Path::parent) {
        if let Some(prefix) = bin_dir.parent() {
            out.push(Candidate::Path(prefix.join("lib").join(LIBRARY_FILE_NAME)));
        }
        out.push(Candidate::Path(bin_dir.join(LIBRARY_FILE_NAME)));
    }
    out.push(Candidate::SearchPath);
    out
}

/// A loaded DD Boost library. Cheap to clone; the library stays loaded while
/// any clone or handle made from it lives.
///
/// # Trust
///
/// [`Library::load`] and [`Library::find`] are safe functions, but loading a
/// shared library runs its initialisers, and every later call runs its code
/// in this process: no Rust check can make an arbitrary `.so` safe. They
/// assume that the file is a DD Boost SDK library (or the project's mock)
/// built for the header in use, chosen by whoever configures the program
/// (the `ddboost_library` option, or the fixed lookup order of
/// [`Library::find`], whose directories should be writable only by the
/// administrator). That is the same trust a C program linked with
/// `-lDDBoost` places in `LD_LIBRARY_PATH`. What is checked: that the file
/// loads and exports every function the header declares.
#[derive(Clone)]
pub struct Library {
    pub(crate) inner: Arc<LibInner>,
}

pub(crate) struct LibInner {
    pub(crate) api: Api,
    origin: String,
    init: OnceLock<Result<()>>,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("origin", &self.inner.origin)
            .finish()
    }
}

/// How many live `Library` values have run `ddp_init` on each loaded library,
/// keyed by the address of its `ddp_init` (the same for every load of one
/// file). The SDK is initialised once per process and shut down when the last
/// user goes away.
static INITIALISED: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

impl Library {
    /// Loads the library at `path` (a bare name is resolved by the dynamic
    /// loader's search path) and checks that it has every function the header
    /// in use declares (the list is generated from the bindings).
    ///
    /// Runs the library's initialisers: `path` must name a trusted DD Boost
    /// library (see [Trust](Library#trust)).
    pub fn load(path: impl AsRef<Path>) -> Result<Library, LoadError> {
        Self::load_os(
            path.as_ref().as_os_str(),
            path.as_ref().display().to_string(),
        )
    }

    fn load_os(name: &OsStr, origin: String) -> Result<Library, LoadError> {
        let api = adapter::open_library(name).map_err(|e| LoadError::Open {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        if let Some(symbol) = adapter::first_missing_symbol(&api) {
            return Err(LoadError::MissingSymbol { origin, symbol });
        }
        Ok(Library {
            inner: Arc::new(LibInner {
                api,
                origin,
                init: OnceLock::new(),
            }),
        })
    }

    /// Finds and loads the library. With `explicit` (the `ddboost_library`
    /// option), loads only that. Otherwise tries, in order:
    /// `<bindir>/../lib/libDDBoost.so` and `<bindir>/libDDBoost.so`, where
    /// `<bindir>` holds the running executable, then `libDDBoost.so` through
    /// the dynamic loader's search path. If nothing loads, the error lists
    /// every place tried and why it failed.
    ///
    /// Runs the initialisers of the library it loads: see
    /// [Trust](Library#trust).
    pub fn find(explicit: Option<&Path>) -> Result<Library, LoadError> {
        let exe = std::env::current_exe().ok();
        Self::find_with(explicit, exe.as_deref())
    }

    pub(crate) fn find_with(
        explicit: Option<&Path>,
        exe: Option<&Path>,
    ) -> Result<Library, LoadError> {
        if let Some(path) = explicit {
            return Self::load(path);
        }
        let mut tried = Vec::new();
        for candidate in candidates(exe) {
            let result = match &candidate {
                Candidate::Path(p) if !p.exists() => {
                    tried.push(Attempt {
                        place: candidate.place(),
                        reason: "no such file".into(),
                    });
                    continue;
                }
                Candidate::Path(p) => Self::load(p),
                Candidate::SearchPath => {
                    Self::load_os(OsStr::new(LIBRARY_FILE_NAME), candidate.place())
                }
            };
            match result {
                Ok(lib) => return Ok(lib),
                Err(e) => tried.push(Attempt {
                    place: candidate.place(),
                    reason: short_reason(&e),
                }),
            }
        }
        Err(LoadError::NotFound { tried })
    }

    /// The path or name this library was loaded from.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// Runs `ddp_init(program_name)` once for this library in this process.
    pub(crate) fn ensure_init(&self, program_name: &str) -> Result<()> {
        self.inner
            .init
            .get_or_init(|| {
                let program = adapter::c_string(program_name)
                    .ok_or_else(|| Error::local("ddp_init", "", "NUL byte in the program name"))?;
                let key = adapter::init_identity(&self.inner.api);
                let mut map = INITIALISED.lock().unwrap_or_else(|e| e.into_inner());
                let users = map.entry(key).or_insert(0);
                if *users == 0 {
                    Error::check(
                        "ddp_init",
                        String::new,
                        adapter::init(&self.inner.api, &program),
                    )?;
                }
                *users += 1;
                Ok(())
            })
            .clone()
    }
}

impl Drop for LibInner {
    fn drop(&mut self) {
        if !matches!(self.init.get(), Some(Ok(()))) {
            return;
        }
        let key = adapter::init_identity(&self.api);
        let mut map = INITIALISED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(users) = map.get_mut(&key) {
            *users -= 1;
            if *users == 0 {
                map.remove(&key);
                adapter::shutdown(&self.api);
            }
        }
    }
}

/// The reason part of a load error, without repeating the place.
fn short_reason(e: &LoadError) -> String {
    match e {
        LoadError::Open { reason, .. } => reason.clone(),
        LoadError::MissingSymbol { symbol, .. } => format!("lacks the DD Boost function {symbol}"),
        LoadError::NotFound { .. } => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_order() {
        let c = candidates(Some(Path::new("/opt/gp/bin/gpbackup_ddboost_plugin")));
        assert_eq!(
            c,
            vec![
                Candidate::Path(PathBuf::from("/opt/gp/lib/libDDBoost.so")),
                Candidate::Path(PathBuf::from("/opt/gp/bin/libDDBoost.so")),
                Candidate::SearchPath,
            ]
        );
        assert_eq!(candidates(None), vec![Candidate::SearchPath]);
    }

    #[test]
    fn missing_library_lists_every_place_tried() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("bin").join("plugin");
        let err = match Library::find_with(None, Some(&exe)) {
            Err(e) => e,
            Ok(lib) => {
                // The loader search path found a real libDDBoost.so.
                eprintln!("note: {} is installed; nothing to check", lib.origin());
                return;
            }
        };
        let LoadError::NotFound { tried } = &err else {
            panic!("unexpected {err}")
        };
        assert_eq!(tried.len(), 3, "{err}");
        let lib = dir.path().join("lib").join("libDDBoost.so");
        let bin = dir.path().join("bin").join("libDDBoost.so");
        assert_eq!(tried[0].place, lib.display().to_string());
        assert_eq!(tried[0].reason, "no such file");
        assert_eq!(tried[1].place, bin.display().to_string());
        assert_eq!(tried[2].place, "libDDBoost.so (loader search path)");
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(msg.contains(&lib.display().to_string()), "{msg}");
        assert!(msg.contains(&bin.display().to_string()), "{msg}");
        assert!(msg.contains("loader search path"), "{msg}");
    }

    #[test]
    fn explicit_path_is_the_only_place_tried() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere").join("libDDBoost.so");
        let err = Library::find_with(Some(&missing), Some(Path::new("/usr/bin/x"))).unwrap_err();
        assert!(matches!(err, LoadError::Open { .. }), "{err}");
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_library_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("libDDBoost.so");
        std::fs::write(&junk, b"this is not an ELF file").unwrap();
        let err = Library::load(&junk).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LoadError::Open { .. }), "{msg}");
        assert!(
            msg.starts_with(&format!("cannot load {}", junk.display())),
            "{msg}"
        );

        // The same file found through the lookup order is reported, and the
        // search goes on.
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("libDDBoost.so"), b"junk").unwrap();
        let err = Library::find_with(None, Some(&bin.join("plugin"))).unwrap_err();
        let LoadError::NotFound { tried } = &err else {
            panic!("unexpected {err}")
        };
        assert_ne!(tried[1].reason, "no such file", "{err}");
    }

    #[test]
    fn a_library_without_the_functions_names_the_missing_symbol() {
        // libc loads everywhere and has no ddp_* functions.
        let err = Library::load("libc.so.6").unwrap_err();
        match &err {
            LoadError::MissingSymbol { symbol, .. } => assert_eq!(*symbol, "ddp_init"),
            other => panic!("unexpected {other}"),
        }
        assert!(
            err.to_string()
                .contains("lacks the DD Boost function ddp_init"),
            "{err}"
        );
    }
}
