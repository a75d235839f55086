//! Changing one problem or allergy (`/admin/patients/{id}/record/{problems|allergies}/{entry}`),
//! for clinicians and admins: the form is made against the version shown; an edit made
//! against an older one is refused with the newer one shown, and every earlier version is
//! listed with who made it and when. Reads and writes are audited by the stores.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::PatientId;
use portal_domain::patients::{self, Patient};
use portal_domain::record::allergies::{self, AllergyInput};
use portal_domain::record::problems::{self, ProblemInput};
use portal_domain::record::{CodeSystem, RecordError, Version};
use portal_domain::scheduling::clinic_tz;
use serde_json::Value;

use super::results::when;
use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;
use crate::{AppState, internal};

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

/// One earlier (or the current) version, in words.
pub struct VersionView {
    pub version: i32,
    pub by: String,
    pub at: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "record_entry.html")]
struct EntryPage {
    chrome: Chrome,
    patient: Patient,
    /// `problems` or `allergies`.
    kind: &'static str,
    id: uuid::Uuid,
    version: i32,
    /// The form's values by field name.
    f: Vec<(String, String)>,
    history: Vec<VersionView>,
    /// Set when an edit lost to a newer one: that version, in words.
    newer: Option<String>,
    errors: FormErrors,
}

impl EntryPage {
    fn v(&self, name: &str) -> &str {
        field(&self.f, name)
    }
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn summary(kind: &str, d: &Value) -> String {
    let parts: Vec<String> = if kind == "problems" {
        vec![
            s(d, "text"),
            s(d, "code"),
            s(d, "onset"),
            s(d, "clinical_status"),
        ]
    } else {
        vec![
            s(d, "substance"),
            s(d, "reaction"),
            s(d, "severity"),
            s(d, "clinical_status"),
        ]
    };
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The form's fields from a stored version.
fn fields(kind: &str, d: &Value) -> Vec<(String, String)> {
    let names: &[(&str, &str)] = if kind == "problems" {
        &[
            ("text", "text"),
            ("system", "code_system"),
            ("code", "code"),
            ("onset", "onset"),
            ("status", "clinical_status"),
        ]
    } else {
        &[
            ("substance", "substance"),
            ("system", "substance_system"),
            ("code", "substance_code"),
            ("reaction", "reaction"),
            ("severity", "severity"),
            ("status", "clinical_status"),
        ]
    };
    names
        .iter()
        .map(|(f, col)| ((*f).to_owned(), s(d, col)))
        .collect()
}

struct Loaded {
    patient: Patient,
    history: Vec<Version>,
}

async fn load(
    req: &Request,
    state: &AppState,
    chrome: &Chrome,
    me: &SignedIn,
    pid: PatientId,
    kind: &str,
    id: uuid::Uuid,
) -> poem::Result<Loaded> {
    let scope = me.clinical().ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(me));
    let now = state.clock.now();
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let patient = patients::get(&mut tx, scope.staff(), &ctx, pid, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let history = match kind {
        "problems" => problems::history(&mut tx, &scope, &ctx, pid, id, now).await,
        "allergies" => allergies::history(&mut tx, &scope, &ctx, pid, id, now).await,
        _ => return Err(not_found()),
    };
    let history = match history {
        Ok(h) => h,
        Err(RecordError::NotFound) => return Err(not_found()),
        Err(e) => return Err(internal(e)),
    };
    tx.commit().await.map_err(db)?;
    Ok(Loaded { patient, history })
}

fn page(chrome: Chrome, kind: &'static str, id: uuid::Uuid, l: Loaded) -> EntryPage {
    let tz = clinic_tz(&chrome.tenant);
    let current = l.history.last().cloned();
    EntryPage {
        patient: l.patient,
        kind,
        id,
        version: current.as_ref().map_or(0, |c| c.version),
        f: current
            .as_ref()
            .map(|c| fields(kind, &c.data))
            .unwrap_or_default(),
        history: l
            .history
            .iter()
            .rev()
            .map(|v| VersionView {
                version: v.version,
                by: v
                    .changed_by
                    .clone()
                    .unwrap_or_else(|| "Imported".to_owned()),
                at: when(v.changed_at, tz),
                summary: summary(kind, &v.data),
            })
            .collect(),
        newer: None,
        errors: FormErrors::default(),
        chrome,
    }
}

fn kind_of(raw: &str) -> Option<&'static str> {
    match raw {
        "problems" => Some("problems"),
        "allergies" => Some("allergies"),
        _ => None,
    }
}

/// `GET /admin/patients/{id}/record/{problems|allergies}/{entry}`.
#[handler]
pub async fn edit_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw_patient, raw_kind, raw_id)): Path<(String, String, String)>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let kind = kind_of(&raw_kind).ok_or_else(not_found)?;
    let pid = PatientId::parse(&raw_patient).ok_or_else(not_found)?;
    let id = uuid::Uuid::try_parse(&raw_id).map_err(|_| not_found())?;
    let l = load(req, state, &chrome, &me, pid, kind, id).await?;
    render(&page(chrome, kind, id, l)).map(IntoResponse::into_response)
}

fn field_id(kind: &str, e: &RecordError) -> &'static str {
    let f = match e {
        RecordError::Invalid { field, .. } => *field,
        _ => "",
    };
    match (kind, f) {
        ("problems", "code") => "entry-code",
        ("problems", "onset") => "entry-onset",
        ("problems", "status") => "entry-status",
        ("problems", _) => "entry-text",
        (_, "code") => "entry-code",
        (_, "reaction") => "entry-reaction",
        (_, "severity") => "entry-severity",
        (_, "status") => "entry-status",
        _ => "entry-substance",
    }
}

/// `POST /admin/patients/{id}/record/{problems|allergies}/{entry}`: the change, made against
/// the version the form was shown with.
#[handler]
pub async fn edit_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw_patient, raw_kind, raw_id)): Path<(String, String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let kind = kind_of(&raw_kind).ok_or_else(not_found)?;
    let scope = me.clinical().ok_or_else(not_found)?;
    let pid = PatientId::parse(&raw_patient).ok_or_else(not_found)?;
    let id = uuid::Uuid::try_parse(&raw_id).map_err(|_| not_found())?;
    let version = field(&f, "version").parse::<i32>().unwrap_or(0);
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let today = now.with_timezone(&clinic_tz(&chrome.tenant)).date_naive();
    let system = CodeSystem::parse(field(&f, "system")).unwrap_or(CodeSystem::Text);
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let result = if kind == "problems" {
        let raw_onset = field(&f, "onset").trim();
        let onset = chrono::NaiveDate::parse_from_str(raw_onset, "%Y-%m-%d").ok();
        if onset.is_none() && !raw_onset.is_empty() {
            Err(RecordError::Invalid {
                field: "onset",
                message: "Enter the date the problem began as a date, for example 2019-04-01."
                    .to_owned(),
            })
        } else {
            let input = ProblemInput {
                system,
                code: field(&f, "code"),
                text: field(&f, "text"),
                onset,
                abatement: None,
                clinical_status: field(&f, "status"),
            };
            problems::update(&mut tx, &scope, &ctx, pid, id, version, &input, today, now).await
        }
    } else {
        let input = AllergyInput {
            system,
            code: field(&f, "code"),
            substance: field(&f, "substance"),
            reaction: field(&f, "reaction"),
            severity: Some(field(&f, "severity")).filter(|s| !s.is_empty()),
            clinical_status: field(&f, "status"),
        };
        allergies::update(&mut tx, &scope, &ctx, pid, id, version, &input, now).await
    };
    match result {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!(
                "/admin/patients/{pid}/record/{kind}/{id}"
            )))
        }
        Err(RecordError::NotFound) => Err(not_found()),
        Err(RecordError::Database(e)) => Err(internal(e)),
        Err(RecordError::Stale { .. }) => {
            // Someone changed it since: show their version, and the form made against it.
            drop(tx);
            let l = load(req, state, &chrome, &me, pid, kind, id).await?;
            let mut p = page(chrome, kind, id, l);
            p.newer = p
                .history
                .first()
                .map(|v| format!("{} (by {}, {})", v.summary, v.by, v.at));
            p.errors = FormErrors::one(
                "entry-newer",
                "Someone changed this entry while you were editing it. Their version is below; make your change to it and save again.",
            );
            render_status(&p, StatusCode::CONFLICT)
        }
        Err(e) => {
            drop(tx);
            let l = load(req, state, &chrome, &me, pid, kind, id).await?;
            let mut p = page(chrome, kind, id, l);
            p.errors = FormErrors::one(field_id(kind, &e), super::scheduling_view::sentence(&e));
            p.f = f;
            render_status(&p, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}
