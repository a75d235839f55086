//! Passwords per NIST SP 800-63B: long passphrases welcome (12 to 256 characters), no
//! composition rules, common and breached passwords refused, stored as Argon2id hashes.

use std::sync::{Arc, LazyLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::values::{EmailAddress, InvalidValue};

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 256;

static COMMON: LazyLock<std::collections::HashSet<String>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_lowercase())
        .collect()
});

/// A new password that passed the policy. Never logged: Debug is redacted.
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

impl NewPassword {
    /// `email` is the account's address: a password built from it is refused.
    pub fn parse(raw: &str, email: Option<&EmailAddress>) -> Result<Self, InvalidValue> {
        let n = raw.chars().count();
        if n < MIN_CHARS {
            return Err(InvalidValue(format!(
                "Use at least {MIN_CHARS} characters. A few unrelated words make a strong, memorable passphrase."
            )));
        }
        if n > MAX_CHARS {
            return Err(InvalidValue(format!("Use at most {MAX_CHARS} characters.")));
        }
        let lower = raw.to_lowercase();
        if COMMON.contains(&lower) || COMMON.contains(lower.trim()) {
            return Err(InvalidValue(
                "That password is one of the most commonly used (and first guessed). Choose another."
                    .into(),
            ));
        }
        let distinct: std::collections::HashSet<char> = lower.chars().collect();
        if distinct.len() <= 2 || is_sequence(&lower) {
            return Err(InvalidValue(
                "That password is a simple repetition or sequence. Choose another.".into(),
            ));
        }
        if let Some(email) = email {
            let local = email.local_part();
            if local.chars().count() >= 4 && lower.contains(local) {
                return Err(InvalidValue(
                    "Don't build your password from your email address.".into(),
                ));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Runs of consecutive characters ("123456789012", "abcdefghijkl").
fn is_sequence(s: &str) -> bool {
    let b: Vec<u32> = s.chars().map(u32::from).collect();
    b.windows(2).all(|w| w[1] == w[0] + 1) || b.windows(2).all(|w| w[0] == w[1] + 1)
}

/// 16 random bytes from the OS-seeded generator.
fn new_salt() -> Result<SaltString, argon2::password_hash::Error> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    SaltString::encode_b64(&bytes)
}

/// An Argon2id PHC string.
#[derive(Clone)]
pub struct PasswordHashString(pub String);

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// Argon2id runs at most this many at once per process (a few per core): a burst of guesses
/// queues here instead of taking every core and every pooled connection from other clinics.
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Arc::new(Semaphore::new(cores.max(2)))
});

/// How long a password check waits for a free hashing slot before the caller is told to come
/// back (429 with Retry-After).
pub const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The right to run one Argon2id computation now. Taken before anything else in a sign-in,
/// so a caller that gets none has changed nothing.
pub struct HashingSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// Every hashing slot stayed busy for [`SLOT_WAIT`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

/// Waits up to `wait` for a hashing slot.
pub async fn slot(wait: std::time::Duration) -> Result<HashingSlot, Busy> {
    match tokio::time::timeout(wait, HASHING.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(HashingSlot(permit)),
        _ => Err(Busy),
    }
}

/// Hashes on a blocking thread (Argon2id is deliberately slow; it must not stall the runtime),
/// inside a hashing slot (waiting for one as long as it takes: a person setting a password).
pub async fn hash(password: &NewPassword) -> Result<PasswordHashString, HashError> {
    let _slot = HASHING
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| HashError)?;
    let pw = password.0.clone();
    tokio::task::spawn_blocking(move || {
        let salt = new_salt().map_err(|_| HashError)?;
        Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| PasswordHashString(h.to_string()))
            .map_err(|_| HashError)
    })
    .await
    .map_err(|_| HashError)?
}

/// A real Argon2id hash of a random value, checked when the account does not exist, so an
/// unknown email costs the same time as a wrong password.
static DUMMY: LazyLock<Option<String>> = LazyLock::new(|| {
    let salt = new_salt().ok()?;
    let mut random = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
    Argon2::default()
        .hash_password(&random, &salt)
        .ok()
        .map(|h| h.to_string())
});

/// Checks `candidate` against `stored`, or against a dummy hash when there is no account. The
/// slot proves the check was admitted by the bound on concurrent hashing.
pub async fn verify(_slot: &HashingSlot, candidate: &str, stored: Option<&str>) -> bool {
    let candidate = candidate.to_owned();
    let (stored, real) = match stored {
        Some(s) => (Some(s.to_owned()), true),
        None => (DUMMY.clone(), false),
    };
    let ok = tokio::task::spawn_blocking(move || {
        let Some(stored) = stored else { return false };
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .unwrap_or(false);
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_follows_nist() {
        let email = EmailAddress::parse("ana.lima@example.org").unwrap();
        assert!(NewPassword::parse("short one", None).is_err());
        assert!(
            NewPassword::parse("Password1234", None).is_err(),
            "common list is case-insensitive"
        );
        assert!(NewPassword::parse("123456789012", None).is_err());
        assert!(NewPassword::parse("zzzzzzzzzzzzzz", None).is_err());
        assert!(NewPassword::parse("ana.lima-rocks-2026", Some(&email)).is_err());
        // No composition rules: lower-case words alone are fine, and long ones are allowed.
        assert!(NewPassword::parse("violet tugboat orchard", Some(&email)).is_ok());
        assert!(NewPassword::parse(&"long passphrase ".repeat(8), None).is_ok());
        assert!(NewPassword::parse(&"x".repeat(257), None).is_err());
    }

    #[tokio::test]
    async fn hashes_verify_only_the_right_password() {
        let pw = NewPassword::parse("violet tugboat orchard", None).unwrap();
        let h = hash(&pw).await.unwrap();
        assert!(h.0.starts_with("$argon2id$"));
        let s = slot(SLOT_WAIT).await.unwrap();
        assert!(verify(&s, "violet tugboat orchard", Some(&h.0)).await);
        assert!(!verify(&s, "violet tugboat orchards", Some(&h.0)).await);
        assert!(!verify(&s, "violet tugboat orchard", None).await);
    }
}
