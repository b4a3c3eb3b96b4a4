//! The encryption key: gpbackup's injected option, or the plugin's entry of
//! the coordinator's `.encrypt` (a YAML map from plugin name to key), and
//! keeping a key in that file for `encrypt_password`.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{DecryptError, KeyFileProblem, KeySource};
use super::pgp::decrypt_password;
use super::{DATA_DIR_VARS, KEY_FILE_NAME, KEY_OPTION};

/// Characters of a generated key, before it is hex-encoded for `.encrypt`.
/// The key the gpbackup test bench writes has this form: hex of 30 lowercase
/// letters and digits.
const KEY_CHARS: usize = 30;
const KEY_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Largest key file read: a handful of plugin entries, with room to spare.
const MAX_KEY_FILE: u64 = 1 << 20;

/// Whether `encrypt_password` found the key or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key file already had the plugin's key: it is used as it is.
    Existing,
    /// A new key was generated and added to the key file (created if needed).
    Created,
}

/// The encryption key: `option` (the injected `gpbackup_ddboost_plugin` option)
/// when non-empty, else the `gpbackup_ddboost_plugin` entry of `<dir>/.encrypt`
/// for the first of `data_dirs` that has the file. Pass
/// [`data_dirs_from_env`] as `data_dirs` outside tests.
#[cfg(any(test, feature = "test-support"))]
pub fn find_key(option: Option<&str>, data_dirs: &[PathBuf]) -> Result<String, DecryptError> {
    find_key_with_source(option, data_dirs).map(|(key, _)| key)
}

/// Like [`find_key`], and says where the key came from.
pub fn find_key_with_source(
    option: Option<&str>,
    data_dirs: &[PathBuf],
) -> Result<(String, KeySource), DecryptError> {
    if let Some(key) = option.filter(|k| !k.is_empty()) {
        return Ok((key.to_string(), KeySource::Option));
    }
    for dir in data_dirs {
        let path = dir.join(KEY_FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(DecryptError::KeyFile {
                    path,
                    problem: KeyFileProblem::Unreadable(e.to_string()),
                })
            }
        };
        let key = key_from_file_text(&text).map_err(|problem| DecryptError::KeyFile {
            path: path.clone(),
            problem,
        })?;
        return Ok((key, KeySource::File(path)));
    }
    Err(DecryptError::NoKey {
        searched: data_dirs.to_vec(),
    })
}

/// Finds the key as [`find_key`] does and decrypts `hex_ciphertext` with it;
/// a wrong-key error names where the key came from.
pub fn decrypt_with_found_key(
    hex_ciphertext: &str,
    option: Option<&str>,
    data_dirs: &[PathBuf],
) -> Result<String, DecryptError> {
    let (key, source) = find_key_with_source(option, data_dirs)?;
    decrypt_password(hex_ciphertext, &key).map_err(|e| e.with_key_source(source))
}

/// The non-empty values of $COORDINATOR_DATA_DIRECTORY and
/// $MASTER_DATA_DIRECTORY, in that order.
pub fn data_dirs_from_env() -> Vec<PathBuf> {
    DATA_DIR_VARS
        .iter()
        .filter_map(std::env::var_os)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The plugin's entry of a `.encrypt` file. Other plugins' entries are
/// ignored; a `String` field takes any scalar as its raw text, so a key that
/// looks like a number keeps its exact digits.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "gpbackup_ddboost_plugin")]
    key: Option<String>,
}

fn key_from_file_text(text: &str) -> Result<String, KeyFileProblem> {
    // The error text of the YAML parser may quote the file's content (a key),
    // so only its position is kept.
    let parsed: Option<KeyFile> =
        serde_yaml_ng::from_str(text).map_err(|e| KeyFileProblem::NotYaml {
            line: e.location().map(|l| l.line()),
        })?;
    match parsed.and_then(|f| f.key) {
        None => Err(KeyFileProblem::MissingEntry),
        Some(k) if k.trim().is_empty() => Err(KeyFileProblem::EmptyEntry),
        Some(k) => Ok(k),
    }
}

/// A new key as it is stored in `.encrypt`: the hex of 30 random lowercase
/// letters and digits from the operating system's random source (about 155
/// bits), the form of the key in gpbackup's test bench.
pub fn generate_key() -> String {
    generate_key_with(&mut rand::rngs::OsRng)
}

fn generate_key_with<R: rand::Rng + rand::CryptoRng>(rng: &mut R) -> String {
    loop {
        let chars: Vec<u8> = (0..KEY_CHARS)
            .map(|_| KEY_ALPHABET[rng.gen_range(0..KEY_ALPHABET.len())])
            .collect();
        let hex = hex::encode(&chars);
        // Every YAML reader must take the stored value as text: keep only
        // keys whose hex has a digit letter other than `e` (else it could
        // read as an integer or, with one `e`, as a float). About 1 key in
        // 250 is drawn again.
        if hex.bytes().any(|c| matches!(c, b'a'..=b'd' | b'f')) {
            return hex;
        }
    }
}

/// The key file `encrypt_password` uses when none is named: `.encrypt` in
/// the first of `data_dirs` that has one, else in the first of them (so
/// [`find_key`] reads the same file afterwards). None without directories.
pub fn key_file_for(data_dirs: &[PathBuf]) -> Option<PathBuf> {
    data_dirs
        .iter()
        .map(|d| d.join(KEY_FILE_NAME))
        .find(|p| std::fs::symlink_metadata(p).is_ok())
        .or_else(|| data_dirs.first().map(|d| d.join(KEY_FILE_NAME)))
}

/// Checks, without changing anything, that `path` can be the key file: it
/// is absent, or a regular file (not a symbolic link) owned by this user.
/// [`ensure_key`] checks the same again when it opens the file.
pub fn check_key_file(path: &Path) -> crate::error::Result<()> {
    match open_key_file(path)? {
        Some(_) => Ok(()),
        None => check_may_create(path),
    }
}

/// The plugin's key from the key file `path` (a YAML map of plugin name to
/// key, the `.encrypt` gpbackup reads), adding a new one when the file or
/// the entry is missing. An existing key is never replaced, and the file's
/// other entries, comments and layout are kept: the new entry is appended
/// as one line. The file is rewritten whole under a temporary name and
/// renamed into place (created with a hard link, so a file made meanwhile
/// is not replaced), with mode 0600. Symbolic links, other kinds of files,
/// files of other users, and files that are not a YAML map are refused.
/// Runs of `encrypt_password` at the same time agree on one key (a lock on
/// the file, and a new file is only ever linked into place if absent).
pub fn ensure_key(path: &Path) -> crate::error::Result<(String, KeyOrigin)> {
    use nix::fcntl::{Flock, FlockArg};
    for _ in 0..50 {
        let Some(file) = open_key_file(path)? else {
            check_may_create(path)?;
            let key = generate_key();
            if write_key_file(path, &format!("{KEY_OPTION}: {key}\n"), false)? {
                return Ok((key, KeyOrigin::Created));
            }
            continue; // another run created it first: read theirs
        };
        let file = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| key_file_error(path, format!("cannot lock it: {e}")))?;
        // The lock is on this inode: another run may have replaced the file
        // while this one waited.
        if !still_named_by(&file, path)? {
            continue;
        }
        let mut text = String::new();
        (&*file)
            .take(MAX_KEY_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| key_file_error(path, format!("cannot read it as text: {e}")))?;
        if text.len() as u64 > MAX_KEY_FILE {
            return Err(key_file_error(
                path,
                "it is larger than 1 MiB, not a key file".into(),
            ));
        }
        return match key_from_file_text(&text) {
            Ok(key) => Ok((key, KeyOrigin::Existing)),
            Err(KeyFileProblem::MissingEntry) => {
                let key = generate_key();
                let new_text = with_entry_added(&text, &key).ok_or_else(|| {
                    key_file_error(
                        path,
                        format!("a {KEY_OPTION} entry cannot be appended to it without changing its other entries (is it a flow-style YAML map?); add the entry by hand or fix the file"),
                    )
                })?;
                write_key_file(path, &new_text, true)?;
                Ok((key, KeyOrigin::Created))
            }
            Err(KeyFileProblem::EmptyEntry) => Err(key_file_error(
                path,
                format!("its {KEY_OPTION} entry is empty; remove that line and run encrypt_password again"),
            )),
            Err(KeyFileProblem::NotYaml { line }) => Err(key_file_error(
                path,
                format!(
                    "it is not a YAML map{}; fix it or move it away (passwords encrypted with its key need it)",
                    line.map(|l| format!(" (problem at line {l})")).unwrap_or_default()
                ),
            )),
            Err(KeyFileProblem::Unreadable(e)) => Err(key_file_error(path, e)),
        };
    }
    Err(key_file_error(
        path,
        "it keeps being replaced by another process; try again".into(),
    ))
}

fn key_file_error(path: &Path, why: String) -> crate::error::Error {
    crate::error::Error::invalid(format!("key file {}: {why}", path.display()))
}

/// Opens the key file for reading without following a symbolic link or
/// blocking on a FIFO; None when it does not exist. Only a regular file
/// owned by this user is accepted.
fn open_key_file(path: &Path) -> crate::error::Result<Option<std::fs::File>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(key_file_error(
                path,
                "it is a symbolic link; refusing to use it (the key file must be a regular file: replace the link by the file it points to)".into(),
            ))
        }
        Err(e) => return Err(key_file_error(path, format!("cannot open it: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| key_file_error(path, format!("cannot inspect it: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(key_file_error(
            path,
            "it is not a regular file; refusing to use it".into(),
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(key_file_error(
            path,
            format!(
                "it belongs to user id {} but this is user id {me}; run encrypt_password as the user that owns the key file (the one running gpbackup)",
                meta.uid()
            ),
        ));
    }
    Ok(Some(file))
}

/// A new key file must be readable by the user that runs gpbackup: root
/// may not create one in another user's folder (it would be root's, mode
/// 0600, and gpbackup could not read it).
fn check_may_create(path: &Path) -> crate::error::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = parent_of(path);
    let meta = std::fs::metadata(&dir).map_err(|e| {
        key_file_error(
            path,
            format!("cannot create it: folder {}: {e}", dir.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(key_file_error(
            path,
            format!("cannot create it: {} is not a folder", dir.display()),
        ));
    }
    if nix::unistd::geteuid().is_root() && meta.uid() != 0 {
        return Err(key_file_error(
            path,
            format!(
                "refusing to create it as root in {}, which belongs to user id {}: run encrypt_password as that user (the one running gpbackup)",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn still_named_by(file: &std::fs::File, path: &Path) -> crate::error::Result<bool> {
    crate::process::private::still_names(path, file)
        .map_err(|e| key_file_error(path, format!("cannot inspect it: {e}")))
}

/// `text` with the line `gpbackup_ddboost_plugin: <key>` appended, if that
/// leaves every other entry exactly as it was and reads back as `key`.
fn with_entry_added(text: &str, key: &str) -> Option<String> {
    use serde_yaml_ng::{Mapping, Value};
    let mut new_text = text.to_string();
    if !new_text.is_empty() && !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push_str(&format!("{KEY_OPTION}: {key}\n"));
    let before: Mapping = serde_yaml_ng::from_str::<Option<Mapping>>(text)
        .ok()?
        .unwrap_or_default();
    let mut after: Mapping = serde_yaml_ng::from_str::<Option<Mapping>>(&new_text).ok()??;
    after.remove(Value::String(KEY_OPTION.to_string()))?;
    let reads_back = key_from_file_text(&new_text).ok()? == key;
    (reads_back && after == before).then_some(new_text)
}

/// Writes `text` as the key file `path` with mode 0600: to a temporary in
/// the same folder, flushed, then renamed over `path` (`replace`) or linked
/// to `path` only if absent. Returns false when `replace` is off and the
/// file exists. Nothing is left behind on failure or signal.
fn write_key_file(path: &Path, text: &str, replace: bool) -> crate::error::Result<bool> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| KEY_FILE_NAME.to_string());
    let temp = dir.join(crate::process::temp::temp_name(&name));
    let guard = crate::process::signals::CleanupGuard::remove_file(temp.clone());
    let write_error = |e: io::Error| {
        key_file_error(
            path,
            format!("cannot write it (temporary {}): {e}", temp.display()),
        )
    };
    crate::process::private::write_new_file(&temp, 0o600, text.as_bytes()).map_err(write_error)?;
    let placed = if replace {
        guard.disarm_with(|| {
            std::fs::rename(&temp, path)
                .map_err(|e| key_file_error(path, format!("cannot replace it: {e}")))
        })?;
        true
    } else {
        let linked = match std::fs::hard_link(&temp, path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(key_file_error(path, format!("cannot create it: {e}"))),
        };
        drop(guard); // removes the temporary; the file stays under `path`
        linked
    };
    if placed {
        // The new name must survive a crash too.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::super::pgp::decode_hex;
    use super::super::test_vectors::*;
    use super::*;
    use std::fs;

    const ENCRYPT_FILE: &str = "\
gpbackup_s3_plugin: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
gpbackup_ddboost_plugin: 6b3376397130783776d3270357238743177347936
some_other_plugin: \"quoted value\"
";

    #[test]
    fn find_key_prefers_the_option() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".encrypt"), ENCRYPT_FILE).unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        assert_eq!(find_key(Some(KEY), &dirs).unwrap(), KEY);
        assert_eq!(
            find_key_with_source(Some(KEY), &[]).unwrap(),
            (KEY.to_string(), KeySource::Option)
        );
    }

    #[test]
    fn find_key_reads_first_dir_that_has_the_file() {
        let missing = tempfile::tempdir().unwrap();
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        fs::write(first.path().join(".encrypt"), ENCRYPT_FILE).unwrap();
        fs::write(
            second.path().join(".encrypt"),
            "gpbackup_ddboost_plugin: not-this-one\n",
        )
        .unwrap();
        let dirs = vec![
            missing.path().to_path_buf(),
            first.path().to_path_buf(),
            second.path().to_path_buf(),
        ];
        // An empty option counts as absent.
        for option in [None, Some("")] {
            let (key, source) = find_key_with_source(option, &dirs).unwrap();
            assert_eq!(key, "6b3376397130783776d3270357238743177347936");
            assert_eq!(source, KeySource::File(first.path().join(".encrypt")));
        }
    }

    #[test]
    fn find_key_keeps_number_like_keys_exact() {
        let dir = tempfile::tempdir().unwrap();
        // Hex of an all a-i/p-y/digit key is all digits: it must not become a number.
        let digits = "706172617331323334353637383930616263646566676869707172737475";
        fs::write(
            dir.path().join(".encrypt"),
            format!("gpbackup_ddboost_plugin: {digits}\nother: 1e5\n"),
        )
        .unwrap();
        let key = find_key(None, &[dir.path().to_path_buf()]).unwrap();
        assert_eq!(key, digits);
    }

    #[test]
    fn find_key_then_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(".encrypt"),
            format!("gpbackup_s3_plugin: x\ngpbackup_ddboost_plugin: {HEX_KEY_DECODED_USED}\n"),
        )
        .unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        let pw = decrypt_with_found_key(&vector("pgcrypto_aes256_decoded_key.hex"), None, &dirs)
            .unwrap();
        assert_eq!(pw, "Rep1ication-secret");
        let e = decrypt_with_found_key(&vector("pgcrypto_aes256.hex"), None, &dirs).unwrap_err();
        let where_ = dir.path().join(".encrypt");
        assert_eq!(
            e,
            DecryptError::WrongKey {
                source: Some(KeySource::File(where_.clone()))
            }
        );
        assert!(e.to_string().contains(&where_.display().to_string()));
        assert_no_secrets(&e, &[HEX_KEY_DECODED_USED]);
    }

    #[test]
    fn find_key_errors_when_none() {
        let empty = tempfile::tempdir().unwrap();
        let dirs = vec![empty.path().to_path_buf()];
        let e = find_key(None, &dirs).unwrap_err();
        assert_eq!(
            e,
            DecryptError::NoKey {
                searched: dirs.clone()
            }
        );
        let text = e.to_string();
        assert!(text.contains("option gpbackup_ddboost_plugin"), "{text}");
        assert!(text.contains("COORDINATOR_DATA_DIRECTORY"), "{text}");
        assert!(
            text.contains(&empty.path().join(".encrypt").display().to_string()),
            "{text}"
        );

        let e = find_key(Some(""), &[]).unwrap_err();
        assert!(e.to_string().contains("neither COORDINATOR_DATA_DIRECTORY"));
    }

    #[test]
    fn find_key_reports_a_bad_key_file_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".encrypt");
        let dirs = vec![dir.path().to_path_buf()];
        let cases: [(&str, KeyFileProblem); 5] = [
            (
                "gpbackup_s3_plugin: secretvalue1234\n",
                KeyFileProblem::MissingEntry,
            ),
            ("", KeyFileProblem::MissingEntry),
            (
                "gpbackup_ddboost_plugin: \"\"\n",
                KeyFileProblem::EmptyEntry,
            ),
            (
                "secretvalue1234\n",
                KeyFileProblem::NotYaml { line: Some(1) },
            ),
            (
                "gpbackup_ddboost_plugin: [secretvalue1234\n",
                KeyFileProblem::NotYaml { line: Some(2) },
            ),
        ];
        for (text, problem) in cases {
            fs::write(&path, text).unwrap();
            let e = find_key(None, &dirs).unwrap_err();
            let expected = DecryptError::KeyFile {
                path: path.clone(),
                problem: problem.clone(),
            };
            if let KeyFileProblem::NotYaml { .. } = problem {
                assert!(
                    matches!(
                        &e,
                        DecryptError::KeyFile {
                            problem: KeyFileProblem::NotYaml { .. },
                            ..
                        }
                    ),
                    "{text:?}: {e:?}"
                );
            } else {
                assert_eq!(e, expected, "{text:?}");
            }
            assert!(e.to_string().contains(&path.display().to_string()));
            assert_no_secrets(&e, &["secretvalue1234"]);
        }
    }

    #[test]
    fn find_key_reports_an_unreadable_key_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read as one.
        fs::create_dir(dir.path().join(".encrypt")).unwrap();
        let e = find_key(None, &[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            matches!(
                &e,
                DecryptError::KeyFile {
                    problem: KeyFileProblem::Unreadable(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .starts_with("cannot read the encryption key file"));
    }

    // ---- encrypt_password ----
    #[test]
    fn generated_keys_look_like_the_bench_key() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        for k in [&a, &b] {
            assert_eq!(k.len(), 60);
            let text = decode_hex(k).unwrap();
            assert!(
                text.iter().all(|c| KEY_ALPHABET.contains(c)),
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            // Stored unquoted, it reads back as the same text.
            assert_eq!(
                key_from_file_text(&format!("{KEY_OPTION}: {k}\n")).unwrap(),
                *k
            );
        }
        // An all-digit hex is never produced, even when the source tries.
        struct Digits(u64);
        impl rand::RngCore for Digits {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                // Only 'a'..='i' ('61'..'69') for the first 200 draws.
                self.0 += 1;
                if self.0 < 200 {
                    0
                } else {
                    self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                }
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                for b in dest {
                    *b = self.next_u32() as u8;
                }
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
        impl rand::CryptoRng for Digits {}
        let k = generate_key_with(&mut Digits(0));
        assert!(k.bytes().any(|c| matches!(c, b'a'..=b'd' | b'f')), "{k}");
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn ensure_key_creates_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".encrypt");
        let (key, origin) = ensure_key(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("gpbackup_ddboost_plugin: {key}\n")
        );
        assert_eq!(
            ensure_key(&path).unwrap(),
            (key.clone(), KeyOrigin::Existing)
        );
        assert_eq!(find_key(None, &[dir.path().to_path_buf()]).unwrap(), key);
        // Only the key file is left, no temporaries.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn ensure_key_keeps_other_entries_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".encrypt");
        let before = "# keys of the backup plugins\ngpbackup_s3_plugin: 0123456789\nother: \"quoted: value\"";
        fs::write(&path, before).unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let (key, origin) = ensure_key(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        let after = fs::read_to_string(&path).unwrap();
        assert_eq!(after, format!("{before}\ngpbackup_ddboost_plugin: {key}\n"));
        assert_eq!(mode(&path), 0o600);
        // An existing key, in any YAML form, is used as it is.
        fs::write(&path, "a: b\ngpbackup_ddboost_plugin: 'k3v9'\n").unwrap();
        assert_eq!(
            ensure_key(&path).unwrap(),
            ("k3v9".into(), KeyOrigin::Existing)
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "a: b\ngpbackup_ddboost_plugin: 'k3v9'\n"
        );
    }

    #[test]
    fn ensure_key_refuses_what_it_must_not_touch() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, "a: b\n").unwrap();
        let link = dir.path().join(".encrypt");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = ensure_key(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(check_key_file(&link).is_err());
        assert_eq!(fs::read_to_string(&real).unwrap(), "a: b\n");

        let sub = dir.path().join("dir");
        fs::create_dir(&sub).unwrap();
        let e = ensure_key(&sub).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = ensure_key(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");

        let cases = [
            ("secretvalue1234\n", "not a YAML map"),
            ("{a: b}\n", "cannot be appended"),
            ("gpbackup_ddboost_plugin: \"\"\n", "entry is empty"),
        ];
        let path = dir.path().join("bad");
        for (text, why) in cases {
            fs::write(&path, text).unwrap();
            let e = ensure_key(&path).unwrap_err();
            assert!(e.to_string().contains(why), "{text:?}: {e}");
            assert!(!e.to_string().contains("secretvalue1234"), "{e}");
            assert_eq!(fs::read_to_string(&path).unwrap(), text, "left unchanged");
        }

        let e = ensure_key(&dir.path().join("missing/.encrypt")).unwrap_err();
        assert!(e.to_string().contains("cannot create it"), "{e}");
    }

    #[test]
    fn concurrent_ensure_key_agrees_on_one_key() {
        for start in ["", "gpbackup_s3_plugin: x\n"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(".encrypt");
            if !start.is_empty() {
                fs::write(&path, start).unwrap();
            }
            let keys: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| ensure_key(&path).unwrap().0))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
            let text = fs::read_to_string(&path).unwrap();
            assert_eq!(text.matches("gpbackup_ddboost_plugin").count(), 1, "{text}");
            assert!(text.starts_with(start));
        }
    }

    #[test]
    fn key_file_for_follows_find_key() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(key_file_for(&dirs), Some(a.path().join(".encrypt")));
        fs::write(b.path().join(".encrypt"), "x: y\n").unwrap();
        assert_eq!(key_file_for(&dirs), Some(b.path().join(".encrypt")));
        assert_eq!(key_file_for(&[]), None);
    }
}
