//! Changing one problem, allergy, medication or immunization
//! (`/admin/patients/{id}/record/{problems|allergies|medications|immunizations}/{entry}`),
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
use portal_domain::record::medications::{self, ImmunizationInput, MedicationInput};
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
    /// `problems`, `allergies`, `medications` or `immunizations`.
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
    /// "a problem", "an allergy", …
    fn what(&self) -> &'static str {
        match self.kind {
            "problems" => "a problem",
            "allergies" => "an allergy",
            "medications" => "a medication",
            _ => "an immunization",
        }
    }
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn summary(kind: &str, d: &Value) -> String {
    let keys: &[&str] = match kind {
        "problems" => &["text", "code", "onset", "clinical_status"],
        "allergies" => &["substance", "reaction", "severity", "clinical_status"],
        "medications" => &["name", "dose", "frequency", "status"],
        _ => &["vaccine", "given_on", "lot", "status"],
    };
    keys.iter()
        .map(|k| s(d, k))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The form's fields from a stored version (field name, column).
fn fields(kind: &str, d: &Value) -> Vec<(String, String)> {
    let names: &[(&str, &str)] = match kind {
        "problems" => &[
            ("text", "text"),
            ("system", "code_system"),
            ("code", "code"),
            ("onset", "onset"),
            ("status", "clinical_status"),
        ],
        "allergies" => &[
            ("substance", "substance"),
            ("system", "substance_system"),
            ("code", "substance_code"),
            ("reaction", "reaction"),
            ("severity", "severity"),
            ("status", "clinical_status"),
        ],
        "medications" => &[
            ("name", "name"),
            ("code", "code"),
            ("dose", "dose"),
            ("route", "route"),
            ("frequency", "frequency"),
            ("instructions", "instructions"),
            ("prescriber", "prescriber"),
            ("starts_on", "starts_on"),
            ("ends_on", "ends_on"),
            ("refills", "refills_left"),
            ("status", "status"),
        ],
        _ => &[
            ("vaccine", "vaccine"),
            ("cvx", "cvx"),
            ("given_on", "given_on"),
            ("dose", "dose_number"),
            ("lot", "lot"),
            ("site", "site"),
            ("performer", "performer"),
            ("status", "status"),
        ],
    };
    names
        .iter()
        .map(|(f, col)| {
            let v = match d.get(*col) {
                Some(Value::Number(n)) => n.to_string(),
                _ => s(d, col),
            };
            ((*f).to_owned(), v)
        })
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
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let patient = patients::get(&mut tx, scope.staff(), &ctx, pid, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let history = match kind {
        "problems" => problems::history(&mut tx, &scope, &ctx, pid, id, now).await,
        "allergies" => allergies::history(&mut tx, &scope, &ctx, pid, id, now).await,
        "medications" => medications::history(&mut tx, &scope, &ctx, true, pid, id, now).await,
        "immunizations" => medications::history(&mut tx, &scope, &ctx, false, pid, id, now).await,
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
    ["problems", "allergies", "medications", "immunizations"]
        .into_iter()
        .find(|k| *k == raw)
}

/// A typed date (`YYYY-MM-DD`): empty is none; anything else that is not a date is refused.
pub(crate) fn typed_date(
    raw: &str,
    field: &'static str,
    what: &str,
) -> Result<Option<chrono::NaiveDate>, RecordError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| RecordError::Invalid {
            field,
            message: format!("Enter the {what} as a date, for example 2024-04-01."),
        })
}

/// A typed whole number: empty is none; anything else that is not one is refused.
pub(crate) fn typed_number(
    raw: &str,
    field: &'static str,
    what: &str,
) -> Result<Option<i32>, RecordError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i32>()
        .map(Some)
        .map_err(|_| RecordError::Invalid {
            field,
            message: format!("The {what} is a whole number."),
        })
}

/// Saves a medication or an immunization from the form (`id`: change that entry, made
/// against `version`; none: add one). Returns the entry's id.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn save_drug_or_vaccine(
    tx: &mut portal_tenants::TenantTx,
    scope: &portal_domain::identity::scope::ClinicalScope,
    ctx: &portal_domain::audit::AuditContext,
    kind: &str,
    pid: PatientId,
    id: Option<(uuid::Uuid, i32)>,
    f: &[(String, String)],
    today: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<uuid::Uuid, RecordError> {
    if kind == "medications" {
        let code = field(f, "code").trim();
        let m = MedicationInput {
            system: if code.is_empty() {
                CodeSystem::Text
            } else {
                CodeSystem::Rxnorm
            },
            code,
            name: field(f, "name"),
            dose: field(f, "dose"),
            route: field(f, "route"),
            frequency: field(f, "frequency"),
            instructions: field(f, "instructions"),
            prescriber: field(f, "prescriber"),
            starts_on: typed_date(field(f, "starts_on"), "starts_on", "start date")?,
            ends_on: typed_date(field(f, "ends_on"), "ends_on", "end date")?,
            status: field(f, "status"),
            refills_left: typed_number(field(f, "refills"), "refills", "number of refills")?,
        };
        match id {
            Some((id, v)) => medications::update_medication(tx, scope, ctx, pid, id, v, &m, now)
                .await
                .map(|_| id),
            None => medications::add_medication(tx, scope, ctx, pid, &m, now).await,
        }
    } else {
        let given_on = typed_date(field(f, "given_on"), "given_on", "date it was given")?
            .ok_or_else(|| RecordError::Invalid {
                field: "given_on",
                message: "Enter the date the vaccine was given.".to_owned(),
            })?;
        let i = ImmunizationInput {
            cvx: field(f, "cvx"),
            vaccine: field(f, "vaccine"),
            given_on,
            dose_number: typed_number(field(f, "dose"), "dose", "dose number")?,
            lot: field(f, "lot"),
            site: field(f, "site"),
            performer: field(f, "performer"),
            status: field(f, "status"),
        };
        match id {
            Some((id, v)) => {
                medications::update_immunization(tx, scope, ctx, pid, id, v, &i, today, now)
                    .await
                    .map(|_| id)
            }
            None => medications::add_immunization(tx, scope, ctx, pid, &i, today, now).await,
        }
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

pub(crate) fn field_id(kind: &str, e: &RecordError) -> &'static str {
    let f = match e {
        RecordError::Invalid { field, .. } => *field,
        _ => "",
    };
    match (kind, f) {
        ("medications", "code") => "entry-code",
        ("medications", "dose") => "entry-dose",
        ("medications", "route") => "entry-route",
        ("medications", "frequency") => "entry-frequency",
        ("medications", "instructions") => "entry-instructions",
        ("medications", "prescriber") => "entry-prescriber",
        ("medications", "starts_on") => "entry-starts_on",
        ("medications", "ends_on") => "entry-ends_on",
        ("medications", "refills") => "entry-refills",
        ("medications", "status") => "entry-status",
        ("medications", _) => "entry-name",
        ("immunizations", "code") => "entry-cvx",
        ("immunizations", "given_on") => "entry-given_on",
        ("immunizations", "dose") => "entry-dose",
        ("immunizations", "lot") => "entry-lot",
        ("immunizations", "site") => "entry-site",
        ("immunizations", "performer") => "entry-performer",
        ("immunizations", "status") => "entry-status",
        ("immunizations", _) => "entry-vaccine",
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
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = if kind == "medications" || kind == "immunizations" {
        save_drug_or_vaccine(
            &mut tx,
            &scope,
            &ctx,
            kind,
            pid,
            Some((id, version)),
            &f,
            today,
            now,
        )
        .await
        .map(|_| 0)
    } else if kind == "problems" {
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
