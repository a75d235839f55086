//! Staff's patients area: search by name, date of birth, phone or email (25 a page), add a
//! patient, and a patient's page (details, visits, and what this role may do now: book,
//! invite). Every patient read or write goes through a staff scope and is audited.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::accounts::{self, AccountError};
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::PatientId;
use portal_domain::patients::{self, Patient};
use portal_domain::scheduling::{appointments, clinic_tz};

use super::invite::chrono_tz_of;
use super::patient_form::{self, DateParts, PatientFields};
use super::scheduling_view::{ApptView, appt_view, zone_note};
use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other, words};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::limits;
use crate::{AppState, internal};

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

/// A signed-in member of staff (the route's policy has already checked the role).
async fn staff(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn), Response>> {
    match require_user(req, state, "patients").await? {
        Gate::In(c, u) if u.role.is_staff() => Ok(Ok((c, u))),
        Gate::In(..) => Ok(Err(not_found().into_response())),
        Gate::Out(r) => Ok(Err(r)),
    }
}

/// A patient as a search result.
pub struct PatientRow {
    pub id: String,
    pub name: String,
    pub born: String,
    pub contact: String,
    pub portal: &'static str,
}

fn portal_label(status: Option<&str>) -> &'static str {
    match status {
        Some("active") => "Using the portal",
        Some("invited") => "Invited",
        Some(_) => "Account closed",
        None => "No portal account",
    }
}

impl PatientRow {
    fn of(p: &Patient) -> Self {
        Self {
            id: p.id.to_string(),
            name: format!("{}, {}", p.family_name, p.given_name),
            born: words::birth_date(p.date_of_birth),
            contact: [p.email.clone(), p.phone.as_deref().map(words::phone)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
            portal: portal_label(p.account_status.as_deref()),
        }
    }
}

#[derive(Template)]
#[template(path = "staff_patients.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    rows: Vec<PatientRow>,
    /// "3 patients", "no patients" — for the whole search, not the page.
    summary: String,
    page: i64,
    pages: i64,
    may_register: bool,
    /// The search text, ready for a query string.
    q_param: String,
}

#[derive(serde::Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

/// `GET /admin/patients`: search.
#[handler]
pub async fn search(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(sq): Query<SearchQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match staff(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scope = me.staff().ok_or_else(not_found)?;
    let page_no = sq.page.unwrap_or(1).clamp(1, 100_000);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let found = patients::search(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        state.clock.now(),
        &sq.q,
        page_no - 1,
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let per = patients::search::PAGE_SIZE;
    let pages = ((found.total + per - 1) / per).max(1);
    let what = if sq.q.trim().is_empty() {
        words::count(found.total, "patient", "patients")
    } else {
        format!("{} found", words::count(found.total, "patient", "patients"))
    };
    render(&SearchPage {
        may_register: me.registration().is_some(),
        chrome,
        q: sq.q.trim().to_owned(),
        q_param: url_param(sq.q.trim()),
        rows: found.patients.iter().map(PatientRow::of).collect(),
        summary: what,
        page: page_no,
        pages,
    })
    .map(IntoResponse::into_response)
}

/// Percent-encodes a query-string value (everything but unreserved characters).
fn url_param(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Default, serde::Deserialize)]
pub struct PatientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    dob_day: String,
    #[serde(default)]
    dob_month: String,
    #[serde(default)]
    dob_year: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    invite: Option<String>,
}

impl PatientForm {
    fn fields(&self) -> PatientFields<'_> {
        PatientFields {
            given_name: &self.given_name,
            family_name: &self.family_name,
            dob: DateParts {
                day: &self.dob_day,
                month: &self.dob_month,
                year: &self.dob_year,
            },
            email: &self.email,
            phone: &self.phone,
        }
    }
}

#[derive(Template)]
#[template(path = "patient_new.html")]
struct NewPage {
    chrome: Chrome,
    f: PatientForm,
    errors: FormErrors,
    /// Set when changing an existing patient: their id, and whether they sign in with their
    /// email (which then cannot be changed here).
    editing: Option<String>,
    email_locked: bool,
}

/// `GET /admin/patients/new`.
#[handler]
pub async fn new_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, _) = match staff(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    render(&NewPage {
        chrome,
        f: PatientForm::default(),
        errors: FormErrors::default(),
        editing: None,
        email_locked: false,
    })
    .map(IntoResponse::into_response)
}

/// `POST /admin/patients`: adds a patient, and invites them when asked.
#[handler]
pub async fn create(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<PatientForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match staff(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scope = me.registration().ok_or_else(not_found)?;
    let now = state.clock.now();
    let today = now
        .with_timezone(&chrono_tz_of(&chrome.tenant))
        .date_naive();
    let parsed = patient_form::parse(&f.fields(), today, false);
    let new = match parsed {
        Ok(n) if f.invite.is_some() && n.email.is_none() => Err(FormErrors::one(
            "email",
            "Add an email address to send a portal invitation.",
        )),
        other => other,
    };
    let new = match new {
        Ok(n) => n,
        Err(errors) => {
            return render_status(
                &NewPage {
                    chrome,
                    f,
                    errors,
                    editing: None,
                    email_locked: false,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let id = patients::create(&mut tx, &scope, &ctx, &new, now)
        .await
        .map_err(db)?;
    if f.invite.is_some() {
        match accounts::invite_patient(&mut tx, &scope, &ctx, id, now).await {
            Ok(_) => {}
            Err(e @ AccountError::EmailTaken) => {
                drop(tx);
                let errors = FormErrors::one("email", super::scheduling_view::sentence(&e));
                return render_status(
                    &NewPage {
                        chrome,
                        f,
                        errors,
                        editing: None,
                        email_locked: false,
                    },
                    StatusCode::UNPROCESSABLE_ENTITY,
                );
            }
            Err(e) => return Err(internal(e)),
        }
    }
    tx.commit().await.map_err(db)?;
    let done = if f.invite.is_some() {
        "invited"
    } else {
        "created"
    };
    Ok(see_other(&format!("/admin/patients/{id}?done={done}")))
}

/// `GET /admin/patients/{id}/edit`: the details, ready to correct.
#[handler]
pub async fn edit_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw_id): Path<String>,
) -> poem::Result<Response> {
    let (chrome, me) = match staff(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scope = me.staff().ok_or_else(not_found)?;
    let id = PatientId::parse(&raw_id).ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let p = patients::get(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    let d = p.date_of_birth;
    let f = PatientForm {
        csrf: String::new(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        dob_day: chrono::Datelike::day(&d).to_string(),
        dob_month: chrono::Datelike::month(&d).to_string(),
        dob_year: chrono::Datelike::year(&d).to_string(),
        email: p.email.clone().unwrap_or_default(),
        phone: p.phone.clone().unwrap_or_default(),
        invite: None,
    };
    render(&NewPage {
        chrome,
        f,
        errors: FormErrors::default(),
        editing: Some(id.to_string()),
        email_locked: p.account_status.is_some(),
    })
    .map(IntoResponse::into_response)
}

/// `POST /admin/patients/{id}/edit`.
#[handler]
pub async fn edit_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw_id): Path<String>,
    Form(f): Form<PatientForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match staff(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scope = me.registration().ok_or_else(not_found)?;
    let id = PatientId::parse(&raw_id).ok_or_else(not_found)?;
    let now = state.clock.now();
    let today = now
        .with_timezone(&chrono_tz_of(&chrome.tenant))
        .date_naive();
    let parsed = patient_form::parse(&f.fields(), today, false);
    let new = match parsed {
        Ok(n) => n,
        Err(errors) => {
            let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
                .await
                .map_err(db)?;
            let staff_scope = me.staff().ok_or_else(not_found)?;
            let locked = patients::get(&mut tx, &staff_scope, &audit_ctx(req, Some(&me)), id, now)
                .await
                .map_err(db)?
                .ok_or_else(not_found)?
                .account_status
                .is_some();
            tx.commit().await.map_err(db)?;
            return render_status(
                &NewPage {
                    chrome,
                    f,
                    errors,
                    editing: Some(id.to_string()),
                    email_locked: locked,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let found = patients::update(&mut tx, &scope, &audit_ctx(req, Some(&me)), id, &new, now)
        .await
        .map_err(db)?;
    if !found {
        return Err(not_found());
    }
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!("/admin/patients/{id}?done=updated")))
}

#[derive(Template)]
#[template(path = "admin_patient.html")]
struct PatientPage {
    chrome: Chrome,
    patient: Patient,
    born: String,
    mobile: String,
    portal: &'static str,
    notice: Option<&'static str>,
    error: Option<String>,
    /// `None` when this role does not see visits (billing).
    visits: Option<Vec<ApptView>>,
    zone: String,
    may_book: bool,
    may_invite: bool,
    may_edit: bool,
    may_record: bool,
    may_bill: bool,
}

/// What the patient page says above the record.
struct Note {
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
}

async fn show(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    raw_id: &str,
    note: Note,
) -> poem::Result<Response> {
    let scope = me.staff().ok_or_else(not_found)?;
    // A malformed id, a missing one and another clinic's all answer the same: not found.
    let id = PatientId::parse(raw_id).ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(me));
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let patient = patients::get(&mut tx, &scope, &ctx, id, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    // Visits only for roles that work with the schedule (billing never sees why someone came).
    let visits = match me.scheduling() {
        Some(sched) => {
            let mut list: Vec<ApptView> = appointments::of_patient(&mut tx, &sched, &ctx, id, now)
                .await
                .map_err(db)?
                .iter()
                .map(|a| appt_view(a, tz, now))
                .collect();
            // Upcoming first (soonest first), then the past, newest first.
            let (mut upcoming, mut past): (Vec<_>, Vec<_>) =
                list.drain(..).partition(|a| a.upcoming);
            past.reverse();
            upcoming.append(&mut past);
            Some(upcoming)
        }
        None => None,
    };
    tx.commit().await.map_err(db)?;
    let active = patient.account_status.as_deref() == Some("active");
    render_status(
        &PatientPage {
            born: words::birth_date(patient.date_of_birth),
            mobile: patient
                .phone
                .as_deref()
                .map_or_else(|| "—".to_owned(), words::phone),
            portal: portal_label(patient.account_status.as_deref()),
            may_book: me.scheduling().is_some(),
            may_invite: me.registration().is_some() && !active,
            may_edit: me.registration().is_some(),
            may_record: me.clinical().is_some(),
            may_bill: me.billing().is_some(),
            zone: zone_note(tz, now),
            chrome,
            patient,
            notice: note.notice,
            error: note.error,
            visits,
        },
        note.status,
    )
}

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

/// `GET /admin/patients/{id}`.
#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw_id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match staff(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let notice = match q.done.as_deref() {
        Some("created") => Some("Patient added."),
        Some("updated") => Some("Details saved."),
        Some("invited") => Some("Invitation sent. It works once and expires in 7 days."),
        _ => None,
    };
    show(
        req,
        state,
        chrome,
        &me,
        &raw_id,
        Note {
            notice,
            error: None,
            status: StatusCode::OK,
        },
    )
    .await
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/patients/{id}/invite`: emails a portal invitation (again).
#[handler]
pub async fn invite(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw_id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match staff(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scope = me.registration().ok_or_else(not_found)?;
    let id = PatientId::parse(&raw_id).ok_or_else(not_found)?;
    let target = format!("{}:{id}", chrome.tenant.id());
    if let Err(wait) = state
        .limiter
        .check(&[(limits::INVITE_PER_PATIENT, &target)], state.clock.now())
        .await
    {
        let note = Note {
            notice: None,
            error: Some(super::too_many_words(wait)),
            status: StatusCode::TOO_MANY_REQUESTS,
        };
        let resp = show(req, state, chrome, &me, &raw_id, note).await?;
        return Ok(super::as_too_many(resp, wait));
    }
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match accounts::invite_patient(&mut tx, &scope, &ctx, id, state.clock.now()).await {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/admin/patients/{id}?done=invited")))
        }
        Err(AccountError::NoSuchPatient) => Err(not_found()),
        Err(
            e @ (AccountError::NoEmail | AccountError::AlreadyActive | AccountError::EmailTaken),
        ) => {
            drop(tx);
            let note = Note {
                notice: None,
                error: Some(super::scheduling_view::sentence(&e)),
                status: StatusCode::UNPROCESSABLE_ENTITY,
            };
            show(req, state, chrome, &me, &raw_id, note).await
        }
        Err(e) => Err(internal(e)),
    }
}
