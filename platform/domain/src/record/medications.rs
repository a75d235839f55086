//! Medications and immunizations entered or changed by clinical staff, versioned like every
//! record entry (an edit names the version it was made against; the database keeps the
//! replaced one). Imports write the same tables through `fhir`. Mistakes are marked
//! entered-in-error, which hides them from every list.

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use super::{Code, CodeSystem, RecordError, Version, invalid};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::ClinicalScope;
use crate::ids::PatientId;

pub const MEDICATION_STATUSES: [&str; 5] = [
    "active",
    "on-hold",
    "completed",
    "stopped",
    "entered-in-error",
];
pub const IMMUNIZATION_STATUSES: [&str; 3] = ["completed", "not-done", "entered-in-error"];

/// A medication as entered.
#[derive(Debug, Clone)]
pub struct MedicationInput<'a> {
    pub system: CodeSystem,
    pub code: &'a str,
    pub name: &'a str,
    pub dose: &'a str,
    pub route: &'a str,
    pub frequency: &'a str,
    pub instructions: &'a str,
    pub prescriber: &'a str,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub status: &'a str,
    pub refills_left: Option<i32>,
}

fn text_field(
    raw: &str,
    field: &'static str,
    max: usize,
    what: &str,
) -> Result<String, RecordError> {
    let t = raw.trim().to_owned();
    if t.chars().count() > max {
        return Err(invalid(
            field,
            format!("Keep the {what} to {max} characters."),
        ));
    }
    Ok(t)
}

fn check_medication(m: &MedicationInput<'_>) -> Result<Code, RecordError> {
    let code = Code::parse(
        m.system,
        m.code,
        &[CodeSystem::Rxnorm, CodeSystem::Text],
        "medication",
    )?;
    let name = m.name.trim();
    if name.is_empty() || name.chars().count() > 300 {
        return Err(invalid(
            "name",
            "Name the medication (up to 300 characters).",
        ));
    }
    for (raw, field, max, what) in [
        (m.dose, "dose", 200, "dose"),
        (m.route, "route", 100, "route"),
        (m.frequency, "frequency", 200, "frequency"),
        (m.instructions, "instructions", 2000, "instructions"),
        (m.prescriber, "prescriber", 200, "prescriber's name"),
    ] {
        text_field(raw, field, max, what)?;
    }
    if !MEDICATION_STATUSES.contains(&m.status) {
        return Err(invalid("status", "Choose a status from the list."));
    }
    if let (Some(s), Some(e)) = (m.starts_on, m.ends_on)
        && e < s
    {
        return Err(invalid(
            "ends_on",
            "The medication cannot end before it starts.",
        ));
    }
    if m.refills_left.is_some_and(|r| !(0..=99).contains(&r)) {
        return Err(invalid("refills", "Refills left is a number from 0 to 99."));
    }
    Ok(code)
}

/// Adds a medication (audited).
pub async fn add_medication(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    m: &MedicationInput<'_>,
    now: DateTime<Utc>,
) -> Result<uuid::Uuid, RecordError> {
    let code = check_medication(m)?;
    let id = uuid::Uuid::now_v7();
    let n = sqlx::query!(
        "INSERT INTO medications (id, patient_id, code_system, code, name, dose, route, frequency,
                                  instructions, prescriber, starts_on, ends_on, status,
                                  refills_left, updated_by, updated_at, created_at)
         SELECT $1, p.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16
         FROM patients p WHERE p.id = $2",
        id,
        patient.as_uuid(),
        code.system.as_str(),
        code.code,
        m.name.trim(),
        m.dose.trim(),
        m.route.trim(),
        m.frequency.trim(),
        m.instructions.trim(),
        m.prescriber.trim(),
        m.starts_on,
        m.ends_on,
        m.status,
        m.refills_left,
        staff.user_id().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(RecordError::NotFound);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordCreate, "medications")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(id)
}

async fn stale_or_missing(
    tx: &mut TenantTx,
    table: Table,
    id: uuid::Uuid,
    patient: PatientId,
) -> Result<RecordError, sqlx::Error> {
    let current = match table {
        Table::Medications => {
            sqlx::query_scalar!(
                "SELECT version FROM medications WHERE id = $1 AND patient_id = $2",
                id,
                patient.as_uuid()
            )
            .fetch_optional(tx.conn())
            .await?
        }
        Table::Immunizations => {
            sqlx::query_scalar!(
                "SELECT version FROM immunizations WHERE id = $1 AND patient_id = $2",
                id,
                patient.as_uuid()
            )
            .fetch_optional(tx.conn())
            .await?
        }
    };
    Ok(match current {
        Some(current) => RecordError::Stale { current },
        None => RecordError::NotFound,
    })
}

#[derive(Clone, Copy)]
enum Table {
    Medications,
    Immunizations,
}

/// Changes a medication, made against `version` (audited). Returns the new version.
#[allow(clippy::too_many_arguments)]
pub async fn update_medication(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: uuid::Uuid,
    version: i32,
    m: &MedicationInput<'_>,
    now: DateTime<Utc>,
) -> Result<i32, RecordError> {
    let code = check_medication(m)?;
    let updated = sqlx::query_scalar!(
        "UPDATE medications SET code_system = $4, code = $5, name = $6, dose = $7, route = $8,
                frequency = $9, instructions = $10, prescriber = $11, starts_on = $12,
                ends_on = $13, status = $14, refills_left = $15, updated_by = $16,
                updated_at = $17, version = version + 1
         WHERE id = $1 AND patient_id = $2 AND version = $3 RETURNING version",
        id,
        patient.as_uuid(),
        version,
        code.system.as_str(),
        code.code,
        m.name.trim(),
        m.dose.trim(),
        m.route.trim(),
        m.frequency.trim(),
        m.instructions.trim(),
        m.prescriber.trim(),
        m.starts_on,
        m.ends_on,
        m.status,
        m.refills_left,
        staff.user_id().as_uuid(),
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(v) = updated else {
        return Err(stale_or_missing(tx, Table::Medications, id, patient).await?);
    };
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordUpdate, "medications")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(v)
}

/// An immunization as entered.
#[derive(Debug, Clone)]
pub struct ImmunizationInput<'a> {
    /// CDC CVX code, or empty.
    pub cvx: &'a str,
    pub vaccine: &'a str,
    pub given_on: NaiveDate,
    pub dose_number: Option<i32>,
    pub lot: &'a str,
    pub site: &'a str,
    pub performer: &'a str,
    pub status: &'a str,
}

fn check_immunization(
    i: &ImmunizationInput<'_>,
    today: NaiveDate,
) -> Result<Option<String>, RecordError> {
    let cvx = i.cvx.trim();
    let cvx = if cvx.is_empty() {
        None
    } else {
        Code::parse(CodeSystem::Cvx, cvx, &[CodeSystem::Cvx], "vaccine")?.code
    };
    let vaccine = i.vaccine.trim();
    if vaccine.is_empty() || vaccine.chars().count() > 300 {
        return Err(invalid(
            "vaccine",
            "Name the vaccine (up to 300 characters).",
        ));
    }
    if i.given_on > today {
        return Err(invalid(
            "given_on",
            "The vaccine cannot have been given in the future.",
        ));
    }
    if i.dose_number.is_some_and(|d| !(1..=20).contains(&d)) {
        return Err(invalid("dose", "The dose number is from 1 to 20."));
    }
    for (raw, field, max, what) in [
        (i.lot, "lot", 100, "lot number"),
        (i.site, "site", 100, "site"),
        (i.performer, "performer", 200, "name of who gave it"),
    ] {
        text_field(raw, field, max, what)?;
    }
    if !IMMUNIZATION_STATUSES.contains(&i.status) {
        return Err(invalid("status", "Choose a status from the list."));
    }
    Ok(cvx)
}

/// Adds an immunization (audited).
pub async fn add_immunization(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    i: &ImmunizationInput<'_>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<uuid::Uuid, RecordError> {
    let cvx = check_immunization(i, today)?;
    let id = uuid::Uuid::now_v7();
    let n = sqlx::query!(
        "INSERT INTO immunizations (id, patient_id, cvx, vaccine, given_on, dose_number, lot,
                                    site, performer, status, updated_by, updated_at, created_at)
         SELECT $1, p.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12
         FROM patients p WHERE p.id = $2",
        id,
        patient.as_uuid(),
        cvx,
        i.vaccine.trim(),
        i.given_on,
        i.dose_number,
        i.lot.trim(),
        i.site.trim(),
        i.performer.trim(),
        i.status,
        staff.user_id().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(RecordError::NotFound);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordCreate, "immunizations")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(id)
}

/// Changes an immunization, made against `version` (audited). Returns the new version.
#[allow(clippy::too_many_arguments)]
pub async fn update_immunization(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: uuid::Uuid,
    version: i32,
    i: &ImmunizationInput<'_>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<i32, RecordError> {
    let cvx = check_immunization(i, today)?;
    let updated = sqlx::query_scalar!(
        "UPDATE immunizations SET cvx = $4, vaccine = $5, given_on = $6, dose_number = $7,
                lot = $8, site = $9, performer = $10, status = $11, updated_by = $12,
                updated_at = $13, version = version + 1
         WHERE id = $1 AND patient_id = $2 AND version = $3 RETURNING version",
        id,
        patient.as_uuid(),
        version,
        cvx,
        i.vaccine.trim(),
        i.given_on,
        i.dose_number,
        i.lot.trim(),
        i.site.trim(),
        i.performer.trim(),
        i.status,
        staff.user_id().as_uuid(),
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(v) = updated else {
        return Err(stale_or_missing(tx, Table::Immunizations, id, patient).await?);
    };
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordUpdate, "immunizations")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(v)
}

/// Every version of a medication (`table` = medications) or immunization, oldest first, with
/// who made each (audited).
pub async fn history(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    medication: bool,
    patient: PatientId,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Version>, RecordError> {
    let table = if medication {
        "medications"
    } else {
        "immunizations"
    };
    super::history(tx, staff, ctx, table, patient, id, now).await
}
