//! Accounts: one per person who can sign in to a clinic's portal. Staff are invited by a
//! clinic administrator, patients by staff (from their patient record) or by self sign-up.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::Role;
use crate::identity::password::PasswordHashString;
use crate::identity::scope::{AdminScope, RegistrationScope};
use crate::ids::{PatientId, UserId};
use crate::jobs::{self, EnqueueError, Job};
use crate::values::{EmailAddress, PersonName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Invited,
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    fn from_db(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "invited" => Self::Invited,
            _ => Self::Disabled,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub patient_id: Option<PatientId>,
    pub status: AccountStatus,
    pub(crate) password_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("An account with this email address already exists.")]
    EmailTaken,
    #[error("This patient has no email address; add one before sending an invitation.")]
    NoEmail,
    #[error("This person has already set up their account.")]
    AlreadyActive,
    #[error("No such patient.")]
    NoSuchPatient,
    #[error("That role cannot be given to staff.")]
    NotAStaffRole,
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

fn on_email_taken(e: sqlx::Error) -> AccountError {
    match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => {
            AccountError::EmailTaken
        }
        _ => AccountError::Database(e),
    }
}

struct Row {
    id: uuid::Uuid,
    email: String,
    display_name: String,
    role: String,
    patient_id: Option<uuid::Uuid>,
    status: String,
    password_hash: Option<String>,
}

impl From<Row> for Account {
    fn from(r: Row) -> Self {
        Self {
            id: UserId::from_uuid(r.id),
            email: r.email,
            display_name: r.display_name,
            role: Role::parse(&r.role).unwrap_or(Role::Patient),
            patient_id: r.patient_id.map(PatientId::from_uuid),
            status: AccountStatus::from_db(&r.status),
            password_hash: r.password_hash,
        }
    }
}

pub async fn by_email(
    tx: &mut TenantTx,
    email: &EmailAddress,
) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, email, display_name, role, patient_id, status, password_hash
         FROM users WHERE email = $1",
        email.as_str()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(Account::from))
}

pub async fn by_id(tx: &mut TenantTx, id: UserId) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, email, display_name, role, patient_id, status, password_hash
         FROM users WHERE id = $1",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(Account::from))
}

async fn insert(
    tx: &mut TenantTx,
    email: &EmailAddress,
    name: &str,
    role: Role,
    patient: Option<PatientId>,
    active_hash: Option<&PasswordHashString>,
    now: DateTime<Utc>,
) -> Result<UserId, AccountError> {
    let id = UserId::new();
    sqlx::query!(
        "INSERT INTO users (id, email, display_name, role, patient_id, password_hash, status,
                            created_at, password_changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id.as_uuid(),
        email.as_str(),
        name,
        role.as_str(),
        patient.map(|p| p.as_uuid()),
        active_hash.map(|h| h.0.as_str()),
        if active_hash.is_some() {
            "active"
        } else {
            "invited"
        },
        now,
        active_hash.map(|_| now),
    )
    .execute(tx.conn())
    .await
    .map_err(on_email_taken)?;
    Ok(id)
}

/// The first administrator of a newly signed-up clinic, invited by email. Runs inside the
/// provisioning transaction.
pub async fn invite_first_admin(
    tx: &mut TenantTx,
    email: &EmailAddress,
    name: &PersonName,
    now: DateTime<Utc>,
) -> Result<UserId, AccountError> {
    let id = insert(tx, email, name.as_str(), Role::ClinicAdmin, None, None, now).await?;
    jobs::enqueue(tx, &Job::SendInvitation { user_id: id }).await?;
    audit::record(
        tx,
        &AuditContext::default(),
        now,
        AuditEvent::new(Action::StaffInvite, "user").resource(id),
    )
    .await?;
    Ok(id)
}

/// Invites a member of staff by email.
pub async fn invite_staff(
    tx: &mut TenantTx,
    admin: &AdminScope,
    ctx: &AuditContext,
    email: &EmailAddress,
    name: &PersonName,
    role: Role,
    now: DateTime<Utc>,
) -> Result<UserId, AccountError> {
    let _ = admin;
    if !role.is_staff() {
        return Err(AccountError::NotAStaffRole);
    }
    let id = insert(tx, email, name.as_str(), role, None, None, now).await?;
    jobs::enqueue(tx, &Job::SendInvitation { user_id: id }).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::StaffInvite, "user").resource(id),
    )
    .await?;
    Ok(id)
}

/// Sends (or re-sends) a patient their portal invitation, creating their account on first use.
pub async fn invite_patient(
    tx: &mut TenantTx,
    staff: &RegistrationScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<UserId, AccountError> {
    let _ = staff;
    let row = sqlx::query!(
        r#"SELECT p.email, p.given_name, p.family_name, u.id AS "user_id?", u.status AS "status?"
           FROM patients p LEFT JOIN users u ON u.patient_id = p.id AND u.role = 'patient'
           WHERE p.id = $1"#,
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(AccountError::NoSuchPatient)?;
    let user = match (row.user_id, row.status.as_deref()) {
        (Some(_), Some("active")) => return Err(AccountError::AlreadyActive),
        (Some(id), _) => UserId::from_uuid(id),
        (None, _) => {
            let email = row
                .email
                .as_deref()
                .and_then(|e| EmailAddress::parse(e).ok())
                .ok_or(AccountError::NoEmail)?;
            let name = format!("{} {}", row.given_name, row.family_name);
            insert(tx, &email, &name, Role::Patient, Some(patient), None, now).await?
        }
    };
    jobs::enqueue(tx, &Job::SendInvitation { user_id: user }).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PatientInvite, "patient")
            .resource(patient)
            .patient(patient),
    )
    .await?;
    Ok(user)
}

/// An account that can sign in at once (seed data and tools only; people are invited).
pub async fn create_active(
    tx: &mut TenantTx,
    email: &EmailAddress,
    name: &str,
    role: Role,
    patient: Option<PatientId>,
    hash: &PasswordHashString,
    now: DateTime<Utc>,
) -> Result<UserId, AccountError> {
    insert(tx, email, name, role, patient, Some(hash), now).await
}

/// A member of staff as the admin console lists them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StaffMember {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: AccountStatus,
}

pub async fn list_staff(
    tx: &mut TenantTx,
    _admin: &AdminScope,
) -> Result<Vec<StaffMember>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, email, display_name, role, patient_id, status, NULL::text AS password_hash
         FROM users WHERE role <> 'patient' AND role <> 'proxy' ORDER BY display_name"
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(Account::from)
        .map(|a| StaffMember {
            id: a.id,
            email: a.email,
            display_name: a.display_name,
            role: a.role,
            status: a.status,
        })
        .collect())
}

/// Sets a new password and makes the account active.
pub(crate) async fn set_password(
    tx: &mut TenantTx,
    user: UserId,
    hash: &PasswordHashString,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2, status = 'active', password_changed_at = $3
         WHERE id = $1 AND status <> 'disabled'",
        user.as_uuid(),
        hash.0,
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Self sign-up (when the clinic allows it): a patient record and an invited account, and an
/// email to verify the address (the same single-use link as an invitation). An address that
/// already has an account gets no second one; the caller answers the same either way.
pub async fn self_register(
    tx: &mut TenantTx,
    new: &crate::patients::NewPatient,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Option<UserId>, AccountError> {
    let Some(email) = new.email.as_ref() else {
        return Err(AccountError::NoEmail);
    };
    if by_email(tx, email).await?.is_some() {
        return Ok(None);
    }
    let patient = PatientId::new();
    crate::patients::insert(tx, patient, new, false, now).await?;
    let name = format!("{} {}", new.given_name.as_str(), new.family_name.as_str());
    let id = insert(tx, email, &name, Role::Patient, Some(patient), None, now).await?;
    jobs::enqueue(tx, &Job::SendInvitation { user_id: id }).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PatientSelfRegister, "patient")
            .resource(patient)
            .patient(patient),
    )
    .await?;
    Ok(Some(id))
}

/// A patient record with an account that can sign in at once (seed data only).
pub async fn create_active_patient(
    tx: &mut TenantTx,
    new: &crate::patients::NewPatient,
    hash: &PasswordHashString,
    now: DateTime<Utc>,
) -> Result<PatientId, AccountError> {
    let email = new.email.as_ref().ok_or(AccountError::NoEmail)?;
    let patient = PatientId::new();
    crate::patients::insert(tx, patient, new, true, now).await?;
    let name = format!("{} {}", new.given_name.as_str(), new.family_name.as_str());
    insert(
        tx,
        email,
        &name,
        Role::Patient,
        Some(patient),
        Some(hash),
        now,
    )
    .await?;
    Ok(patient)
}
