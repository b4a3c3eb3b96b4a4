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
//! For the forks without gpbackup_manager, [`pgp::encrypt_password`] makes the same
//! ciphertext (with the key as stored as the passphrase) and [`keyfile::ensure_key`]
//! keeps the key in `.encrypt` (`gpbackup_ddboost_plugin encrypt_password`).
//!
//! No error of this folder carries the key, the ciphertext or the plaintext.
//!
//! * [`pgp`]: the OpenPGP messages (decrypting and encrypting passwords);
//! * [`keyfile`]: the key, from gpbackup's option or the `.encrypt` file,
//!   and keeping a key in that file;
//! * [`error`]: what can go wrong, without secrets.

pub mod error;
pub mod keyfile;
pub mod pgp;

/// The option gpbackup injects the key under, and the plugin's entry in
/// `.encrypt`: the plugin's name (`crate::about::PLUGIN_NAME`).
pub const KEY_OPTION: &str = crate::about::PLUGIN_NAME;

/// The key file's name inside the coordinator data directory.
pub const KEY_FILE_NAME: &str = ".encrypt";

/// The environment variables naming the coordinator data directory, in the
/// order they are looked at.
pub const DATA_DIR_VARS: [&str; 2] = ["COORDINATOR_DATA_DIRECTORY", "MASTER_DATA_DIRECTORY"];

/// Longest plaintext accepted: a password, not a document.
pub const MAX_PLAINTEXT: u64 = 64 * 1024;

#[cfg(test)]
mod test_vectors {
    //! Vectors in tests/data/encryption/ (see its README.md): the
    //! `pgcrypto_*` ones are real `pgp_sym_encrypt` output from PostgreSQL 15's
    //! pgcrypto, made the way gpbackup_manager encrypt-password makes them; the
    //! `gpg_*` one comes from GnuPG as an independent second implementation.
    //! The keys and passwords below are test values only.

    use super::error::DecryptError;
    use std::fs;
    use std::path::Path;

    /// A 30-character lowercase alphanumeric key, used as stored.
    pub const KEY: &str = "k3v9q0x7m2p5r8t1w4y6z0a2c4e6g8";
    /// A stored key whose hex-decoded text ("q8w2e4r6t8y0u2i4o6p8a0s2d4f6g8")
    /// was the passphrase.
    pub const HEX_KEY_DECODED_USED: &str =
        "713877326534723674387930753269346f36703861307332643466366738";
    /// A stored hex key that was itself the passphrase.
    pub const HEX_KEY_AS_IS: &str = "6d336e356237763978317a3263346b366a38683967306631643373356137";

    pub fn vector(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/encryption")
            .join(name);
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    pub fn assert_no_secrets(e: &DecryptError, secrets: &[&str]) {
        let shown = format!("{e} {e:?}");
        for s in secrets {
            assert!(!shown.contains(s), "error text shows a secret: {shown}");
        }
    }
}
