//! The rest of the chart, read together: medications, immunizations, latest vital signs,
//! visits with their after-visit summaries, clinicians' notes (a patient sees only released
//! ones), care plans and procedures. One read is one audit row (`record.view` of `chart`).

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use crate::audit::AuditContext;
use crate::identity::scope::{ClinicalScope, PatientScope};
use crate::ids::PatientId;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Medication {
    pub id: uuid::Uuid,
    pub rxnorm: Option<String>,
    pub name: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub instructions: String,
    pub prescriber: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub status: String,
    pub quantity: String,
    pub refills_left: Option<i32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Immunization {
    pub id: uuid::Uuid,
    pub cvx: Option<String>,
    pub vaccine: String,
    pub given_on: NaiveDate,
    pub dose_number: Option<i32>,
    pub lot: String,
    pub site: String,
    pub performer: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Vital {
    pub loinc: String,
    pub name: String,
    pub value_num: Option<f64>,
    pub value_text: Option<String>,
    pub unit: Option<String>,
    pub interpretation: Option<String>,
    pub effective_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Encounter {
    pub id: uuid::Uuid,
    pub starts_at: DateTime<Utc>,
    pub kind: String,
    pub provider: String,
    pub diagnoses: String,
    pub summary: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Note {
    pub id: uuid::Uuid,
    pub encounter_id: Option<uuid::Uuid>,
    pub title: String,
    pub body: String,
    pub author: String,
    pub signed_at: Option<DateTime<Utc>>,
    pub released: bool,
    pub confidential: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CarePlan {
    pub id: uuid::Uuid,
    pub title: String,
    pub description: String,
    pub goals: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub status: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Procedure {
    pub id: uuid::Uuid,
    pub code_system: String,
    pub code: Option<String>,
    pub text: String,
    pub performed_on: Option<NaiveDate>,
}

/// Everything but problems, allergies and results (which have their own stores).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Chart {
    /// Active first, then by start date, newest first.
    pub medications: Vec<Medication>,
    /// Newest first.
    pub immunizations: Vec<Immunization>,
    /// The latest value of each vital sign.
    pub vitals: Vec<Vital>,
    /// Newest first (at most 200).
    pub encounters: Vec<Encounter>,
    /// Newest first (at most 200).
    pub notes: Vec<Note>,
    pub care_plans: Vec<CarePlan>,
    pub procedures: Vec<Procedure>,
}

async fn read(
    tx: &mut TenantTx,
    patient: PatientId,
    as_patient: bool,
) -> Result<Chart, sqlx::Error> {
    let p = patient.as_uuid();
    let medications = sqlx::query_as!(
        Medication,
        "SELECT id, code AS rxnorm, name, dose, route, frequency, instructions, prescriber,
                starts_on, ends_on, status, quantity, refills_left
         FROM medications WHERE patient_id = $1 AND status <> 'entered-in-error'
         ORDER BY status <> 'active', starts_on DESC NULLS LAST, name",
        p
    )
    .fetch_all(tx.conn())
    .await?;
    let immunizations = sqlx::query_as!(
        Immunization,
        "SELECT id, cvx, vaccine, given_on, dose_number, lot, site, performer
         FROM immunizations WHERE patient_id = $1 AND status = 'completed'
         ORDER BY given_on DESC, vaccine",
        p
    )
    .fetch_all(tx.conn())
    .await?;
    let vitals = sqlx::query_as!(
        Vital,
        "SELECT DISTINCT ON (loinc) loinc, name, value_num, value_text, unit, interpretation,
                effective_at
         FROM observations
         WHERE patient_id = $1 AND category = 'vital-signs' AND status <> 'entered-in-error'
         ORDER BY loinc, effective_at DESC",
        p
    )
    .fetch_all(tx.conn())
    .await?;
    let encounters = sqlx::query_as!(
        Encounter,
        "SELECT id, starts_at, kind, provider, diagnoses, summary
         FROM encounters WHERE patient_id = $1 AND status NOT IN ('entered-in-error', 'cancelled')
         ORDER BY starts_at DESC LIMIT 200",
        p
    )
    .fetch_all(tx.conn())
    .await?;
    let notes = sqlx::query_as!(
        Note,
        "SELECT id, encounter_id, title, body, author, signed_at, released, confidential
         FROM clinical_notes
         WHERE patient_id = $1 AND status = 'current' AND (released OR NOT $2)
         ORDER BY signed_at DESC NULLS LAST, created_at DESC LIMIT 200",
        p,
        as_patient
    )
    .fetch_all(tx.conn())
    .await?;
    let care_plans = sqlx::query_as!(
        CarePlan,
        "SELECT id, title, description, goals, starts_on, ends_on, status
         FROM care_plans WHERE patient_id = $1 AND status NOT IN ('entered-in-error', 'draft')
         ORDER BY status <> 'active', starts_on DESC NULLS LAST",
        p
    )
    .fetch_all(tx.conn())
    .await?;
    let procedures = sqlx::query_as!(
        Procedure,
        "SELECT id, code_system, code, text, performed_on
         FROM procedures WHERE patient_id = $1 AND status = 'completed'
         ORDER BY performed_on DESC NULLS LAST, text",
        p
    )
    .fetch_all(tx.conn())
    .await?;
    let mut vitals = vitals;
    vitals.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Chart {
        medications,
        immunizations,
        vitals,
        encounters,
        notes,
        care_plans,
        procedures,
    })
}

/// The signed-in patient's chart (audited).
pub async fn own(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Chart, sqlx::Error> {
    let c = read(tx, me.patient_id(), true).await?;
    super::viewed(tx, ctx, "chart", me.patient_id(), now).await?;
    Ok(c)
}

/// A patient's chart for clinical staff, unreleased notes included (audited).
pub async fn of_patient(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Chart, sqlx::Error> {
    let c = read(tx, patient, false).await?;
    super::viewed(tx, ctx, "chart", patient, now).await?;
    Ok(c)
}
