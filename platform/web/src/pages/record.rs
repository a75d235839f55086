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
use portal_domain::record::problems::{self, Problem, ProblemInput};
use portal_domain::record::{CodeSystem, RecordError};
use portal_domain::scheduling::clinic_tz;

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
        name: a.substance.clone(),
        code: code_label(&a.code),
        detail,
        status: a.clinical_status.clone(),
        active: a.clinical_status == "active",
    }
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    chrome: Chrome,
    /// Set on the staff page: whose record, and the forms' state.
    patient: Option<Patient>,
    problems: Vec<EntryView>,
    allergies: Vec<EntryView>,
    notice: Option<&'static str>,
    errors: FormErrors,
    f: Vec<(String, String)>,
}

impl RecordPage {
    /// What was typed in a field of the form sent back (`kind`: problems or allergies).
    fn typed(&self, kind: &str, name: &str) -> &str {
        if field(&self.f, "form") == kind {
            field(&self.f, name)
        } else {
            ""
        }
    }
}

/// `GET /record`: the signed-in patient's own problems and allergies.
#[handler]
pub async fn own(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "record").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.patient().ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let problems = problems::own(&mut tx, &scope, &ctx, now)
        .await
        .map_err(db)?;
    let allergies = allergies::own(&mut tx, &scope, &ctx, now)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&RecordPage {
        chrome,
        patient: None,
        problems: problems.iter().map(problem_view).collect(),
        allergies: allergies.iter().map(allergy_view).collect(),
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
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let patient = patients::get(&mut tx, scope.staff(), &ctx, id, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let problems = problems::of_patient(&mut tx, &scope, &ctx, id, now)
        .await
        .map_err(db)?;
    let allergies = allergies::of_patient(&mut tx, &scope, &ctx, id, now)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(RecordPage {
        chrome,
        patient: Some(patient),
        problems: problems.iter().map(problem_view).collect(),
        allergies: allergies.iter().map(allergy_view).collect(),
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
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
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
