//! Failures to find the key or to decrypt a password. None holds a secret.

use std::fmt;
use std::path::PathBuf;

use super::{KEY_FILE_NAME, KEY_OPTION, MAX_PLAINTEXT};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
