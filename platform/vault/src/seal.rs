//! Sealing one blob: `"PV1" ‖ nonce ‖ AES-256-GCM(ciphertext ‖ tag)`, with the clinic and the
//! blob's name as associated data, so a sealed blob opens only as itself, in its own clinic.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::keys::DataKey;

const MAGIC: &[u8; 3] = b"PV1";
const NONCE: usize = 12;
/// What sealing adds to a blob's size.
pub const OVERHEAD: usize = MAGIC.len() + NONCE + 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the blob could not be sealed")]
    Seal,
    /// Damaged, truncated, another clinic's, stored under another name, or not sealed at all.
    #[error("the stored blob does not open with this clinic's key under this name")]
    Open,
}

fn aad(owner: &str, name: &str) -> Vec<u8> {
    // Lengths first, so ("ab", "c") and ("a", "bc") differ.
    let mut a = Vec::with_capacity(16 + owner.len() + name.len());
    a.extend((owner.len() as u64).to_be_bytes());
    a.extend(owner.as_bytes());
    a.extend((name.len() as u64).to_be_bytes());
    a.extend(name.as_bytes());
    a
}

fn nonce_of(bytes: &[u8]) -> Result<Nonce<aes_gcm::aead::consts::U12>, SealError> {
    let n: [u8; NONCE] = bytes.try_into().map_err(|_| SealError::Open)?;
    Ok(Nonce::from(n))
}

fn cipher(key: &DataKey) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.0))
}

/// `plain` sealed for clinic `owner` under `name`.
pub fn seal(key: &DataKey, owner: &str, name: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let body = cipher(key)
        .encrypt(
            &nonce,
            Payload {
                msg: plain,
                aad: &aad(owner, name),
            },
        )
        .map_err(|_| SealError::Seal)?;
    let mut out = Vec::with_capacity(OVERHEAD + plain.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend(body);
    Ok(out)
}

/// The plaintext of a blob sealed by [`seal`] with the same key, clinic and name.
pub fn open(key: &DataKey, owner: &str, name: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < OVERHEAD || !sealed.starts_with(MAGIC) {
        return Err(SealError::Open);
    }
    let (nonce, body) = sealed[MAGIC.len()..].split_at(NONCE);
    cipher(key)
        .decrypt(
            &nonce_of(nonce)?,
            Payload {
                msg: body,
                aad: &aad(owner, name),
            },
        )
        .map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LETTER: &[u8] = b"%PDF-1.7 Immunization record for Ana Lima: MMR, Tdap, influenza";

    #[test]
    fn a_sealed_blob_opens_as_itself_and_shows_no_plaintext() {
        let key = DataKey::generate();
        let sealed = seal(&key, "clinic-a", "doc-1", LETTER).unwrap();
        assert_eq!(sealed.len(), LETTER.len() + OVERHEAD);
        for needle in [&b"Ana Lima"[..], b"Immunization", b"%PDF", b"Tdap"] {
            assert!(
                !sealed.windows(needle.len()).any(|w| w == needle),
                "{} visible in the sealed bytes",
                String::from_utf8_lossy(needle)
            );
        }
        assert_eq!(open(&key, "clinic-a", "doc-1", &sealed).unwrap(), LETTER);
    }

    #[test]
    fn a_sealed_blob_does_not_open_elsewhere_or_damaged() {
        let key = DataKey::generate();
        let sealed = seal(&key, "clinic-a", "doc-1", LETTER).unwrap();
        assert_eq!(
            open(&key, "clinic-b", "doc-1", &sealed),
            Err(SealError::Open)
        );
        assert_eq!(
            open(&key, "clinic-a", "doc-2", &sealed),
            Err(SealError::Open)
        );
        assert_eq!(
            open(&DataKey::generate(), "clinic-a", "doc-1", &sealed),
            Err(SealError::Open)
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x80;
        assert_eq!(
            open(&key, "clinic-a", "doc-1", &flipped),
            Err(SealError::Open)
        );
        assert_eq!(
            open(&key, "clinic-a", "doc-1", &sealed[..20]),
            Err(SealError::Open)
        );
        assert_eq!(
            open(&key, "clinic-a", "doc-1", LETTER),
            Err(SealError::Open)
        );
    }

    #[test]
    fn an_empty_blob_seals_and_the_same_plaintext_seals_differently() {
        let key = DataKey::generate();
        let empty = seal(&key, "c", "n", b"").unwrap();
        assert_eq!(open(&key, "c", "n", &empty).unwrap(), b"");
        assert_ne!(
            seal(&key, "c", "n", LETTER).unwrap(),
            seal(&key, "c", "n", LETTER).unwrap()
        );
    }
}
