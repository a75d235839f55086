//! Allergies and intolerances (FHIR AllergyIntolerance).

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::{Code, CodeSystem, RecordError, Version};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{ClinicalScope, PatientScope};
use crate::ids::PatientId;

const TABLE: &str = "allergies";
const SYSTEMS: [CodeSystem; 3] = [CodeSystem::Rxnorm, CodeSystem::Snomed, CodeSystem::Text];
const STATUSES: [&str; 3] = ["active", "inactive", "resolved"];
const SEVERITIES: [&str; 3] = ["mild", "moderate", "severe"];

#[derive(Debug, Clone, serde::Serialize)]
pub struct Allergy {
    pub id: uuid::Uuid,
    pub version: i32,
    pub code: Code,
    pub substance: String,
    pub reaction: String,
    pub severity: Option<String>,
    pub clinical_status: String,
    pub verification: String,
    pub updated_at: DateTime<Utc>,
}

/// An allergy as entered, before it is checked.
#[derive(Debug, Clone)]
pub struct AllergyInput<'a> {
    pub system: CodeSystem,
    pub code: &'a str,
    pub substance: &'a str,
    pub reaction: &'a str,
    pub severity: Option<&'a str>,
    pub clinical_status: &'a str,
}

struct Checked {
    code: Code,
    substance: String,
    reaction: String,
}

fn check(p: &AllergyInput<'_>) -> Result<Checked, RecordError> {
    let code = Code::parse(p.system, p.code, &SYSTEMS, "substance")?;
    let substance = p.substance.split_whitespace().collect::<Vec<_>>().join(" ");
    if substance.is_empty() || substance.chars().count() > 300 {
        return Err(super::invalid(
            "substance",
            "Name the substance (up to 300 characters).",
        ));
    }
    let reaction = p.reaction.trim().to_owned();
    if reaction.chars().count() > 500 {
        return Err(super::invalid(
            "reaction",
            "Describe the reaction in up to 500 characters.",
        ));
    }
    if p.severity.is_some_and(|s| !SEVERITIES.contains(&s)) {
        return Err(super::invalid(
            "severity",
            "Choose a severity: mild, moderate or severe.",
        ));
    }
    if !STATUSES.contains(&p.clinical_status) {
        return Err(super::invalid(
            "status",
            "Choose whether the allergy is active, inactive or resolved.",
        ));
    }
    Ok(Checked {
        code,
        substance,
        reaction,
    })
}

/// A row as the database gives it (also as JSON, in the chart's one-query read).
#[derive(Clone, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct Row {
    id: uuid::Uuid,
    version: i32,
    substance_system: String,
    substance_code: Option<String>,
    substance: String,
    reaction: String,
    severity: Option<String>,
    clinical_status: String,
    verification: String,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Allergy {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            version: r.version,
            code: Code {
                system: CodeSystem::parse(&r.substance_system).unwrap_or(CodeSystem::Text),
                code: r.substance_code,
            },
            substance: r.substance,
            reaction: r.reaction,
            severity: r.severity,
            clinical_status: r.clinical_status,
            verification: r.verification,
            updated_at: r.updated_at,
        }
    }
}

async fn fetch(tx: &mut TenantTx, patient: PatientId) -> Result<Vec<Allergy>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, version, substance_system, substance_code, substance, reaction, severity,
                clinical_status, verification, updated_at
         FROM allergies WHERE patient_id = $1 AND verification NOT IN ('entered-in-error', 'refuted')
         ORDER BY clinical_status <> 'active', substance",
        patient.as_uuid()
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(Allergy::from).collect())
}

/// The signed-in patient's own allergies (audited).
pub async fn own(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Allergy>, sqlx::Error> {
    let list = fetch(tx, me.patient_id()).await?;
    super::viewed(tx, ctx, TABLE, me.patient_id(), now).await?;
    Ok(list)
}

/// A patient's allergies, for clinical staff (audited).
pub async fn of_patient(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Vec<Allergy>, sqlx::Error> {
    let list = fetch(tx, patient).await?;
    super::viewed(tx, ctx, TABLE, patient, now).await?;
    Ok(list)
}

/// Adds an allergy to a patient's record (audited).
pub async fn add(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    input: &AllergyInput<'_>,
    now: DateTime<Utc>,
) -> Result<uuid::Uuid, RecordError> {
    let c = check(input)?;
    let id = uuid::Uuid::now_v7();
    let inserted = sqlx::query!(
        "INSERT INTO allergies (id, patient_id, substance_system, substance_code, substance,
                                reaction, severity, clinical_status, updated_by, updated_at,
                                created_at)
         SELECT $1, p.id, $3, $4, $5, $6, $7, $8, $9, $10, $10 FROM patients p WHERE p.id = $2",
        id,
        patient.as_uuid(),
        c.code.system.as_str(),
        c.code.code,
        c.substance,
        c.reaction,
        input.severity,
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

/// Changes an allergy, made against `version`: refused as [`RecordError::Stale`] when someone
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
    input: &AllergyInput<'_>,
    now: DateTime<Utc>,
) -> Result<i32, RecordError> {
    let c = check(input)?;
    let updated = sqlx::query_scalar!(
        "UPDATE allergies SET substance_system = $4, substance_code = $5, substance = $6,
                reaction = $7, severity = $8, clinical_status = $9, updated_by = $10,
                updated_at = $11, version = version + 1
         WHERE id = $1 AND patient_id = $2 AND version = $3
         RETURNING version",
        id,
        patient.as_uuid(),
        version,
        c.code.system.as_str(),
        c.code.code,
        c.substance,
        c.reaction,
        input.severity,
        input.clinical_status,
        staff.user_id().as_uuid(),
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(new_version) = updated else {
        let current = sqlx::query_scalar!(
            "SELECT version FROM allergies WHERE id = $1 AND patient_id = $2",
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

/// Every version of one allergy, oldest first, with who made each (audited).
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
