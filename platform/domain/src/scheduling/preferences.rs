//! A patient's own reminder choices: by email, by text, and the mobile number texts go to.
//! A new number gets texts only once confirmed (`phone.rs`). Turning text reminders back on
//! after a STOP reply is the patient's explicit consent, so the web clears the opt-out (kept per
//! number in the control plane); the clinic's own schedule (which reminders exist at all) is in
//! `reminders::ReminderRules`.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::PatientScope;
use crate::jobs::{self, EnqueueError, Job};
use crate::values::PhoneE164;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReminderPreferences {
    pub email: bool,
    pub sms: bool,
    /// Where email reminders go (set by the clinic; shown, not edited here).
    pub email_address: Option<String>,
    pub phone: Option<String>,
    /// The number was confirmed (a code texted to it was typed back, or staff entered it).
    /// Texts go only to a confirmed number.
    pub phone_verified: bool,
}

/// What the patient asks for. `phone: None` removes the number.
#[derive(Debug, Clone)]
pub struct PreferencesUpdate {
    pub email: bool,
    pub sms: bool,
    pub phone: Option<PhoneE164>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    #[error("Add a mobile number to get text reminders.")]
    SmsNeedsPhone,
    #[error(
        "There is no email address on file, so email reminders cannot be turned on. Please ask the clinic to add one."
    )]
    EmailNeedsAddress,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl PreferencesError {
    /// A stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SmsNeedsPhone => "sms_needs_phone",
            Self::EmailNeedsAddress => "email_needs_address",
            Self::Database(_) => "internal",
        }
    }
}

async fn load(tx: &mut TenantTx, who: &PatientScope) -> Result<ReminderPreferences, sqlx::Error> {
    let r = sqlx::query!(
        r#"SELECT reminder_email, reminder_sms, email, phone,
                  phone_verified_at IS NOT NULL AS "verified!"
           FROM patients WHERE id = $1"#,
        who.patient_id().as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(ReminderPreferences {
        email: r.reminder_email,
        sms: r.reminder_sms,
        email_address: r.email,
        phone: r.phone,
        phone_verified: r.verified,
    })
}

/// The signed-in patient's choices (audited: it shows their contact details).
pub async fn get(
    tx: &mut TenantTx,
    who: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<ReminderPreferences, sqlx::Error> {
    let prefs = load(tx, who).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ReminderPreferencesView, "patient")
            .resource(who.patient_id())
            .patient(who.patient_id()),
    )
    .await?;
    Ok(prefs)
}

/// The number on file now, to tell whether a save changes it (a new number is texted a code,
/// which the caller limits). Part of the save that follows; not audited on its own.
pub async fn phone_on_file(
    tx: &mut TenantTx,
    who: &PatientScope,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT phone FROM patients WHERE id = $1",
        who.patient_id().as_uuid()
    )
    .fetch_one(tx.conn())
    .await
}

/// Saves the patient's choices. Applies to reminders sent from now on, including those already
/// scheduled (the reminder job reads the choices when it fires).
pub async fn set(
    tx: &mut TenantTx,
    who: &PatientScope,
    ctx: &AuditContext,
    update: &PreferencesUpdate,
    now: DateTime<Utc>,
) -> Result<ReminderPreferences, PreferencesError> {
    if update.sms && update.phone.is_none() {
        return Err(PreferencesError::SmsNeedsPhone);
    }
    let current = load(tx, who).await?;
    if update.email && current.email_address.is_none() {
        return Err(PreferencesError::EmailNeedsAddress);
    }
    let new_phone = update.phone.as_ref().map(PhoneE164::as_str);
    let changed = new_phone != current.phone.as_deref();
    // A new number is unconfirmed until the patient types the code texted to it.
    sqlx::query!(
        "UPDATE patients SET reminder_email = $2, reminder_sms = $3, phone = $4,
                phone_verified_at = CASE WHEN $5 THEN NULL ELSE phone_verified_at END,
                sms_opted_out_at = CASE WHEN $3 THEN NULL ELSE sms_opted_out_at END
         WHERE id = $1",
        who.patient_id().as_uuid(),
        update.email,
        update.sms,
        new_phone,
        changed
    )
    .execute(tx.conn())
    .await?;
    if changed && new_phone.is_some() {
        jobs::enqueue(
            tx,
            &Job::VerifyPhone {
                patient_id: who.patient_id(),
            },
        )
        .await
        .map_err(|e| match e {
            EnqueueError::Database(d) => PreferencesError::Database(d),
            other => PreferencesError::Database(sqlx::Error::Protocol(other.to_string())),
        })?;
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ReminderPreferencesUpdate, "patient")
            .resource(who.patient_id())
            .patient(who.patient_id()),
    )
    .await?;
    Ok(load(tx, who).await?)
}
