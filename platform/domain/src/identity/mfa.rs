//! Two-step sign-in: a time-based code (TOTP, RFC 6238: SHA-1, 6 digits, 30 s steps, one step
//! of skew either way) from an authenticator app, and ten single-use recovery codes. A code is
//! accepted once: its time step must be later than the last one accepted for the person, so a
//! code seen over someone's shoulder is worthless after its use. The clinic chooses who must use
//! it (administrators by default, or all staff); anyone, patients included, may turn it on.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Secret, Totp};

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::Role;
use crate::identity::scope::{AdminScope, SignedIn};
use crate::ids::UserId;

/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// Who must use two-step sign-in at a clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Off,
    Admins,
    AllStaff,
}

impl Requirement {
    pub const ALL: [Requirement; 3] =
        [Requirement::Admins, Requirement::AllStaff, Requirement::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Off => "off",
            Requirement::Admins => "admins",
            Requirement::AllStaff => "all_staff",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    pub fn label(self) -> &'static str {
        match self {
            Requirement::Off => "Nobody has to (anyone may turn it on)",
            Requirement::Admins => "Clinic administrators",
            Requirement::AllStaff => "All staff",
        }
    }

    /// Whether someone with `role` must use it.
    pub fn applies_to(self, role: Role) -> bool {
        match self {
            Requirement::Off => false,
            Requirement::Admins => role == Role::ClinicAdmin,
            Requirement::AllStaff => role.is_staff(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("That code is not right, or it was already used. Type the newest code from your app.")]
    WrongCode,
    #[error("Two-step sign-in is already on. Turn it off first to set up a new app.")]
    AlreadyOn,
    #[error("Start the set-up again: there is nothing to confirm.")]
    NotStarted,
    #[error("Your clinic requires two-step sign-in for your role, so it cannot be turned off.")]
    Required,
    #[error("two-step sign-in could not be set up")]
    Totp,
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// The clinic's requirement.
pub async fn requirement(tx: &mut TenantTx) -> Result<Requirement, sqlx::Error> {
    let raw = sqlx::query_scalar!("SELECT mfa_required FROM clinic_profile WHERE singleton")
        .fetch_one(tx.conn())
        .await?;
    Ok(Requirement::parse(&raw).unwrap_or(Requirement::Admins))
}

/// Changes who must use it (audited). Sessions already open stay open; the requirement
/// applies from each person's next sign-in.
pub async fn set_requirement(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    to: Requirement,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE clinic_profile SET mfa_required = $1, updated_at = $2 WHERE singleton",
        to.as_str(),
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::MfaRequirementChange, "clinic_profile").resource(to.as_str()),
    )
    .await
}

/// Sets the requirement from an operator's tool (the demo seed; test clinics), with no person
/// behind it to audit.
pub async fn seed_requirement(tx: &mut TenantTx, to: Requirement) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE clinic_profile SET mfa_required = $1 WHERE singleton",
        to.as_str()
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Whether a person has two-step sign-in on, and how many recovery codes they have left.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub enabled: bool,
    pub recovery_left: i64,
}

pub async fn status(tx: &mut TenantTx, user: UserId) -> Result<Status, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)
                    AS "enabled!",
                  (SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL)
                    AS "left!""#,
        user.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(Status {
        enabled: row.enabled,
        recovery_left: row.left,
    })
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, MfaError> {
    // The otpauth label may not hold ':'; an issuer or email with one is shown without it.
    let clean = |s: &str| s.replace(':', " ");
    Builder::new()
        .with_secret(Secret::from(secret.to_vec()))
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build()
        .map_err(|_| MfaError::Totp)
}

/// What the enrolment page shows: the secret for typing in, and the `otpauth://` link the QR
/// code carries. Never logged.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_url: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

/// Starts (or restarts) setting up an authenticator app: a new 160-bit secret, not in force
/// until [`confirm`] sees a code made from it. The caller has checked the password (step-up).
pub async fn begin(
    tx: &mut TenantTx,
    me: &SignedIn,
    issuer: &str,
    now: DateTime<Utc>,
) -> Result<Enrolment, MfaError> {
    if status(tx, me.user_id).await?.enabled {
        return Err(MfaError::AlreadyOn);
    }
    let mut secret = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    sqlx::query!(
        "INSERT INTO mfa_totp (user_id, secret, confirmed_at, last_step, created_at)
         VALUES ($1, $2, NULL, 0, $3)
         ON CONFLICT (user_id) DO UPDATE SET secret = $2, created_at = $3, last_step = 0
         WHERE mfa_totp.confirmed_at IS NULL",
        me.user_id.as_uuid(),
        &secret[..],
        now
    )
    .execute(tx.conn())
    .await?;
    enrolment_of(tx, me, issuer)
        .await?
        .ok_or(MfaError::NotStarted)
}

/// The pending set-up, to show again (a wrong code sends the person back to the same QR code).
pub async fn enrolment_of(
    tx: &mut TenantTx,
    me: &SignedIn,
    issuer: &str,
) -> Result<Option<Enrolment>, MfaError> {
    let Some(secret) = sqlx::query_scalar!(
        "SELECT secret FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL",
        me.user_id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let t = totp(&secret, issuer, &me.email)?;
    Ok(Some(Enrolment {
        secret_base32: t.secret().to_base32(),
        otpauth_url: t.to_url().map_err(|_| MfaError::Totp)?,
    }))
}

/// Confirms the set-up with a code from the app; turns two-step sign-in on and returns the
/// recovery codes (shown once, stored only as hashes).
pub async fn confirm(
    tx: &mut TenantTx,
    me: &SignedIn,
    code: &str,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<String>, MfaError> {
    let Some(row) = sqlx::query!(
        "SELECT secret FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL FOR UPDATE",
        me.user_id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Err(MfaError::NotStarted);
    };
    let t = totp(&row.secret, "", &me.email)?;
    let step = t.check(code.trim(), unix(now)).ok_or(MfaError::WrongCode)?;
    sqlx::query!(
        "UPDATE mfa_totp SET confirmed_at = $2, last_step = $3 WHERE user_id = $1",
        me.user_id.as_uuid(),
        now,
        step_i64(step)
    )
    .execute(tx.conn())
    .await?;
    let codes = new_recovery_codes(tx, me.user_id).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::MfaEnrol, "user").resource(me.user_id),
    )
    .await?;
    Ok(codes)
}

/// Turns it off (the caller has checked the password). Refused where the clinic requires it.
pub async fn remove(
    tx: &mut TenantTx,
    me: &SignedIn,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<(), MfaError> {
    if requirement(tx).await?.applies_to(me.role) {
        return Err(MfaError::Required);
    }
    sqlx::query!(
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
        me.user_id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "DELETE FROM mfa_totp WHERE user_id = $1",
        me.user_id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::MfaRemove, "user").resource(me.user_id),
    )
    .await?;
    Ok(())
}

/// Checks a second-step code: a TOTP code not used before (its step later than the last one
/// accepted), or an unused recovery code (then spent). Wrong codes are audited.
pub async fn verify(
    tx: &mut TenantTx,
    user: UserId,
    code: &str,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let code = code.trim();
    let row = sqlx::query!(
        "SELECT secret, last_step FROM mfa_totp
         WHERE user_id = $1 AND confirmed_at IS NOT NULL FOR UPDATE",
        user.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(false) };
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let ok = if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let step = totp(&row.secret, "", "x")
            .ok()
            .and_then(|t| t.check(&digits, unix(now)))
            .map(step_i64)
            .filter(|s| *s > row.last_step);
        if let Some(step) = step {
            sqlx::query!(
                "UPDATE mfa_totp SET last_step = $2 WHERE user_id = $1",
                user.as_uuid(),
                step
            )
            .execute(tx.conn())
            .await?;
        }
        step.is_some()
    } else {
        let spent = sqlx::query!(
            "UPDATE mfa_recovery_codes SET used_at = $3
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            user.as_uuid(),
            recovery_hash(code),
            now
        )
        .execute(tx.conn())
        .await?
        .rows_affected()
            == 1;
        if spent {
            audit::record(
                tx,
                ctx,
                now,
                AuditEvent::new(Action::MfaRecoveryUsed, "user").resource(user),
            )
            .await?;
        }
        spent
    };
    if !ok {
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::MfaFailed, "user").resource(user),
        )
        .await?;
    }
    Ok(ok)
}

/// The code an authenticator app would show for `secret_base32` at `at` (for tools and tests
/// that stand in for the app).
pub fn code_at(secret_base32: &str, at: DateTime<Utc>) -> Option<String> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    let t = Builder::new().with_secret(secret).build().ok()?;
    Some(t.generate(unix(at)).to_string())
}

async fn new_recovery_codes(tx: &mut TenantTx, user: UserId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query!(
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
        user.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| recovery_hash(c)).collect();
    sqlx::query!(
        "INSERT INTO mfa_recovery_codes (user_id, code_hash)
         SELECT $1, h FROM unnest($2::bytea[]) AS h",
        user.as_uuid(),
        &hashes
    )
    .execute(tx.conn())
    .await?;
    Ok(codes)
}

/// Ten characters from an alphabet without look-alikes, as `xxxxx-xxxxx` (50 bits).
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// Recovery codes are random (not chosen by people), so a plain SHA-256 of the normalised
/// code is enough; case and the dash do not matter when typed.
fn recovery_hash(code: &str) -> Vec<u8> {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(norm.as_bytes()).to_vec()
}

fn unix(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_test_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // its last six digits are what a 6-digit app shows.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        let at = DateTime::from_timestamp(59, 0).unwrap();
        assert_eq!(code_at(&secret, at).as_deref(), Some("287082"));
    }

    #[test]
    fn codes_are_accepted_one_step_either_way_but_not_two() {
        let t = totp(b"12345678901234567890", "Clinic", "a@b.example").unwrap();
        let now = 1_800_000_000u64;
        let code = |at: u64| t.generate(at).to_string();
        assert!(t.check(&code(now - 30), now).is_some());
        assert!(t.check(&code(now + 30), now).is_some());
        assert!(t.check(&code(now - 60), now).is_none());
        assert!(t.check(&code(now + 60), now).is_none());
    }

    #[test]
    fn recovery_codes_ignore_case_and_dashes_and_differ() {
        assert_eq!(recovery_hash("abcde-fghjk"), recovery_hash("ABCDEFGHJK"));
        let a = recovery_code();
        assert_eq!(a.len(), 11);
        assert_ne!(a, recovery_code());
    }
}
