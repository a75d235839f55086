//! Patient records (demographics for now). Staff reach them through a [`StaffScope`], a patient
//! only their own through a [`PatientScope`]; every read and write is audited.

pub mod search;

pub use search::{SearchPage, search};

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{PatientScope, RegistrationScope, StaffScope};
use crate::ids::PatientId;
use crate::values::{DateOfBirth, EmailAddress, PersonName, PhoneE164};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Patient {
    pub id: PatientId,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: NaiveDate,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `None` (no account yet), `invited` or `active`.
    pub account_status: Option<String>,
}

impl Patient {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// A new patient, every field parsed.
#[derive(Debug, Clone)]
pub struct NewPatient {
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub date_of_birth: DateOfBirth,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneE164>,
}

pub async fn create(
    tx: &mut TenantTx,
    staff: &RegistrationScope,
    ctx: &AuditContext,
    new: &NewPatient,
    now: DateTime<Utc>,
) -> Result<PatientId, sqlx::Error> {
    let _ = staff;
    let id = PatientId::new();
    insert(tx, id, new, true, now).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PatientCreate, "patient")
            .resource(id)
            .patient(id),
    )
    .await?;
    Ok(id)
}

/// Staff correct a patient's details (audited). The email stays as it is once the patient has
/// an account, invited or active (the account's address is where invitations go and what the
/// patient signs in with); a new phone number entered
/// by the clinic counts as confirmed, as one entered when the patient was added does. `false`
/// when there is no such patient.
pub async fn update(
    tx: &mut TenantTx,
    staff: &RegistrationScope,
    ctx: &AuditContext,
    id: PatientId,
    new: &NewPatient,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let _ = staff;
    let n = sqlx::query!(
        "UPDATE patients p SET given_name = $2, family_name = $3, date_of_birth = $4,
                email = CASE WHEN EXISTS (SELECT 1 FROM users u WHERE u.patient_id = p.id
                                           AND u.role = 'patient')
                             THEN p.email ELSE $5 END,
                phone_verified_at = CASE WHEN p.phone IS NOT DISTINCT FROM $6 THEN p.phone_verified_at
                                         WHEN $6::text IS NULL THEN NULL ELSE $7 END,
                phone = $6
         WHERE p.id = $1",
        id.as_uuid(),
        new.given_name.as_str(),
        new.family_name.as_str(),
        new.date_of_birth.date(),
        new.email.as_ref().map(EmailAddress::as_str),
        new.phone.as_ref().map(PhoneE164::as_str),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PatientUpdate, "patient")
            .resource(id)
            .patient(id),
    )
    .await?;
    Ok(true)
}

/// Inserts without a staff scope: for self sign-up and seed data, which audit on their own.
/// `phone_confirmed`: the number was entered by the clinic (staff, seed), not by the patient,
/// who must confirm a number of their own with a texted code first.
pub(crate) async fn insert(
    tx: &mut TenantTx,
    id: PatientId,
    new: &NewPatient,
    phone_confirmed: bool,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO patients (id, given_name, family_name, date_of_birth, email, phone, created_at,
                               phone_verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7,
                 CASE WHEN $8 AND $6::text IS NOT NULL THEN $7::timestamptz END)",
        id.as_uuid(),
        new.given_name.as_str(),
        new.family_name.as_str(),
        new.date_of_birth.date(),
        new.email.as_ref().map(EmailAddress::as_str),
        new.phone.as_ref().map(PhoneE164::as_str),
        now,
        phone_confirmed
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The columns every patient query selects.
pub(crate) struct Row {
    id: uuid::Uuid,
    given_name: String,
    family_name: String,
    date_of_birth: NaiveDate,
    email: Option<String>,
    phone: Option<String>,
    account_status: Option<String>,
}

impl From<Row> for Patient {
    fn from(r: Row) -> Self {
        Self {
            id: PatientId::from_uuid(r.id),
            given_name: r.given_name,
            family_name: r.family_name,
            date_of_birth: r.date_of_birth,
            email: r.email,
            phone: r.phone,
            account_status: r.account_status,
        }
    }
}

async fn fetch(tx: &mut TenantTx, id: PatientId) -> Result<Option<Patient>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT p.id, p.given_name, p.family_name, p.date_of_birth, p.email, p.phone,
                  u.status AS "account_status?"
           FROM patients p LEFT JOIN users u ON u.patient_id = p.id AND u.role = 'patient'
           WHERE p.id = $1"#,
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(Patient::from))
}

/// One patient, for staff. A missing id and another clinic's id are both `None`.
pub async fn get(
    tx: &mut TenantTx,
    staff: &StaffScope,
    ctx: &AuditContext,
    id: PatientId,
    now: DateTime<Utc>,
) -> Result<Option<Patient>, sqlx::Error> {
    let _ = staff;
    let patient = fetch(tx, id).await?;
    if patient.is_some() {
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::PatientView, "patient")
                .resource(id)
                .patient(id),
        )
        .await?;
    }
    Ok(patient)
}

/// The signed-in patient's own record.
pub async fn own(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Option<Patient>, sqlx::Error> {
    let id = me.patient_id();
    let patient = fetch(tx, id).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordView, "patient")
            .resource(id)
            .patient(id),
    )
    .await?;
    Ok(patient)
}

/// Patients by name, for staff (audited: one row per patient listed).
pub async fn list(
    tx: &mut TenantTx,
    staff: &StaffScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Patient>, sqlx::Error> {
    let _ = staff;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT p.id, p.given_name, p.family_name, p.date_of_birth, p.email, p.phone,
                  u.status AS "account_status?"
           FROM patients p LEFT JOIN users u ON u.patient_id = p.id AND u.role = 'patient'
           ORDER BY lower(p.family_name), lower(p.given_name) LIMIT $1"#,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    audit::record_list(
        tx,
        ctx,
        now,
        Action::PatientList,
        "patient",
        rows.iter().map(|r| PatientId::from_uuid(r.id)),
    )
    .await?;
    Ok(rows.into_iter().map(Patient::from).collect())
}
