//! Problems and diagnoses (FHIR Condition).

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use super::{Code, CodeSystem, RecordError, Version};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{ClinicalScope, PatientScope};
use crate::ids::PatientId;

const TABLE: &str = "conditions";
const SYSTEMS: [CodeSystem; 3] = [CodeSystem::Icd10cm, CodeSystem::Snomed, CodeSystem::Text];
const STATUSES: [&str; 6] = [
    "active",
    "recurrence",
    "relapse",
    "inactive",
    "remission",
    "resolved",
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    pub id: uuid::Uuid,
    pub version: i32,
    pub code: Code,
    pub text: String,
    pub onset: Option<NaiveDate>,
    pub abatement: Option<NaiveDate>,
    pub clinical_status: String,
    pub verification: String,
    pub updated_at: DateTime<Utc>,
}

/// A problem as entered, before it is checked.
#[derive(Debug, Clone)]
pub struct ProblemInput<'a> {
    pub system: CodeSystem,
    pub code: &'a str,
    pub text: &'a str,
    pub onset: Option<NaiveDate>,
    pub abatement: Option<NaiveDate>,
    pub clinical_status: &'a str,
}

struct Checked {
    code: Code,
    text: String,
}

fn check(p: &ProblemInput<'_>, today: NaiveDate) -> Result<Checked, RecordError> {
    let code = Code::parse(p.system, p.code, &SYSTEMS, "problem")?;
    let text = p.text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() || text.chars().count() > 500 {
        return Err(super::invalid(
            "text",
            "Describe the problem in words (up to 500 characters).",
        ));
    }
    if !STATUSES.contains(&p.clinical_status) {
        return Err(super::invalid(
            "status",
            "Choose whether the problem is active, in remission or resolved.",
        ));
    }
    if p.onset.is_some_and(|d| d > today) {
        return Err(super::invalid(
            "onset",
            "The onset cannot be in the future.",
        ));
    }
    if let (Some(on), Some(off)) = (p.onset, p.abatement)
        && off < on
    {
        return Err(super::invalid(
            "onset",
            "The problem cannot end before it began.",
        ));
    }
    Ok(Checked { code, text })
}

/// A row as the database gives it (also as JSON, in the chart's one-query read).
#[derive(Clone, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct Row {
    id: uuid::Uuid,
    version: i32,
    code_system: String,
    code: Option<String>,
    text: String,
    onset: Option<NaiveDate>,
    abatement: Option<NaiveDate>,
    clinical_status: String,
    verification: String,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Problem {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            version: r.version,
            code: Code {
                system: CodeSystem::parse(&r.code_system).unwrap_or(CodeSystem::Text),
                code: r.code,
            },
            text: r.text,
            onset: r.onset,
            abatement: r.abatement,
            clinical_status: r.clinical_status,
            verification: r.verification,
            updated_at: r.updated_at,
        }
    }
}

async fn fetch(tx: &mut TenantTx, patient: PatientId) -> Result<Vec<Problem>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, version, code_system, code, text, onset, abatement, clinical_status,
                verification, updated_at
         FROM conditions WHERE patient_id = $1 AND verification NOT IN ('entered-in-error', 'refuted')
         ORDER BY clinical_status <> 'active', onset DESC NULLS LAST, text",
        patient.as_uuid()
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(Problem::from).collect())
}

/// The signed-in patient's own problems (audited).
pub async fn own(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Problem>, sqlx::Error> {
    let list = fetch(tx, me.patient_id()).await?;
    super::viewed(tx, ctx, TABLE, me.patient_id(), now).await?;
    Ok(list)
}

/// A patient's problems, for clinical staff (audited).
pub async fn of_patient(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Vec<Problem>, sqlx::Error> {
    let list = fetch(tx, patient).await?;
    super::viewed(tx, ctx, TABLE, patient, now).await?;
    Ok(list)
}

/// Adds a problem to a patient's record (audited). `today` is the clinic's date.
pub async fn add(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    input: &ProblemInput<'_>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<uuid::Uuid, RecordError> {
    let c = check(input, today)?;
    let id = uuid::Uuid::now_v7();
    let inserted = sqlx::query!(
        "INSERT INTO conditions (id, patient_id, code_system, code, text, onset, abatement,
                                 clinical_status, updated_by, updated_at, created_at)
         SELECT $1, p.id, $3, $4, $5, $6, $7, $8, $9, $10, $10 FROM patients p WHERE p.id = $2",
        id,
        patient.as_uuid(),
        c.code.system.as_str(),
        c.code.code,
        c.text,
        input.onset,
        input.abatement,
        input.clinical_status,
        staff.user_id().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(RecordError::NotFound);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordCreate, TABLE)
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(id)
}

/// Changes a problem, made against `version`: refused as [`RecordError::Stale`] when someone
/// changed it since (the earlier version is kept by the database either way). Returns the new
/// version.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: uuid::Uuid,
    version: i32,
    input: &ProblemInput<'_>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<i32, RecordError> {
    let c = check(input, today)?;
    let updated = sqlx::query_scalar!(
        "UPDATE conditions SET code_system = $4, code = $5, text = $6, onset = $7,
                abatement = $8, clinical_status = $9, updated_by = $10, updated_at = $11,
                version = version + 1
         WHERE id = $1 AND patient_id = $2 AND version = $3
         RETURNING version",
        id,
        patient.as_uuid(),
        version,
        c.code.system.as_str(),
        c.code.code,
        c.text,
        input.onset,
        input.abatement,
        input.clinical_status,
        staff.user_id().as_uuid(),
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(new_version) = updated else {
        let current = sqlx::query_scalar!(
            "SELECT version FROM conditions WHERE id = $1 AND patient_id = $2",
            id,
            patient.as_uuid()
        )
        .fetch_optional(tx.conn())
        .await?;
        return Err(match current {
            Some(current) => RecordError::Stale { current },
            None => RecordError::NotFound,
        });
    };
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordUpdate, TABLE)
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(new_version)
}

/// Every version of one problem, oldest first, with who made each (audited).
pub async fn history(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Version>, RecordError> {
    super::history(tx, staff, ctx, TABLE, patient, id, now).await
}
