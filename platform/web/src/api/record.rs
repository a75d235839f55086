//! The signed-in patient's own health record over JSON (read-only): `GET /v1/record` (the
//! summary), `/v1/record/results`, `/v1/record/results/{id}`, `/v1/record/trends/{loinc}` and
//! `/v1/record/visits`. The same stores as the pages, so the same release rules and the same
//! audit rows.

use chrono::{DateTime, NaiveDate, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use portal_domain::identity::scope::PatientScope;
use portal_domain::record::results::{self, Shown, trend};
use portal_domain::record::{Code, chart};
use portal_tenants::Tenant;

use super::ApiTags;
use super::caller::{Caller, caller, unauthorized};
use super::error::ErrorBody;
use crate::auth::audit_ctx;
use crate::{AppState, internal};

/// A problem or an allergy.
#[derive(Debug, Object)]
pub struct EntryOut {
    pub id: String,
    pub name: String,
    /// `icd10cm`, `snomed`, `rxnorm` or `text`.
    pub code_system: String,
    pub code: Option<String>,
    pub status: String,
    /// Reaction and severity (allergies); onset (problems).
    pub detail: Option<String>,
}

#[derive(Debug, Object)]
pub struct MedicationOut {
    pub name: String,
    pub rxnorm: Option<String>,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub instructions: String,
    pub prescriber: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub status: String,
    pub refills_left: Option<i32>,
}

#[derive(Debug, Object)]
pub struct ImmunizationOut {
    pub vaccine: String,
    pub cvx: Option<String>,
    pub given_on: NaiveDate,
    pub dose_number: Option<i32>,
    pub lot: String,
}

#[derive(Debug, Object)]
pub struct VitalOut {
    pub loinc: String,
    pub name: String,
    pub value: Option<f64>,
    pub text: Option<String>,
    /// UCUM.
    pub unit: Option<String>,
    pub taken_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct ResultSummaryOut {
    pub id: String,
    /// `lab`, `imaging` or `other`.
    pub category: String,
    /// Empty while the result waits (the patient chose to see it after a comment).
    pub name: String,
    pub resulted_at: DateTime<Utc>,
    /// `visible` or `waiting`.
    pub status: String,
    pub visible_from: DateTime<Utc>,
    pub new: bool,
    pub flagged: bool,
    pub commented: bool,
}

#[derive(Debug, Object)]
pub struct SummaryOut {
    pub problems: Vec<EntryOut>,
    pub allergies: Vec<EntryOut>,
    pub medications: Vec<MedicationOut>,
    pub immunizations: Vec<ImmunizationOut>,
    pub vitals: Vec<VitalOut>,
    /// The ten newest.
    pub recent_results: Vec<ResultSummaryOut>,
}

#[derive(Debug, Object)]
pub struct ValueOut {
    pub loinc: String,
    pub name: String,
    pub value: Option<f64>,
    pub text: Option<String>,
    pub unit: Option<String>,
    pub range_low: Option<f64>,
    pub range_high: Option<f64>,
    pub range_text: String,
    /// HL7 interpretation: N, L, H, LL, HH, A.
    pub flag: Option<String>,
}

#[derive(Debug, Object)]
pub struct ResultOut {
    pub id: String,
    /// `visible`, or `waiting` (then only `visible_from` says anything).
    pub status: String,
    pub visible_from: DateTime<Utc>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub collected_at: Option<DateTime<Utc>>,
    pub resulted_at: Option<DateTime<Utc>>,
    pub performer: Option<String>,
    pub conclusion: Option<String>,
    pub comment: Option<String>,
    pub commented_by: Option<String>,
    pub commented_at: Option<DateTime<Utc>>,
    pub values: Vec<ValueOut>,
}

#[derive(Debug, Object)]
pub struct PointOut {
    pub at: DateTime<Utc>,
    pub value: f64,
    pub flag: Option<String>,
}

#[derive(Debug, Object)]
pub struct TrendOut {
    pub loinc: String,
    pub name: String,
    pub unit: String,
    pub range_low: Option<f64>,
    pub range_high: Option<f64>,
    /// Oldest first.
    pub points: Vec<PointOut>,
}

#[derive(Debug, Object)]
pub struct VisitOut {
    pub starts_at: DateTime<Utc>,
    pub kind: String,
    pub provider: String,
    pub diagnoses: String,
    pub summary: String,
}

#[derive(Debug, Object)]
pub struct NoteOut {
    pub title: String,
    pub author: String,
    pub signed_at: Option<DateTime<Utc>>,
    pub body: String,
}

#[derive(Debug, Object)]
pub struct VisitsOut {
    pub visits: Vec<VisitOut>,
    /// Notes released to the patient.
    pub notes: Vec<NoteOut>,
}

#[derive(ApiResponse)]
pub enum RecordResponse<T: poem_openapi::types::ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such result or test in this record (code `not_found`); another patient's id answers
    /// the same.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

fn code_parts(c: &Code) -> (String, Option<String>) {
    (c.system.as_str().to_owned(), c.code.clone())
}

fn summary_out(r: &results::ResultSummary) -> ResultSummaryOut {
    ResultSummaryOut {
        id: r.id.to_string(),
        category: r.category.as_str().to_owned(),
        name: r.name.clone(),
        resulted_at: r.resulted_at,
        status: if r.visible { "visible" } else { "waiting" }.to_owned(),
        visible_from: r.visible_from,
        new: r.new,
        flagged: r.flagged,
        commented: r.commented,
    }
}

async fn patient(
    req: &Request,
    state: &AppState,
) -> poem::Result<
    Option<(
        std::sync::Arc<Tenant>,
        PatientScope,
        portal_domain::audit::AuditContext,
    )>,
> {
    Ok(match caller(req, state, false).await? {
        Caller::In(t, me) => me.patient().map(|p| (t, p, audit_ctx(req, Some(&me)))),
        _ => None,
    })
}

fn not_found<T: poem_openapi::types::ToJSON>() -> RecordResponse<T> {
    RecordResponse::NotFound(ErrorBody::new("not_found", "no such entry in your record"))
}

pub struct RecordApi;

#[OpenApi]
impl RecordApi {
    /// The signed-in patient's health summary.
    #[oai(path = "/v1/record", method = "get", tag = "ApiTags::Records")]
    async fn summary(
        &self,
        req: &Request,
        Data(state): Data<&AppState>,
    ) -> poem::Result<RecordResponse<SummaryOut>> {
        let Some((tenant, me, ctx)) = patient(req, state).await? else {
            return Ok(RecordResponse::Unauthorized(unauthorized()));
        };
        let now = state.clock.now();
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let chart::Chart {
            problems: p,
            allergies: a,
            results: r,
            medications,
            immunizations,
            vitals,
            ..
        } = chart::own(
            &mut tx,
            &state.record_cache,
            &me,
            &ctx,
            chart::Extent::Api,
            now,
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(RecordResponse::Ok(Json(SummaryOut {
            problems: p
                .iter()
                .map(|x| {
                    let (code_system, code) = code_parts(&x.code);
                    EntryOut {
                        id: x.id.to_string(),
                        name: x.text.clone(),
                        code_system,
                        code,
                        status: x.clinical_status.clone(),
                        detail: x.onset.map(|d| format!("since {d}")),
                    }
                })
                .collect(),
            allergies: a
                .iter()
                .map(|x| {
                    let (code_system, code) = code_parts(&x.code);
                    EntryOut {
                        id: x.id.to_string(),
                        name: x.substance.clone(),
                        code_system,
                        code,
                        status: x.clinical_status.clone(),
                        detail: Some(
                            [x.reaction.clone(), x.severity.clone().unwrap_or_default()]
                                .into_iter()
                                .filter(|s| !s.is_empty())
                                .collect::<Vec<_>>()
                                .join(", "),
                        )
                        .filter(|s| !s.is_empty()),
                    }
                })
                .collect(),
            medications: medications
                .into_iter()
                .map(|m| MedicationOut {
                    name: m.name,
                    rxnorm: m.rxnorm,
                    dose: m.dose,
                    route: m.route,
                    frequency: m.frequency,
                    instructions: m.instructions,
                    prescriber: m.prescriber,
                    starts_on: m.starts_on,
                    ends_on: m.ends_on,
                    status: m.status,
                    refills_left: m.refills_left,
                })
                .collect(),
            immunizations: immunizations
                .into_iter()
                .map(|i| ImmunizationOut {
                    vaccine: i.vaccine,
                    cvx: i.cvx,
                    given_on: i.given_on,
                    dose_number: i.dose_number,
                    lot: i.lot,
                })
                .collect(),
            vitals: vitals
                .into_iter()
                .map(|v| VitalOut {
                    loinc: v.loinc,
                    name: v.name,
                    value: v.value_num,
                    text: v.value_text,
                    unit: v.unit,
                    taken_at: v.effective_at,
                })
                .collect(),
            recent_results: r.iter().map(summary_out).collect(),
        })))
    }

    /// The signed-in patient's results, newest first.
    #[oai(path = "/v1/record/results", method = "get", tag = "ApiTags::Records")]
    async fn results(
        &self,
        req: &Request,
        Data(state): Data<&AppState>,
    ) -> poem::Result<RecordResponse<Vec<ResultSummaryOut>>> {
        let Some((tenant, me, ctx)) = patient(req, state).await? else {
            return Ok(RecordResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let r = results::own(&mut tx, &me, &ctx, state.clock.now())
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(RecordResponse::Ok(Json(
            r.iter().map(summary_out).collect(),
        )))
    }

    /// One result: in full once the patient may see it (then no longer new), else when.
    #[oai(
        path = "/v1/record/results/:id",
        method = "get",
        tag = "ApiTags::Records"
    )]
    async fn result(
        &self,
        req: &Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<RecordResponse<ResultOut>> {
        let Some((tenant, me, ctx)) = patient(req, state).await? else {
            return Ok(RecordResponse::Unauthorized(unauthorized()));
        };
        let Ok(rid) = uuid::Uuid::try_parse(&id.0) else {
            return Ok(not_found());
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let shown = results::own_one(&mut tx, &me, &ctx, rid, state.clock.now())
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(match shown {
            None => not_found(),
            Some(Shown::Waiting(from)) => RecordResponse::Ok(Json(ResultOut {
                id: rid.to_string(),
                status: "waiting".to_owned(),
                visible_from: from,
                name: None,
                category: None,
                collected_at: None,
                resulted_at: None,
                performer: None,
                conclusion: None,
                comment: None,
                commented_by: None,
                commented_at: None,
                values: Vec::new(),
            })),
            Some(Shown::Visible(d)) => RecordResponse::Ok(Json(ResultOut {
                id: d.id.to_string(),
                status: "visible".to_owned(),
                visible_from: d.visible_from,
                name: Some(d.name.clone()),
                category: Some(d.category.as_str().to_owned()),
                collected_at: d.collected_at,
                resulted_at: Some(d.resulted_at),
                performer: Some(d.performer.clone()).filter(|s| !s.is_empty()),
                conclusion: Some(d.conclusion.clone()).filter(|s| !s.is_empty()),
                comment: Some(d.comment.clone()).filter(|s| !s.is_empty()),
                commented_by: d.commented_by.clone(),
                commented_at: d.commented_at,
                values: d
                    .values
                    .iter()
                    .map(|v| ValueOut {
                        loinc: v.loinc.clone(),
                        name: v.name.clone(),
                        value: v.value_num,
                        text: v.value_text.clone(),
                        unit: v.unit.clone(),
                        range_low: v.range_low,
                        range_high: v.range_high,
                        range_text: v.range_text.clone(),
                        flag: v.interpretation.clone(),
                    })
                    .collect(),
            })),
        })
    }

    /// One test's values over time (those the patient may see), oldest first.
    #[oai(
        path = "/v1/record/trends/:loinc",
        method = "get",
        tag = "ApiTags::Records"
    )]
    async fn trend(
        &self,
        req: &Request,
        Data(state): Data<&AppState>,
        loinc: Path<String>,
    ) -> poem::Result<RecordResponse<TrendOut>> {
        let Some((tenant, me, ctx)) = patient(req, state).await? else {
            return Ok(RecordResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let t = trend::own(
            &mut tx,
            &state.record_cache,
            &me,
            &ctx,
            &loinc.0,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(match t {
            None => not_found(),
            Some(t) => RecordResponse::Ok(Json(TrendOut {
                loinc: t.loinc,
                name: t.name,
                unit: t.unit,
                range_low: t.range_low,
                range_high: t.range_high,
                points: t
                    .points
                    .into_iter()
                    .map(|p| PointOut {
                        at: p.at,
                        value: p.value,
                        flag: p.interpretation,
                    })
                    .collect(),
            })),
        })
    }

    /// Visits with their after-visit summaries, and the notes released to the patient.
    #[oai(path = "/v1/record/visits", method = "get", tag = "ApiTags::Records")]
    async fn visits(
        &self,
        req: &Request,
        Data(state): Data<&AppState>,
    ) -> poem::Result<RecordResponse<VisitsOut>> {
        let Some((tenant, me, ctx)) = patient(req, state).await? else {
            return Ok(RecordResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let c = chart::own(
            &mut tx,
            &state.record_cache,
            &me,
            &ctx,
            chart::Extent::Area,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(RecordResponse::Ok(Json(VisitsOut {
            visits: c
                .encounters
                .into_iter()
                .map(|e| VisitOut {
                    starts_at: e.starts_at,
                    kind: e.kind,
                    provider: e.provider,
                    diagnoses: e.diagnoses,
                    summary: e.summary,
                })
                .collect(),
            notes: c
                .notes
                .into_iter()
                .map(|n| NoteOut {
                    title: n.title,
                    author: n.author,
                    signed_at: n.signed_at,
                    body: n.body,
                })
                .collect(),
        })))
    }
}
