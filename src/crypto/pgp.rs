//! The OpenPGP messages of encrypted passwords: decrypting what pgcrypto's
//! `pgp_sym_encrypt(password, key, 'cipher-algo=aes256')` made (or GnuPG),
//! and making the same messages for `encrypt_password`, byte layout included.

use std::io::Read;

use pgp::composed::Message;
use pgp::types::Password;

use super::error::DecryptError;
use super::MAX_PLAINTEXT;

/// hashed, 0x7f = 253952): it chooses one at random for every message.
const S2K_COUNTS: std::ops::RangeInclusive<u8> = 0x60..=0x7f;

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
pub(super) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() {
        return None;
    }
    hex::decode(s).ok()
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

#[cfg(test)]
mod tests {
    use super::super::test_vectors::*;
    use super::*;

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
    fn decode_hex_rules() {
        assert_eq!(decode_hex("00ffA0"), Some(vec![0, 255, 160]));
        assert_eq!(decode_hex(""), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("+1"), None);
    }
}
