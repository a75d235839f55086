//! The health record's pages (issue 11, first part): the patient's own problems and
//! allergies (`/record`), and for clinical staff a patient's record with forms to add to it
//! (`/admin/patients/{id}/record`). Every read and write is audited by the store.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::PatientId;
use portal_domain::patients::{self, Patient};
use portal_domain::record::allergies::{self, Allergy, AllergyInput};
use portal_domain::record::chart::{self, Chart};
use portal_domain::record::problems::{self, Problem, ProblemInput};
use portal_domain::record::results::{self, LabEntry};
use portal_domain::record::{CodeSystem, RecordError};
use portal_domain::scheduling::clinic_tz;

use super::results::{SummaryView, summary_view, when};
use super::trend_svg::number;
use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other, words};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;
use crate::{AppState, internal};

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

/// A problem or an allergy as a row.
pub struct EntryView {
    pub id: uuid::Uuid,
    pub name: String,
    pub code: String,
    pub detail: String,
    pub status: String,
    pub active: bool,
}

fn code_label(c: &portal_domain::record::Code) -> String {
    match &c.code {
        Some(code) => format!("{} {code}", c.system.label()),
        None => String::new(),
    }
}

fn problem_view(p: &Problem) -> EntryView {
    let since = p
        .onset
        .map(|d| format!("Since {}", words::birth_date(d)))
        .unwrap_or_default();
    EntryView {
        id: p.id,
        name: p.text.clone(),
        code: code_label(&p.code),
        detail: since,
        status: p.clinical_status.clone(),
        active: p.clinical_status == "active",
    }
}

fn allergy_view(a: &Allergy) -> EntryView {
    let detail = [a.reaction.clone(), a.severity.clone().unwrap_or_default()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    EntryView {
        id: a.id,
        name: a.substance.clone(),
        code: code_label(&a.code),
        detail,
        status: a.clinical_status.clone(),
        active: a.clinical_status == "active",
    }
}

/// The rest of the chart, worded for the page.
#[derive(Default)]
pub struct ChartView {
    /// Id, name, dose/route/frequency, instructions, status, active.
    pub medications: Vec<(uuid::Uuid, String, String, String, String, bool)>,
    /// Id, vaccine, date, details.
    pub immunizations: Vec<(uuid::Uuid, String, String, String)>,
    /// Name, value, when, trend link.
    pub vitals: Vec<(String, String, String, Option<String>)>,
    /// When, kind, provider, diagnoses, summary, id (for its summary as a PDF).
    pub visits: Vec<(String, String, String, String, String, String)>,
    /// Title, author, signed, body, released.
    pub notes: Vec<(String, String, String, String, bool)>,
    /// Title, description, goals (one a line), status.
    pub plans: Vec<(String, String, Vec<String>, String)>,
    /// Procedure, date.
    pub procedures: Vec<(String, String)>,
}

fn chart_view(c: &Chart, tz: chrono_tz::Tz, trend_base: &str) -> ChartView {
    let join = |parts: &[&str]| {
        parts
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" · ")
    };
    ChartView {
        medications: c
            .medications
            .iter()
            .map(|m| {
                (
                    m.id,
                    m.name.clone(),
                    join(&[&m.dose, &m.route, &m.frequency]),
                    m.instructions.clone(),
                    m.status.clone(),
                    m.status == "active",
                )
            })
            .collect(),
        immunizations: c
            .immunizations
            .iter()
            .map(|i| {
                let dose = i
                    .dose_number
                    .map(|d| format!("Dose {d}"))
                    .unwrap_or_default();
                let lot = if i.lot.is_empty() {
                    String::new()
                } else {
                    format!("Lot {}", i.lot)
                };
                (
                    i.id,
                    i.vaccine.clone(),
                    words::date(i.given_on),
                    join(&[&dose, &lot, &i.site, &i.performer]),
                )
            })
            .collect(),
        vitals: c
            .vitals
            .iter()
            .map(|v| {
                let value = match (v.value_num, &v.value_text) {
                    (Some(n), _) => {
                        format!("{} {}", number(n), v.unit.clone().unwrap_or_default())
                    }
                    (None, Some(t)) => t.clone(),
                    _ => String::new(),
                };
                (
                    v.name.clone(),
                    value.trim().to_owned(),
                    when(v.effective_at, tz),
                    v.value_num.map(|_| format!("{trend_base}/{}", v.loinc)),
                )
            })
            .collect(),
        visits: c
            .encounters
            .iter()
            .map(|e| {
                (
                    when(e.starts_at, tz),
                    e.kind.clone(),
                    e.provider.clone(),
                    e.diagnoses.clone(),
                    e.summary.clone(),
                    e.id.to_string(),
                )
            })
            .collect(),
        notes: c
            .notes
            .iter()
            .map(|n| {
                (
                    n.title.clone(),
                    n.author.clone(),
                    n.signed_at.map(|t| when(t, tz)).unwrap_or_default(),
                    n.body.clone(),
                    n.released,
                )
            })
            .collect(),
        plans: c
            .care_plans
            .iter()
            .map(|p| {
                (
                    p.title.clone(),
                    p.description.clone(),
                    p.goals
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    p.status.clone(),
                )
            })
            .collect(),
        procedures: c
            .procedures
            .iter()
            .map(|p| {
                (
                    p.text.clone(),
                    p.performed_on.map(words::date).unwrap_or_default(),
                )
            })
            .collect(),
    }
}

/// The areas a patient can open on their own (`/record/{area}`).
const AREAS: [&str; 5] = ["medications", "immunizations", "vitals", "visits", "plans"];

/// How many results and immunizations the summary shows.
const SUMMARY_RESULTS: usize = 5;
const SUMMARY_IMMUNIZATIONS: usize = 3;

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    chrome: Chrome,
    /// Set on the staff page: whose record, and the forms' state.
    patient: Option<Patient>,
    problems: Vec<EntryView>,
    allergies: Vec<EntryView>,
    /// `summary`, or the one area a page shows (`medications`, `immunizations`, `vitals`,
    /// `visits`, `plans`).
    area: &'static str,
    chart: ChartView,
    results: Vec<SummaryView>,
    /// More results than the summary shows.
    more_results: bool,
    notice: Option<&'static str>,
    errors: FormErrors,
    f: Vec<(String, String)>,
}

impl RecordPage {
    /// Whether this page shows an area's section. Staff see the whole record on one page; a
    /// patient's summary is what a summary is for (problems, allergies, current medications,
    /// immunizations, latest vital signs, recent results), and their visits, notes and care
    /// plans are a link away, each on its own page.
    fn shows(&self, area: &str) -> bool {
        if self.area == "summary" {
            self.patient.is_some() || !matches!(area, "visits" | "plans")
        } else {
            self.area == area
        }
    }

    /// The patient's summary, where medications means current ones.
    fn own_summary(&self) -> bool {
        self.patient.is_none() && self.area == "summary"
    }

    /// What was typed in a field of the form sent back (`kind`: problems or allergies).
    fn typed(&self, kind: &str, name: &str) -> &str {
        if field(&self.f, "form") == kind {
            field(&self.f, name)
        } else {
            ""
        }
    }
}

/// `GET /record`: the signed-in patient's health summary.
#[handler]
pub async fn own(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    own_page(req, state, "summary").await
}

/// `GET /record/{area}`: one area of the patient's record in full.
#[handler]
pub async fn own_area(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(area): Path<String>,
) -> poem::Result<Response> {
    let area = AREAS
        .into_iter()
        .find(|a| *a == area)
        .ok_or_else(not_found)?;
    own_page(req, state, area).await
}

async fn own_page(req: &Request, state: &AppState, area: &'static str) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "record").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.patient().ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let extent = if area == "summary" {
        chart::Extent::Summary
    } else {
        chart::Extent::Area
    };
    // The whole chart in one read (one audit row); the summary gets one result more than it
    // shows, to know whether there are more.
    let full = chart::own(&mut tx, &state.record_cache, &scope, &ctx, extent, now)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let problems = &full.problems;
    let allergies = &full.allergies;
    let results = &full.results;
    let mut chart = chart_view(&full, tz, "/results/trend");
    if area == "summary" {
        chart.immunizations.truncate(SUMMARY_IMMUNIZATIONS);
        // Current: being taken, or paused for now (on hold), not stopped or completed.
        chart
            .medications
            .retain(|m| matches!(m.4.as_str(), "active" | "on-hold"));
    }
    render(&RecordPage {
        chrome,
        patient: None,
        problems: problems.iter().map(problem_view).collect(),
        allergies: allergies.iter().map(allergy_view).collect(),
        area,
        chart,
        more_results: results.len() > SUMMARY_RESULTS,
        results: results
            .iter()
            .take(SUMMARY_RESULTS)
            .map(|r| summary_view(r, "/results", tz))
            .collect(),
        notice: None,
        errors: FormErrors::default(),
        f: Vec::new(),
    })
    .map(IntoResponse::into_response)
}

#[allow(clippy::too_many_arguments)]
async fn staff_page(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    raw_id: &str,
    notice: Option<&'static str>,
    errors: FormErrors,
    f: Vec<(String, String)>,
) -> poem::Result<RecordPage> {
    let scope = me.clinical().ok_or_else(not_found)?;
    let id = PatientId::parse(raw_id).ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let patient = patients::get(&mut tx, scope.staff(), &ctx, id, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let full = chart::of_patient(&mut tx, &scope, &ctx, id, now)
        .await
        .map_err(db)?;
    let (problems, allergies, results, chart) =
        (&full.problems, &full.allergies, &full.results, &full);
    tx.commit().await.map_err(db)?;
    let tz = clinic_tz(&chrome.tenant);
    let base = format!("/admin/patients/{id}");
    Ok(RecordPage {
        chrome,
        patient: Some(patient),
        problems: problems.iter().map(problem_view).collect(),
        allergies: allergies.iter().map(allergy_view).collect(),
        area: "summary",
        chart: chart_view(chart, tz, &format!("{base}/trend")),
        results: results
            .iter()
            .map(|r| summary_view(r, &format!("{base}/results"), tz))
            .collect(),
        more_results: false,
        notice,
        errors,
        f,
    })
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /admin/patients/{id}/record`.
#[handler]
pub async fn of_patient(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw_id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let notice = match q.done.as_deref() {
        Some("problem") => Some("Problem added to the record."),
        Some("allergy") => Some("Allergy added to the record."),
        Some("result") => {
            Some("Result added. The patient is told it is ready (without what it says).")
        }
        _ => None,
    };
    let page = staff_page(
        req,
        state,
        chrome,
        &me,
        &raw_id,
        notice,
        FormErrors::default(),
        Vec::new(),
    )
    .await?;
    render(&page).map(IntoResponse::into_response)
}

/// The page's id of the field an error is about (`done`: which form, problem or allergy).
fn field_id(done: &str, e: &RecordError) -> &'static str {
    let field = match e {
        RecordError::Invalid { field, .. } => *field,
        _ => "",
    };
    match (done, field) {
        ("problem", "code") => "problem-code",
        ("problem", "onset") => "problem-onset",
        ("problem", _) => "problem-text",
        ("allergy", "code") => "allergy-code",
        ("allergy", "reaction") => "allergy-reaction",
        ("allergy", "severity") => "allergy-severity",
        ("result", "loinc") => "result-loinc",
        ("result", "value") => "result-value",
        ("result", "unit") => "result-unit",
        ("result", "low") => "result-low",
        ("result", "high") => "result-high",
        ("result", "collected") => "result-collected",
        ("result", _) => "result-name",
        ("medication", _) => match super::record_edit::field_id("medications", e) {
            "entry-name" => "med-name",
            "entry-code" => "med-code",
            "entry-starts_on" => "med-starts_on",
            _ => "med-name",
        },
        ("immunization", _) => match super::record_edit::field_id("immunizations", e) {
            "entry-cvx" => "imm-cvx",
            "entry-given_on" => "imm-given_on",
            "entry-dose" => "imm-dose",
            _ => "imm-vaccine",
        },
        _ => "allergy-substance",
    }
}

/// `POST /admin/patients/{id}/record/{problems|allergies}`: adds an entry.
#[handler]
pub async fn add(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw_id, kind)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.clinical().ok_or_else(not_found)?;
    let id = PatientId::parse(&raw_id).ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let today = now.with_timezone(&clinic_tz(&chrome.tenant)).date_naive();
    let system = CodeSystem::parse(field(&f, "system")).unwrap_or(CodeSystem::Text);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (result, done) = match kind.as_str() {
        "problems" => {
            // An onset that was typed but is not a date is refused, not dropped.
            let raw_onset = field(&f, "onset").trim();
            let onset = chrono::NaiveDate::parse_from_str(raw_onset, "%Y-%m-%d").ok();
            let bad_onset = onset.is_none() && !raw_onset.is_empty();
            let input = ProblemInput {
                system,
                code: field(&f, "code"),
                text: field(&f, "text"),
                onset,
                abatement: None,
                clinical_status: "active",
            };
            if bad_onset {
                (
                    Err(RecordError::Invalid {
                        field: "onset",
                        message:
                            "Enter the date the problem began as a date, for example 2019-04-01."
                                .to_owned(),
                    }),
                    "problem",
                )
            } else {
                (
                    problems::add(&mut tx, &scope, &ctx, id, &input, today, now).await,
                    "problem",
                )
            }
        }
        "allergies" => {
            let severity = Some(field(&f, "severity")).filter(|s| !s.is_empty());
            let input = AllergyInput {
                system,
                code: field(&f, "code"),
                substance: field(&f, "substance"),
                reaction: field(&f, "reaction"),
                severity,
                clinical_status: "active",
            };
            (
                allergies::add(&mut tx, &scope, &ctx, id, &input, now).await,
                "allergy",
            )
        }
        "medications" | "immunizations" => (
            super::record_edit::save_drug_or_vaccine(
                &mut tx, &scope, &ctx, &kind, id, None, &f, today, now,
            )
            .await,
            if kind == "medications" {
                "medication"
            } else {
                "immunization"
            },
        ),
        "results" => {
            // The collection time is typed in the clinic's zone; one that is not a time is
            // refused, not replaced by now.
            let raw = field(&f, "collected").trim();
            let tz = clinic_tz(&chrome.tenant);
            let collected = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
                .ok()
                .and_then(|t| t.and_local_timezone(tz).earliest())
                .map(|t| t.with_timezone(&chrono::Utc));
            if collected.is_none() && !raw.is_empty() {
                (
                    Err(RecordError::Invalid {
                        field: "collected",
                        message: "Enter when the sample was collected as a date and time."
                            .to_owned(),
                    }),
                    "result",
                )
            } else {
                let entry = LabEntry {
                    name: field(&f, "name"),
                    loinc: field(&f, "loinc"),
                    value: field(&f, "value"),
                    unit: field(&f, "unit"),
                    low: field(&f, "low"),
                    high: field(&f, "high"),
                    collected_at: collected,
                    performer: field(&f, "performer"),
                };
                (
                    results::enter_lab(&mut tx, &scope, &ctx, id, &entry, now).await,
                    "result",
                )
            }
        }
        _ => return Err(not_found()),
    };
    match result {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!(
                "/admin/patients/{id}/record?done={done}"
            )))
        }
        Err(RecordError::NotFound) => Err(not_found()),
        Err(RecordError::Database(e)) => Err(internal(e)),
        Err(e) => {
            drop(tx);
            let mut f = f;
            f.push(("form".to_owned(), kind.clone()));
            let errors = FormErrors::one(field_id(done, &e), super::scheduling_view::sentence(&e));
            let page = staff_page(req, state, chrome, &me, &raw_id, None, errors, f).await?;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}
