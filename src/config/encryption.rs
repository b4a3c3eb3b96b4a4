//! Encrypted passwords in the plugin config (`password_encryption: on`).
//!
//! `gpbackup_manager encrypt-password` prints the password as hex of an
//! OpenPGP message made by pgcrypto's
//! `pgp_sym_encrypt(password, key, 'cipher-algo=aes256')`: a v4 symmetric-key
//! encrypted session key packet (AES-256, iterated and salted S2K with SHA-1)
//! followed by integrity-protected encrypted data (with MDC) holding one
//! literal data packet. The key ("passphrase") lives in the coordinator's
//! `<data directory>/.encrypt`, a YAML map from plugin name to key; gpbackup
//! injects it into the plugin config as the option `gpbackup_ddboost_plugin`.
//! Direct callers (gpbackman, gpbackup_manager) pass no such option, so the
//! file is then read from `$COORDINATOR_DATA_DIRECTORY` or
//! `$MASTER_DATA_DIRECTORY`.
//!
//! Whether the passphrase is the key text as stored or, when that text is hex,
//! the text it decodes to, is not settled; both are tried, stored form first.
//!
//! For the forks without gpbackup_manager, [`encrypt_password`] makes the same
//! ciphertext (with the key as stored as the passphrase) and [`ensure_key`]
//! keeps the key in `.encrypt` (`gpbackup_ddboost_plugin encrypt_password`).
//!
//! No error of this module carries the key, the ciphertext or the plaintext.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pgp::composed::Message;
use pgp::types::Password;
use serde::Deserialize;

/// The option gpbackup injects the key under, and the plugin's entry in
/// `.encrypt`: the plugin's name (`crate::about::PLUGIN_NAME`).
pub const KEY_OPTION: &str = crate::about::PLUGIN_NAME;

/// The key file's name inside the coordinator data directory.
pub const KEY_FILE_NAME: &str = ".encrypt";

/// The environment variables naming the coordinator data directory, in the
/// order they are looked at.
pub const DATA_DIR_VARS: [&str; 2] = ["COORDINATOR_DATA_DIRECTORY", "MASTER_DATA_DIRECTORY"];

/// Longest plaintext accepted: a password, not a document.
const MAX_PLAINTEXT: u64 = 64 * 1024;

/// Where an encryption key came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `gpbackup_ddboost_plugin` option of the plugin config.
    Option,
    /// The `gpbackup_ddboost_plugin` entry of this `.encrypt` file.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Option => write!(f, "option {KEY_OPTION}"),
            KeySource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why a key file could not give a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileProblem {
    /// Reading failed (permissions, a directory, ...): the I/O error text.
    Unreadable(String),
    /// Not a YAML map; the position of the syntax problem when known.
    NotYaml { line: Option<usize> },
    /// The map has no `gpbackup_ddboost_plugin` entry.
    MissingEntry,
    /// The entry is present but empty.
    EmptyEntry,
}

/// A failure to find the key or to decrypt the password. Holds no secret:
/// only paths, I/O error texts and the kind of failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptError {
    /// The encrypted password is empty or not hex.
    NotHex,
    /// The hex does not decode to a password-encrypted OpenPGP message.
    NotOpenPgp,
    /// No form of the key decrypts the message: wrong key, or a damaged value.
    WrongKey { source: Option<KeySource> },
    /// Decryption worked but the password is not UTF-8 text.
    NotUtf8,
    /// Decryption worked but the plaintext is implausibly long.
    TooLong,
    /// No key option and no `.encrypt` in any of these directories.
    NoKey { searched: Vec<PathBuf> },
    /// A `.encrypt` file was found but gives no key.
    KeyFile {
        path: PathBuf,
        problem: KeyFileProblem,
    },
}

impl DecryptError {
    /// Names where the key came from in a `WrongKey` error; other errors are
    /// returned unchanged.
    pub fn with_key_source(self, key_source: KeySource) -> Self {
        match self {
            DecryptError::WrongKey { .. } => DecryptError::WrongKey {
                source: Some(key_source),
            },
            other => other,
        }
    }
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RERUN: &str =
            "re-run gpbackup_manager encrypt-password (or gpbackup_ddboost_plugin encrypt_password) on the coordinator and paste its output into the plugin config";
        match self {
            DecryptError::NotHex => write!(
                f,
                "the encrypted password is not hex: paste the value exactly as gpbackup_manager encrypt-password printed it, or set password_encryption off for a plain-text password"
            ),
            DecryptError::NotOpenPgp => write!(
                f,
                "the encrypted password is not password-encrypted OpenPGP data: paste the value exactly as gpbackup_manager encrypt-password printed it, or set password_encryption off for a plain-text password"
            ),
            DecryptError::WrongKey { source } => {
                let from = match source {
                    Some(s) => s.to_string(),
                    None => format!("option {KEY_OPTION} or {KEY_FILE_NAME}"),
                };
                write!(
                    f,
                    "the encrypted password cannot be decrypted with the key from {from} (wrong key or damaged value); {RERUN}"
                )
            }
            DecryptError::NotUtf8 => write!(
                f,
                "the decrypted password is not UTF-8 text; {RERUN}"
            ),
            DecryptError::TooLong => write!(
                f,
                "the decrypted password is longer than {MAX_PLAINTEXT} bytes; {RERUN}"
            ),
            DecryptError::NoKey { searched } => {
                write!(
                    f,
                    "no encryption key to decrypt the password: gpbackup passes it as option {KEY_OPTION}; when calling the plugin directly set COORDINATOR_DATA_DIRECTORY to the coordinator data directory so its {KEY_FILE_NAME} can be read"
                )?;
                if searched.is_empty() {
                    write!(f, " (neither COORDINATOR_DATA_DIRECTORY nor MASTER_DATA_DIRECTORY is set)")
                } else {
                    let list: Vec<String> = searched
                        .iter()
                        .map(|d| d.join(KEY_FILE_NAME).display().to_string())
                        .collect();
                    write!(f, " (not found: {})", list.join(", "))
                }
            }
            DecryptError::KeyFile { path, problem } => {
                let path = path.display();
                match problem {
                    KeyFileProblem::Unreadable(e) => write!(
                        f,
                        "cannot read the encryption key file {path}: {e}; make it readable by this user"
                    ),
                    KeyFileProblem::NotYaml { line } => {
                        write!(f, "the encryption key file {path} is not a YAML map")?;
                        if let Some(l) = line {
                            write!(f, " (problem at line {l})")?;
                        }
                        write!(f, "; restore it from the coordinator or {RERUN}")
                    }
                    KeyFileProblem::MissingEntry => write!(
                        f,
                        "the encryption key file {path} has no {KEY_OPTION} entry; {RERUN}"
                    ),
                    KeyFileProblem::EmptyEntry => write!(
                        f,
                        "the {KEY_OPTION} entry of the encryption key file {path} is empty; {RERUN}"
                    ),
                }
            }
        }
    }
}

impl std::error::Error for DecryptError {}

/// Decrypts a password stored as hex-encoded OpenPGP symmetric ciphertext
/// (pgcrypto pgp_sym_encrypt output) with the encryption key. Tries the key
/// as given, then its hex-decoded text when it is hex. Errors never contain
/// the key, the ciphertext or the plaintext.
///
/// Surrounding whitespace of the hex is ignored; upper- and lowercase hex
/// digits are accepted. The password is returned byte for byte as encrypted.
pub fn decrypt_password(hex_ciphertext: &str, key: &str) -> Result<String, DecryptError> {
    let data = decode_hex(hex_ciphertext.trim()).ok_or(DecryptError::NotHex)?;
    if key.is_empty() {
        return Err(DecryptError::NoKey {
            searched: Vec::new(),
        });
    }
    let mut passphrases: Vec<Vec<u8>> = vec![key.as_bytes().to_vec()];
    if let Some(decoded) = decode_hex(key) {
        if !decoded.is_empty() && decoded.iter().all(u8::is_ascii_graphic) {
            passphrases.push(decoded);
        }
    }
    for passphrase in &passphrases {
        match try_decrypt(&data, passphrase) {
            Ok(plain) => return String::from_utf8(plain).map_err(|_| DecryptError::NotUtf8),
            Err(Attempt::WrongKey) => continue,
            Err(Attempt::Fatal(e)) => return Err(e),
        }
    }
    Err(DecryptError::WrongKey { source: None })
}

/// The encryption key: `option` (the injected `gpbackup_ddboost_plugin` option)
/// when non-empty, else the `gpbackup_ddboost_plugin` entry of `<dir>/.encrypt`
/// for the first of `data_dirs` that has the file. Pass
/// [`data_dirs_from_env`] as `data_dirs` outside tests.
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

enum Attempt {
    /// This passphrase does not open the message; another one may.
    WrongKey,
    /// No passphrase can help.
    Fatal(DecryptError),
}

/// Decrypts `data` with one passphrase. Wrong keys and damaged ciphertext
/// look alike (the S2K quick check or the MDC fails), so both are `WrongKey`.
fn try_decrypt(data: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, Attempt> {
    let message =
        Message::from_bytes(data).map_err(|_| Attempt::Fatal(DecryptError::NotOpenPgp))?;
    if !message.is_encrypted() {
        return Err(Attempt::Fatal(DecryptError::NotOpenPgp));
    }
    let message = message
        .decrypt_with_password(&Password::from(passphrase))
        .map_err(|_| Attempt::WrongKey)?;
    // pgcrypto compresses only when asked to (compress-algo); accept it anyway.
    let mut message = message.decompress().map_err(|_| Attempt::WrongKey)?;
    if message.is_encrypted() {
        return Err(Attempt::Fatal(DecryptError::NotOpenPgp));
    }
    let mut plain = Vec::new();
    (&mut message)
        .take(MAX_PLAINTEXT + 1)
        .read_to_end(&mut plain)
        .map_err(|_| Attempt::WrongKey)?;
    if plain.len() as u64 > MAX_PLAINTEXT {
        return Err(Attempt::Fatal(DecryptError::TooLong));
    }
    Ok(plain)
}

/// Decodes a non-empty, even-length string of hex digits (either case).
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() {
        return None;
    }
    hex::decode(s).ok()
}

// ---- Encrypting passwords and keeping the key (encrypt_password) ----------------------------
//
// What `gpbackup_ddboost_plugin encrypt_password` needs on forks that ship
// gpbackup but no gpbackup_manager (Cloudberry, Greengage, WarehousePG): a
// key in `.encrypt` in the form gpbackup reads and injects, and the password
// encrypted the way pgcrypto's `pgp_sym_encrypt(password, key,
// 'cipher-algo=aes256')` does it, byte layout included.

/// Characters of a generated key, before it is hex-encoded for `.encrypt`.
/// The key the gpbackup test bench writes has this form: hex of 30 lowercase
/// letters and digits.
const KEY_CHARS: usize = 30;
const KEY_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Largest key file read: a handful of plugin entries, with room to spare.
const MAX_KEY_FILE: u64 = 1 << 20;
/// The S2K iteration counts pgcrypto picks from (coded 0x60 = 65536 bytes
/// hashed, 0x7f = 253952): it chooses one at random for every message.
const S2K_COUNTS: std::ops::RangeInclusive<u8> = 0x60..=0x7f;

/// Whether `encrypt_password` found the key or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key file already had the plugin's key: it is used as it is.
    Existing,
    /// A new key was generated and added to the key file (created if needed).
    Created,
}

/// Checks a password before it is encrypted: the DD Boost password is one
/// line of text, passed to the SDK as a C string. Errors never show it.
pub fn check_password(password: &str) -> crate::error::Result<()> {
    let problem = if password.is_empty() {
        "the password is empty"
    } else if password.contains(['\n', '\r']) {
        "the password must be a single line"
    } else if password.contains('\0') {
        "the password must not contain a NUL character"
    } else if password.len() as u64 > MAX_PLAINTEXT {
        "the password is longer than 65536 bytes"
    } else {
        return Ok(());
    };
    Err(crate::error::Error::invalid(problem))
}

/// Encrypts `password` for `password_encryption: on` with `key`, the
/// `gpbackup_ddboost_plugin` entry of `.encrypt` exactly as stored, and
/// returns the hex to paste into the plugin config.
///
/// The result is what pgcrypto's `encode(pgp_sym_encrypt(password, key,
/// 'cipher-algo=aes256'), 'hex')` makes (the call gpbackup_manager
/// encrypt-password uses): a v4 symmetric-key encrypted session key packet
/// (AES-256, iterated and salted S2K with SHA-1, a random salt and a random
/// count from pgcrypto's range, no encrypted session key: the S2K output is
/// the message key), then a SEIPD v1 packet (random prefix, MDC) holding a
/// text-mode literal data packet with no file name. Both headers are in the
/// new packet format, as pgcrypto writes them. [`decrypt_password`] reads it
/// with the key as stored (its first try), and so does pgcrypto:
/// `pgp_sym_decrypt(decode('<hex>', 'hex'), '<key as in .encrypt>')`.
pub fn encrypt_password(password: &str, key: &str) -> crate::error::Result<String> {
    check_password(password)?;
    if key.is_empty() {
        return Err(crate::error::Error::invalid("the encryption key is empty"));
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let message = encrypt_with(
        &mut rand::rngs::OsRng,
        password.as_bytes(),
        key.as_bytes(),
        created,
    )?;
    Ok(encode_hex(&message))
}

/// [`encrypt_password`] with a given random source and literal packet date.
fn encrypt_with<R: rand::Rng + rand::CryptoRng>(
    rng: &mut R,
    plaintext: &[u8],
    passphrase: &[u8],
    created: u32,
) -> crate::error::Result<Vec<u8>> {
    use pgp::crypto::hash::HashAlgorithm;
    use pgp::crypto::sym::SymmetricKeyAlgorithm;
    use pgp::packet::{
        PacketHeader, PacketTrait, SymEncryptedProtectedData, SymKeyEncryptedSessionKey,
    };
    use pgp::ser::Serialize;
    use pgp::types::{StringToKey, Tag};

    // The crate's message text names no secret, only what failed.
    let failed =
        |e: pgp::errors::Error| crate::error::Error::invalid(format!("cannot encrypt: {e}"));
    let alg = SymmetricKeyAlgorithm::AES256;
    let mut salt = [0u8; 8];
    rng.fill_bytes(&mut salt);
    let s2k = StringToKey::IteratedAndSalted {
        hash_alg: HashAlgorithm::Sha1,
        salt,
        count: rng.gen_range(S2K_COUNTS),
    };
    let message_key = s2k.derive_key(passphrase, alg.key_size()).map_err(failed)?;
    // Version, cipher, S2K (type, hash, salt, count) and no encrypted key.
    let skesk_len = (2 + s2k.write_len()) as u32;
    let skesk = SymKeyEncryptedSessionKey::V4 {
        packet_header: PacketHeader::new_fixed(Tag::SymKeyEncryptedSessionKey, skesk_len),
        sym_algorithm: alg,
        s2k,
        encrypted_key: pgp::bytes::Bytes::new(),
    };
    let literal = literal_packet(plaintext, created);
    let seipd =
        SymEncryptedProtectedData::encrypt_seipdv1(&mut *rng, alg, message_key.as_ref(), &literal)
            .map_err(failed)?;
    let mut out = Vec::new();
    skesk.to_writer_with_header(&mut out).map_err(failed)?;
    seipd.to_writer_with_header(&mut out).map_err(failed)?;
    Ok(out)
}

/// A new-format literal data packet as pgcrypto writes it for text: mode
/// `t`, no file name, the creation time, the bytes unchanged.
fn literal_packet(data: &[u8], created: u32) -> zeroize::Zeroizing<Vec<u8>> {
    const TAG_LITERAL: u8 = 11;
    let body_len = 6 + data.len();
    let mut p = zeroize::Zeroizing::new(Vec::with_capacity(body_len + 6));
    p.push(0xC0 | TAG_LITERAL);
    if body_len < 192 {
        p.push(body_len as u8);
    } else if body_len < 8384 {
        let l = body_len - 192;
        p.push((l >> 8) as u8 + 192);
        p.push(l as u8);
    } else {
        p.push(0xFF);
        p.extend_from_slice(&(body_len as u32).to_be_bytes());
    }
    p.push(b't');
    p.push(0);
    p.extend_from_slice(&created.to_be_bytes());
    p.extend_from_slice(data);
    p
}

fn encode_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
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
        let hex = encode_hex(&chars);
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
    use std::os::unix::fs::MetadataExt;
    let open = file
        .metadata()
        .map_err(|e| key_file_error(path, format!("cannot inspect it: {e}")))?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(key_file_error(path, format!("cannot inspect it: {e}"))),
    }
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
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| KEY_FILE_NAME.to_string());
    let temp = dir.join(crate::storage::temp_name(&name));
    let guard = crate::process::signals::CleanupGuard::remove_file(temp.clone());
    let write_error = |e: io::Error| {
        key_file_error(
            path,
            format!("cannot write it (temporary {}): {e}", temp.display()),
        )
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&temp)
        .map_err(write_error)?;
    // The mode asked for at creation is reduced by the umask; set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(write_error)?;
    f.write_all(text.as_bytes()).map_err(write_error)?;
    f.sync_all().map_err(write_error)?;
    drop(f);
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
    //! Vectors in tests/data/encryption/ (see its README.md): the
    //! `pgcrypto_*` ones are real `pgp_sym_encrypt` output from PostgreSQL 15's
    //! pgcrypto, made the way gpbackup_manager encrypt-password makes them; the
    //! `gpg_*` one comes from GnuPG as an independent second implementation.
    //! The keys and passwords below are test values only.

    use super::*;
    use std::fs;
    use std::path::Path;

    /// A 30-character lowercase alphanumeric key, used as stored.
    const KEY: &str = "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8";
    /// A stored key whose hex-decoded text ("q8w2e4r6t8y0u2i4o6p8a0s2d4f6g8")
    /// was the passphrase.
    const HEX_KEY_DECODED_USED: &str =
        "713877326534723674387930753269346f36703861307332643466366738";
    /// A stored hex key that was itself the passphrase.
    const HEX_KEY_AS_IS: &str = "6d336e356237763978317a3263346b366a38683967306631643373356137";

    fn vector(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/encryption")
            .join(name);
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn assert_no_secrets(e: &DecryptError, secrets: &[&str]) {
        let shown = format!("{e} {e:?}");
        for s in secrets {
            assert!(!shown.contains(s), "error text shows a secret: {shown}");
        }
    }

    #[test]
    fn pgcrypto_vectors_start_like_the_documented_example() {
        for name in [
            "pgcrypto_aes256.hex",
            "pgcrypto_aes256_decoded_key.hex",
            "pgcrypto_aes256_hex_key_as_is.hex",
            "pgcrypto_aes256_utf8.hex",
            "pgcrypto_aes256_zlib.hex",
        ] {
            let v = vector(name);
            // SKESK v4, AES-256, iterated+salted S2K, SHA-1; then SEIPD (tag 18).
            assert!(v.starts_with("c30d04090302"), "{name}");
            assert_eq!(&v[30..32], "d2", "{name}");
        }
        // GnuPG writes the SKESK header in the old packet format (8c).
        assert!(vector("gpg_aes256_rfc4880.hex").starts_with("8c0d04090302"));
    }

    #[test]
    fn decrypts_with_key_as_stored() {
        let pw = decrypt_password(&vector("pgcrypto_aes256.hex"), KEY).unwrap();
        assert_eq!(pw, "DDboost_Pa55!");
    }

    #[test]
    fn decrypts_when_passphrase_was_the_hex_decoded_key() {
        let pw = decrypt_password(
            &vector("pgcrypto_aes256_decoded_key.hex"),
            HEX_KEY_DECODED_USED,
        )
        .unwrap();
        assert_eq!(pw, "Rep1ication-secret");
    }

    #[test]
    fn decrypts_when_passphrase_was_the_hex_key_itself() {
        let pw =
            decrypt_password(&vector("pgcrypto_aes256_hex_key_as_is.hex"), HEX_KEY_AS_IS).unwrap();
        assert_eq!(pw, "hex key used as is");
    }

    #[test]
    fn keeps_exact_utf8_bytes_with_spaces_and_quotes() {
        let pw = decrypt_password(&vector("pgcrypto_aes256_utf8.hex"), KEY).unwrap();
        assert_eq!(pw, " pa ss\"w\u{f6}rd\u{20ac} \u{7d42} ");
    }

    #[test]
    fn decrypts_compressed_and_gnupg_messages() {
        let pw = decrypt_password(&vector("pgcrypto_aes256_zlib.hex"), KEY).unwrap();
        assert_eq!(pw, "compressed-secret");
        let pw = decrypt_password(&vector("gpg_aes256_rfc4880.hex"), KEY).unwrap();
        assert_eq!(pw, "gpg-made password #1");
    }

    #[test]
    fn accepts_uppercase_hex_and_surrounding_whitespace() {
        let v = format!("  {}\n", vector("pgcrypto_aes256.hex").to_uppercase());
        assert_eq!(decrypt_password(&v, KEY).unwrap(), "DDboost_Pa55!");
    }

    #[test]
    fn wrong_key_fails_clearly_without_secrets() {
        let v = vector("pgcrypto_aes256.hex");
        let wrong = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5";
        let e = decrypt_password(&v, wrong).unwrap_err();
        assert_eq!(e, DecryptError::WrongKey { source: None });
        let text = e.to_string();
        assert!(text.contains("cannot be decrypted"), "{text}");
        assert!(text.contains("gpbackup_manager encrypt-password"), "{text}");
        assert_no_secrets(&e, &[wrong, KEY, &v, &v[..20], "DDboost_Pa55!"]);

        // A hex key that decodes to the wrong text fails the same way.
        let e = decrypt_password(&v, HEX_KEY_DECODED_USED).unwrap_err();
        assert_eq!(e, DecryptError::WrongKey { source: None });
        assert_no_secrets(
            &e,
            &[HEX_KEY_DECODED_USED, "q8w2e4r6t8y0u2i4o6p8a0s2d4f6g8"],
        );
    }

    #[test]
    fn decoded_form_is_not_tried_first_or_alone() {
        // The passphrase was the hex text; its decoded form must not be
        // enough on its own.
        let e = decrypt_password(
            &vector("pgcrypto_aes256_hex_key_as_is.hex"),
            "m3n5b7v9x1z2c4k6j8h9g0f1d3s5a7",
        )
        .unwrap_err();
        assert_eq!(e, DecryptError::WrongKey { source: None });
    }

    #[test]
    fn non_hex_input_fails() {
        for bad in ["", "   ", "xyz", "c30", "c30d04090302zz", "password"] {
            let e = decrypt_password(bad, KEY).unwrap_err();
            assert_eq!(e, DecryptError::NotHex, "{bad:?}");
            assert!(e.to_string().contains("not hex"));
            assert_no_secrets(&e, &[KEY]);
        }
    }

    #[test]
    fn hex_that_is_not_openpgp_fails() {
        for bad in ["00", "deadbeef", "48656c6c6f2c20776f726c64"] {
            let e = decrypt_password(bad, KEY).unwrap_err();
            assert_eq!(e, DecryptError::NotOpenPgp, "{bad:?}");
        }
    }

    #[test]
    fn empty_key_is_no_key() {
        let e = decrypt_password(&vector("pgcrypto_aes256.hex"), "").unwrap_err();
        assert!(matches!(e, DecryptError::NoKey { .. }));
    }

    #[test]
    fn truncated_ciphertext_fails_without_panic() {
        let v = vector("pgcrypto_aes256.hex");
        for len in (2..v.len()).step_by(2) {
            let e = decrypt_password(&v[..len], KEY).unwrap_err();
            assert!(
                matches!(e, DecryptError::NotOpenPgp | DecryptError::WrongKey { .. }),
                "length {len}: {e:?}"
            );
            assert_no_secrets(&e, &[KEY, "DDboost_Pa55!"]);
        }
    }

    #[test]
    fn altered_ciphertext_fails_without_panic() {
        let v = decode_hex(&vector("pgcrypto_aes256.hex")).unwrap();
        // Every byte after the SKESK salt, one at a time.
        for i in 6..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0x01;
            let hex: String = bad.iter().map(|b| format!("{b:02x}")).collect();
            let r = decrypt_password(&hex, KEY);
            assert!(r.is_err(), "byte {i} altered yet decrypted");
        }
    }

    #[test]
    fn with_key_source_names_it() {
        let e = DecryptError::WrongKey { source: None }
            .with_key_source(KeySource::File(PathBuf::from("/data/coordinator/.encrypt")));
        assert!(e
            .to_string()
            .contains("with the key from /data/coordinator/.encrypt"));
        let e = DecryptError::WrongKey { source: None }.with_key_source(KeySource::Option);
        assert!(e
            .to_string()
            .contains("with the key from option gpbackup_ddboost_plugin"));
        assert_eq!(
            DecryptError::NotHex.with_key_source(KeySource::Option),
            DecryptError::NotHex
        );
    }

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

    /// The passphrase of a message (as bytes) and the plaintext of its
    /// SEIPD packet: the literal data packet. Only for short messages (one-
    /// octet packet lengths), as the pgcrypto vectors are.
    fn inner_literal(message: &[u8], passphrase: &[u8]) -> Vec<u8> {
        use pgp::crypto::hash::HashAlgorithm;
        use pgp::crypto::sym::SymmetricKeyAlgorithm;
        use pgp::packet::{PacketHeader, SymEncryptedProtectedData};
        use pgp::types::{Seipdv1ReadMode, StringToKey, Tag};
        let s2k = StringToKey::IteratedAndSalted {
            hash_alg: HashAlgorithm::Sha1,
            salt: message[6..14].try_into().unwrap(),
            count: message[14],
        };
        let key = s2k.derive_key(passphrase, 32).unwrap();
        assert_eq!(message[15], 0xd2);
        let len = message[16] as usize;
        assert!(len < 192);
        let body = &message[17..17 + len];
        assert_eq!(17 + len, message.len(), "nothing after the SEIPD packet");
        let seipd = SymEncryptedProtectedData::try_from_reader(
            PacketHeader::new_fixed(Tag::SymEncryptedProtectedData, len as u32),
            body,
        )
        .unwrap();
        seipd
            .decrypt(
                key.as_ref(),
                Some(SymmetricKeyAlgorithm::AES256),
                Seipdv1ReadMode::default(),
            )
            .unwrap()
    }

    #[test]
    fn encrypted_passwords_decrypt_with_the_key_as_stored() {
        let long = "x".repeat(300); // two-octet packet lengths
        let longer = "y".repeat(10_000); // five-octet packet lengths
        for (pw, key) in [
            ("DDboost_Pa55!", KEY),
            (" pa ss\"w\u{f6}rd\u{20ac} \u{7d42} ", HEX_KEY_AS_IS),
            ("p", HEX_KEY_DECODED_USED),
            (long.as_str(), KEY),
            (longer.as_str(), KEY),
        ] {
            let hex = encrypt_password(pw, key).unwrap();
            assert!(hex
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert_eq!(decrypt_password(&hex, key).unwrap(), pw);
            // Never the same twice: salt, count and prefix are random.
            assert_ne!(encrypt_password(pw, key).unwrap(), hex);
        }
        let e = decrypt_password(&encrypt_password("pw", KEY).unwrap(), HEX_KEY_AS_IS).unwrap_err();
        assert_eq!(e, DecryptError::WrongKey { source: None });
    }

    #[test]
    fn encrypted_passwords_have_the_packets_pgcrypto_writes() {
        let ours = decode_hex(&encrypt_password("DDboost_Pa55!", KEY).unwrap()).unwrap();
        let theirs = decode_hex(&vector("pgcrypto_aes256.hex")).unwrap();
        assert_eq!(ours.len(), theirs.len(), "same sizes for the same password");
        for m in [&ours, &theirs] {
            // SKESK: new-format tag 3, 13 bytes, v4, AES-256, S2K type 3
            // (iterated and salted), SHA-1, 8 bytes of salt, a count.
            assert_eq!(m[..6], [0xc3, 0x0d, 0x04, 0x09, 0x03, 0x02]);
            assert!(S2K_COUNTS.contains(&m[14]), "count {:#x}", m[14]);
            // SEIPD: new-format tag 18, one-octet length, version 1.
            assert_eq!(m[15], 0xd2);
            assert_eq!(m[16] as usize, m.len() - 17);
            assert_eq!(m[17], 0x01);
        }
        let our_literal = inner_literal(&ours, KEY.as_bytes());
        let their_literal = inner_literal(&theirs, KEY.as_bytes());
        for l in [&our_literal, &their_literal] {
            // Literal data: new-format tag 11, text mode, no file name, a
            // four-byte date, then the password.
            assert_eq!(l[0], 0xcb);
            assert_eq!(l[1] as usize, l.len() - 2);
            assert_eq!(l[2..4], [b't', 0]);
            assert_eq!(&l[8..], b"DDboost_Pa55!");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let date = u32::from_be_bytes(our_literal[4..8].try_into().unwrap()) as u64;
        assert!(now.abs_diff(date) < 600, "{date} vs {now}");
    }

    #[test]
    fn passwords_that_cannot_be_encrypted() {
        for bad in ["", "two\nlines", "cr\r", "nul\0", &"z".repeat(65537)] {
            let e = encrypt_password(bad, KEY).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Invalid);
            if bad.len() > 3 && bad.len() < 100 {
                assert!(!e.to_string().contains(bad), "{e}");
            }
        }
        assert!(encrypt_password(&"z".repeat(65536), KEY).is_ok());
        assert!(encrypt_password("pw", "").is_err());
    }

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

    #[test]
    fn decode_hex_rules() {
        assert_eq!(decode_hex("00ffA0"), Some(vec![0, 255, 160]));
        assert_eq!(decode_hex(""), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("+1"), None);
    }
}
