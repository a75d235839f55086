//! Confirming a mobile number before it gets texts: a number a patient enters or changes is
//! unconfirmed until they type the 6-digit code texted to it (numbers staff enter count as
//! confirmed by the clinic). The worker that texts the code makes it, so it never sits in the
//! outbox or Redis; only a hash is kept. A code lasts 15 minutes and 5 wrong tries spend it.

use chrono::{DateTime, Duration, Utc};
use portal_tenants::TenantTx;
use sha2::{Digest, Sha256};

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::PatientScope;
use crate::ids::PatientId;
use crate::jobs::{self, EnqueueError, Job};

const CODE_TTL: Duration = Duration::minutes(15);
const MAX_TRIES: i32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("There is no code to check. Ask for a new one.")]
    NoCode,
    #[error("That code has expired or was tried too often. Ask for a new one.")]
    Expired,
    #[error("That code is not right. Check the text message and try again.")]
    Wrong,
    #[error("There is no mobile number to confirm.")]
    NoNumber,
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl PhoneError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoCode => "no_code",
            Self::Expired => "code_expired",
            Self::Wrong => "wrong_code",
            Self::NoNumber => "no_number",
            Self::Enqueue(_) | Self::Database(_) => "internal",
        }
    }
}

fn code_hash(patient: PatientId, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(patient.as_uuid().as_bytes());
    h.update(code.trim().as_bytes());
    h.finalize().to_vec()
}

/// Queues a code for the patient's unconfirmed number (the caller limits how often).
pub async fn request_code(tx: &mut TenantTx, me: &PatientScope) -> Result<(), PhoneError> {
    let pending = sqlx::query_scalar!(
        "SELECT phone IS NOT NULL AND phone_verified_at IS NULL AS \"pending!\"
         FROM patients WHERE id = $1",
        me.patient_id().as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if !pending {
        return Err(PhoneError::NoNumber);
    }
    jobs::enqueue(
        tx,
        &Job::VerifyPhone {
            patient_id: me.patient_id(),
        },
    )
    .await?;
    Ok(())
}

/// For the worker: makes a new code for the patient's unconfirmed number and returns it with
/// the number (`None` when there is nothing to confirm any more). Audited as the clinic
/// reading the patient's number to text it.
pub async fn issue_code(
    tx: &mut TenantTx,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let Some(phone) = sqlx::query_scalar!(
        "SELECT phone AS \"phone!\" FROM patients
         WHERE id = $1 AND phone IS NOT NULL AND phone_verified_at IS NULL",
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let n = rand::random::<u32>() % 1_000_000;
    let code = format!("{n:06}");
    sqlx::query!(
        "INSERT INTO phone_verifications (patient_id, phone, code_hash, expires_at, failed, created_at)
         VALUES ($1, $2, $3, $4, 0, $5)
         ON CONFLICT (patient_id) DO UPDATE
             SET phone = $2, code_hash = $3, expires_at = $4, failed = 0, created_at = $5",
        patient.as_uuid(),
        phone,
        code_hash(patient, &code),
        now + CODE_TTL,
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        &AuditContext::default(),
        now,
        AuditEvent::new(Action::PhoneCodeSent, "patient")
            .resource(patient)
            .patient(patient),
    )
    .await?;
    Ok(Some((code, phone)))
}

/// Checks the code the patient typed; confirms the number on success (audited).
pub async fn verify(
    tx: &mut TenantTx,
    me: &PatientScope,
    code: &str,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<(), PhoneError> {
    let id = me.patient_id();
    let row = sqlx::query!(
        "SELECT v.phone, v.code_hash, v.expires_at, v.failed, p.phone AS current
         FROM phone_verifications v JOIN patients p ON p.id = v.patient_id
         WHERE v.patient_id = $1 FOR UPDATE OF v",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(PhoneError::NoCode)?;
    // A code for a number the patient has since changed is no code at all.
    if row.current.as_deref() != Some(row.phone.as_str()) {
        return Err(PhoneError::NoCode);
    }
    let (Some(hash), Some(expires)) = (row.code_hash, row.expires_at) else {
        return Err(PhoneError::NoCode);
    };
    if now >= expires || row.failed >= MAX_TRIES {
        return Err(PhoneError::Expired);
    }
    if !crate::identity::tokens::constant_time_eq(&hash, &code_hash(id, code)) {
        sqlx::query!(
            "UPDATE phone_verifications SET failed = failed + 1 WHERE patient_id = $1",
            id.as_uuid()
        )
        .execute(tx.conn())
        .await?;
        return Err(PhoneError::Wrong);
    }
    sqlx::query!(
        "UPDATE patients SET phone_verified_at = $2 WHERE id = $1 AND phone = $3",
        id.as_uuid(),
        now,
        row.phone
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "DELETE FROM phone_verifications WHERE patient_id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PhoneVerified, "patient")
            .resource(id)
            .patient(id),
    )
    .await?;
    Ok(())
}
