//! The chart, read together in one query: problems, allergies, medications, immunizations,
//! latest vital signs, visits with their after-visit summaries, clinicians' notes (a patient
//! sees only released ones), care plans, procedures and the newest results. One read is one
//! audit row (`record.view` of `chart`).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use super::cache::{Key, RecordCache, Value, View, viewed_at_version};

use crate::audit::AuditContext;
use crate::identity::scope::{ClinicalScope, PatientScope};
use crate::ids::PatientId;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Vital {
    pub loinc: String,
    pub name: String,
    pub value_num: Option<f64>,
    pub value_text: Option<String>,
    pub unit: Option<String>,
    pub interpretation: Option<String>,
    pub effective_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Encounter {
    pub id: uuid::Uuid,
    pub starts_at: DateTime<Utc>,
    pub kind: String,
    pub provider: String,
    pub diagnoses: String,
    pub summary: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CarePlan {
    pub id: uuid::Uuid,
    pub title: String,
    pub description: String,
    pub goals: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub status: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Procedure {
    pub id: uuid::Uuid,
    pub code_system: String,
    pub code: Option<String>,
    pub text: String,
    pub performed_on: Option<NaiveDate>,
}

/// The chart.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Chart {
    /// Active first (refuted and entered-in-error left out), as `problems::own` lists them.
    pub problems: Vec<super::problems::Problem>,
    pub allergies: Vec<super::allergies::Allergy>,
    /// The newest results, as the results list shows them (held ones without name).
    pub results: Vec<super::results::ResultSummary>,
    /// Active first, then by start date, newest first.
    pub medications: Vec<Medication>,
    /// Newest first.
    pub immunizations: Vec<Immunization>,
    /// The latest value of each vital sign ([`VITAL_SIGNS`]).
    pub vitals: Vec<Vital>,
    /// Newest first (at most 200; none for the summary).
    pub encounters: Vec<Encounter>,
    /// Newest first (at most 200; none for the summary).
    pub notes: Vec<Note>,
    /// None for the summary.
    pub care_plans: Vec<CarePlan>,
    /// None for the summary.
    pub procedures: Vec<Procedure>,
}

/// The vital signs whose latest value the summary shows (US Core's vital signs, blood
/// pressure as its two components). Each is found by its own index probe instead of reading
/// every vital sign of the patient's years.
pub const VITAL_SIGNS: [&str; 11] = [
    "8480-6", "8462-4", "8867-4", "9279-1", "29463-7", "8302-2", "39156-5", "8310-5", "59408-5",
    "2708-6", "9843-4",
];

/// How much of the chart a read returns: what the page or document asking for it shows.
#[derive(Debug, Clone, Copy)]
pub enum Extent {
    /// The patient's health summary: what the summary shows and nothing more — problems,
    /// allergies, medications, the 4 newest immunizations, the latest vital signs and the 6
    /// newest results. Visits, notes, care plans and procedures have their own pages.
    Summary,
    /// One area's page: up to 200 of each, no results.
    Area,
    /// A clinician's view of the record: up to 200 of each and 500 results.
    Staff,
    /// The API's summary: every immunization (up to 200, as the API has no other list of
    /// them) and the ten newest results.
    Api,
    /// A printed document: up to 200 of each and the 50 newest results.
    Printout,
}

impl Extent {
    fn limit(self) -> i64 {
        match self {
            Extent::Summary => 4,
            Extent::Area | Extent::Staff | Extent::Api | Extent::Printout => 200,
        }
    }
    /// How many visits and notes.
    fn visits(self) -> i64 {
        match self {
            Extent::Summary => 0,
            _ => self.limit(),
        }
    }
    /// Whether care plans and procedures are read.
    fn plans(self) -> bool {
        !matches!(self, Extent::Summary)
    }
    fn results(self) -> i64 {
        match self {
            Extent::Summary => 6,
            Extent::Area => 0,
            Extent::Staff => 500,
            Extent::Api => 10,
            Extent::Printout => 50,
        }
    }
}

/// The chart as the database gives it (kept as it is by the record cache).
#[derive(Clone, serde::Deserialize)]
pub(crate) struct Parts {
    /// The record's version this was read at (`None` before its first change).
    version: Option<uuid::Uuid>,
    /// Roughly the bytes it holds in memory (twice its JSON text), for the cache's bound.
    #[serde(skip)]
    weight: usize,
    problems: Vec<super::problems::Row>,
    allergies: Vec<super::allergies::Row>,
    results: Vec<super::results::SummaryRow>,
    medications: Vec<Medication>,
    immunizations: Vec<Immunization>,
    vitals: Vec<Vital>,
    encounters: Vec<Encounter>,
    notes: Vec<Note>,
    care_plans: Vec<CarePlan>,
    procedures: Vec<Procedure>,
}

impl Parts {
    fn into_chart(self, as_patient: bool, now: DateTime<Utc>) -> Chart {
        Chart {
            problems: self.problems.into_iter().map(Into::into).collect(),
            allergies: self.allergies.into_iter().map(Into::into).collect(),
            results: self
                .results
                .into_iter()
                .map(|r| super::results::summarize(r, as_patient, now))
                .collect(),
            medications: self.medications,
            immunizations: self.immunizations,
            vitals: self.vitals,
            encounters: self.encounters,
            notes: self.notes,
            care_plans: self.care_plans,
            procedures: self.procedures,
        }
    }
}

/// The whole chart in one round trip: each part is a JSON array built by the database, and
/// the read's audit row (`record.view` of `chart`, the same row `audit::record` writes) is
/// inserted by the same statement when `audit` is set, so a summary costs one statement, not
/// two. Callers open the transaction with `TenantDb::begin_generic_plans`: re-planning this
/// statement for every patient cost more than running it.
async fn read_parts(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    patient: PatientId,
    as_patient: bool,
    extent: Extent,
    now: DateTime<Utc>,
    audit: bool,
) -> Result<Parts, sqlx::Error> {
    let codes: Vec<String> = VITAL_SIGNS.iter().map(|c| (*c).to_owned()).collect();
    let row = sqlx::query_scalar!(
        r#"WITH audited AS (
               INSERT INTO audit_log (at, actor_user_id, actor_role, patient_id, action,
                                      resource_type, client_addr, request_id)
               SELECT $6, $7, $8, $1, $9, 'chart', $10, $11 WHERE $14)
           SELECT json_build_object(
            'version', (SELECT version FROM record_versions WHERE patient_id = $1),
            'problems', (SELECT coalesce(json_agg(x ORDER BY x.clinical_status <> 'active',
                                    x.onset DESC NULLS LAST, x.text), '[]')
                FROM (SELECT id, version, code_system, code, text, onset, abatement,
                             clinical_status, verification, updated_at
                      FROM conditions WHERE patient_id = $1
                        AND verification NOT IN ('entered-in-error', 'refuted')) x),
            'allergies', (SELECT coalesce(json_agg(x ORDER BY x.clinical_status <> 'active',
                                    x.substance), '[]')
                FROM (SELECT id, version, substance_system, substance_code, substance, reaction,
                             severity, clinical_status, verification, updated_at
                      FROM allergies WHERE patient_id = $1
                        AND verification NOT IN ('entered-in-error', 'refuted')) x),
            'results', (SELECT coalesce(json_agg(x ORDER BY x.resulted_at DESC, x.id DESC), '[]')
                FROM (SELECT y.*, EXISTS (SELECT 1 FROM observations o WHERE o.report_id = y.id
                                     AND o.interpretation IS NOT NULL AND o.interpretation <> 'N'
                                     AND o.status <> 'entered-in-error') AS flagged
                      FROM (SELECT r.id, r.category, r.name, r.resulted_at, r.visible_from,
                                   (r.comment <> '') AS commented, (s.report_id IS NULL) AS new
                            FROM result_reports r LEFT JOIN result_seen s ON s.report_id = r.id
                            WHERE r.patient_id = $1
                              AND r.status NOT IN ('entered-in-error', 'cancelled')
                            ORDER BY r.resulted_at DESC, r.id DESC LIMIT $5) y) x),
            'medications', (SELECT coalesce(json_agg(m ORDER BY m.status <> 'active',
                                    m.starts_on DESC NULLS LAST, m.name), '[]')
                FROM (SELECT id, code AS rxnorm, name, dose, route, frequency, instructions,
                             prescriber, starts_on, ends_on, status, quantity, refills_left
                      FROM medications WHERE patient_id = $1 AND status <> 'entered-in-error') m),
            'immunizations', (SELECT coalesce(json_agg(i ORDER BY i.given_on DESC, i.vaccine), '[]')
                FROM (SELECT id, cvx, vaccine, given_on, dose_number, lot, site, performer
                      FROM immunizations WHERE patient_id = $1 AND status = 'completed'
                      ORDER BY given_on DESC, vaccine LIMIT $3) i),
            'vitals', (SELECT coalesce(json_agg(v ORDER BY v.name), '[]')
                FROM (SELECT o.loinc, o.name, o.value_num, o.value_text, o.unit, o.interpretation,
                             o.effective_at
                      FROM unnest($4::text[]) AS c(loinc)
                      CROSS JOIN LATERAL (
                          SELECT loinc, name, value_num, value_text, unit, interpretation,
                                 effective_at
                          FROM observations
                          WHERE patient_id = $1 AND loinc = c.loinc
                            AND category = 'vital-signs' AND status <> 'entered-in-error'
                          ORDER BY effective_at DESC LIMIT 1) o) v),
            'encounters', (SELECT coalesce(json_agg(e ORDER BY e.starts_at DESC), '[]')
                FROM (SELECT id, starts_at, kind, provider, diagnoses, summary
                      FROM encounters
                      WHERE patient_id = $1 AND status NOT IN ('entered-in-error', 'cancelled')
                      ORDER BY starts_at DESC LIMIT $12) e),
            'notes', (SELECT coalesce(json_agg(n ORDER BY n.signed_at DESC NULLS LAST, n.id DESC), '[]')
                FROM (SELECT id, encounter_id, title, body, author, signed_at, released,
                             confidential
                      FROM clinical_notes
                      WHERE patient_id = $1 AND status = 'current' AND (released OR NOT $2)
                      ORDER BY signed_at DESC NULLS LAST, id DESC LIMIT $12) n),
            'care_plans', (SELECT coalesce(json_agg(c ORDER BY c.status <> 'active',
                                    c.starts_on DESC NULLS LAST), '[]')
                FROM (SELECT id, title, description, goals, starts_on, ends_on, status
                      FROM care_plans
                      WHERE $13 AND patient_id = $1
                        AND status NOT IN ('entered-in-error', 'draft')) c),
            'procedures', (SELECT coalesce(json_agg(p ORDER BY p.performed_on DESC NULLS LAST,
                                    p.text), '[]')
                FROM (SELECT id, code_system, code, text, performed_on
                      FROM procedures WHERE $13 AND patient_id = $1 AND status = 'completed') p)
           )::text AS "chart!""#,
        patient.as_uuid(),
        as_patient,
        extent.limit(),
        &codes,
        extent.results(),
        now,
        ctx.actor.map(|(u, _)| u.as_uuid()),
        ctx.actor.map(|(_, r)| r.as_str()),
        crate::audit::Action::RecordView.code(),
        ctx.client_addr,
        ctx.request_id,
        extent.visits(),
        extent.plans(),
        audit
    )
    .fetch_one(tx.conn())
    .await?;
    // Decoded straight from the JSON text into the parts, not through a `serde_json::Value`.
    let mut parts: Parts =
        serde_json::from_str(&row).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    parts.weight = 2 * row.len() + 256;
    Ok(parts)
}

/// The chart, audited (one row, in the same statement).
async fn read(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    patient: PatientId,
    as_patient: bool,
    extent: Extent,
    now: DateTime<Utc>,
) -> Result<Chart, sqlx::Error> {
    let parts = read_parts(tx, ctx, patient, as_patient, extent, now, true).await?;
    Ok(parts.into_chart(as_patient, now))
}

/// The signed-in patient's chart (audited, one row). The summary, the page a patient comes
/// back to, is kept in `cache` and read again only when the record has changed.
pub async fn own(
    tx: &mut TenantTx,
    cache: &RecordCache,
    me: &PatientScope,
    ctx: &AuditContext,
    extent: Extent,
    now: DateTime<Utc>,
) -> Result<Chart, sqlx::Error> {
    let patient = me.patient_id();
    if !(cache.is_on() && matches!(extent, Extent::Summary)) {
        return read(tx, ctx, patient, true, extent, now).await;
    }
    let version = viewed_at_version(tx, ctx, "chart", patient, now).await?;
    let key = Key::new(tx, patient, View::Summary);
    if let Some(Value::Chart(parts)) = cache.get(&key, version, now).await {
        return Ok(Parts::clone(&parts).into_chart(true, now));
    }
    let parts = read_parts(tx, ctx, patient, true, extent, now, false).await?;
    let (version, weight) = (parts.version, parts.weight);
    let kept = Value::Chart(Arc::new(parts.clone()));
    cache.put(key, version, None, kept, weight).await;
    Ok(parts.into_chart(true, now))
}

/// A patient's chart for clinical staff, unreleased notes and held results included
/// (audited, one row).
pub async fn of_patient(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Chart, sqlx::Error> {
    let c = read(tx, ctx, patient, false, Extent::Staff, now).await?;
    Ok(c)
}

/// A patient's chart as the patient sees it (released notes only, held results without
/// their content), for a document the workers print. Audited with the caller's context
/// (the clinic's system, for a worker).
pub async fn for_printout(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Chart, sqlx::Error> {
    read(tx, ctx, patient, true, Extent::Printout, now).await
}
