//! The master key (configuration) and the clinics' data keys (kept wrapped by it).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

const NONCE: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "the master key must be 32 random bytes in base64 (44 characters); make one with `openssl rand -base64 32`"
    )]
    BadMasterKey,
    /// The wrapped key is damaged, belongs to another clinic, or was wrapped by another
    /// master key.
    #[error("a clinic's data key could not be unwrapped with this master key")]
    Unwrap,
    #[error("a clinic's data key could not be wrapped")]
    Wrap,
}

/// The deployment's key-encryption key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// From its configuration form: 32 bytes in standard base64.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KeyError::BadMasterKey)?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadMasterKey)?;
        // All zeroes is what an unset or templated value looks like, not a key.
        if key.iter().all(|b| *b == 0) {
            return Err(KeyError::BadMasterKey);
        }
        Ok(Self(Zeroizing::new(key)))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0))
    }

    /// `nonce ‖ ciphertext ‖ tag` of `key`, bound to `owner` (the clinic's id): a wrapped key
    /// copied to another clinic's row does not unwrap.
    pub fn wrap(&self, key: &DataKey, owner: &str) -> Result<Vec<u8>, KeyError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: key.0.as_slice(),
                    aad: aad(owner).as_bytes(),
                },
            )
            .map_err(|_| KeyError::Wrap)?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    /// The data key inside `wrapped`, if it was wrapped by this master key for `owner`.
    pub fn unwrap(&self, wrapped: &[u8], owner: &str) -> Result<DataKey, KeyError> {
        if wrapped.len() <= NONCE {
            return Err(KeyError::Unwrap);
        }
        let (nonce, body) = wrapped.split_at(NONCE);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &nonce_of(nonce)?,
                    Payload {
                        msg: body,
                        aad: aad(owner).as_bytes(),
                    },
                )
                .map_err(|_| KeyError::Unwrap)?,
        );
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| KeyError::Unwrap)?;
        Ok(DataKey(Zeroizing::new(key)))
    }
}

fn nonce_of(bytes: &[u8]) -> Result<Nonce<aes_gcm::aead::consts::U12>, KeyError> {
    let n: [u8; NONCE] = bytes.try_into().map_err(|_| KeyError::Unwrap)?;
    Ok(Nonce::from(n))
}

fn aad(owner: &str) -> String {
    format!("portal data key v1 for {owner}")
}

/// One clinic's key for its blobs. Made once per clinic, stored only wrapped.
#[derive(Clone)]
pub struct DataKey(pub(crate) Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&key[..]);
        Self(Zeroizing::new(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn master_key_must_be_32_bytes_and_not_zero() {
        assert_eq!(
            MasterKey::from_base64("").unwrap_err(),
            KeyError::BadMasterKey
        );
        assert_eq!(
            MasterKey::from_base64("not base64!").unwrap_err(),
            KeyError::BadMasterKey
        );
        let short = STANDARD.encode([1u8; 16]);
        assert_eq!(
            MasterKey::from_base64(&short).unwrap_err(),
            KeyError::BadMasterKey
        );
        let zero = STANDARD.encode([0u8; 32]);
        assert_eq!(
            MasterKey::from_base64(&zero).unwrap_err(),
            KeyError::BadMasterKey
        );
        assert!(format!("{:?}", master()).contains('…'));
    }

    #[test]
    fn a_wrapped_key_unwraps_only_for_its_clinic_and_master() {
        let key = DataKey::generate();
        let wrapped = master().wrap(&key, "clinic-a").unwrap();
        assert_ne!(
            &wrapped[NONCE..NONCE + 32],
            key.0.as_slice(),
            "stored in the clear"
        );
        let back = master().unwrap(&wrapped, "clinic-a").unwrap();
        assert_eq!(back.0.as_slice(), key.0.as_slice());
        assert_eq!(
            master().unwrap(&wrapped, "clinic-b").unwrap_err(),
            KeyError::Unwrap
        );
        let other = MasterKey::from_base64(&STANDARD.encode([9u8; 32])).unwrap();
        assert_eq!(
            other.unwrap(&wrapped, "clinic-a").unwrap_err(),
            KeyError::Unwrap
        );
        let mut damaged = wrapped.clone();
        damaged[NONCE + 3] ^= 1;
        assert_eq!(
            master().unwrap(&damaged, "clinic-a").unwrap_err(),
            KeyError::Unwrap
        );
        assert_eq!(
            master().unwrap(&wrapped[..5], "clinic-a").unwrap_err(),
            KeyError::Unwrap
        );
    }

    #[test]
    fn two_wraps_of_one_key_differ() {
        let key = DataKey::generate();
        assert_ne!(
            master().wrap(&key, "c").unwrap(),
            master().wrap(&key, "c").unwrap()
        );
    }
}
