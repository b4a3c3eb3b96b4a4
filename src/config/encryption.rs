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
//! No error of this module carries the key, the ciphertext or the plaintext.

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

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
            "re-run gpbackup_manager encrypt-password on the coordinator and paste its output into the plugin config";
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

/// Decodes an even-length string of hex digits (either case).
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    bytes
        .chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
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

    #[test]
    fn decode_hex_rules() {
        assert_eq!(decode_hex("00ffA0"), Some(vec![0, 255, 160]));
        assert_eq!(decode_hex(""), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("+1"), None);
    }
}
