//! The clinic console: patients (add, invite), staff (invite, admins only), branding, settings
//! and the audit trail (admins only). Every patient read or write goes through a staff scope
//! and is audited by the store.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Multipart, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::audit;
use portal_domain::clinic::ClinicProfile;
use portal_domain::clinic::branding;
use portal_domain::identity::Role;
use portal_domain::identity::accounts::{self, AccountError, StaffMember};
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::PatientId;
use portal_domain::patients::{self, NewPatient, Patient};
use portal_domain::values::{EmailAddress, PersonName};
use portal_tenants::{DisplayName, HexColor, Logo, SenderName};

use super::home::{AccessLog, log_rows};
use super::invite::chrono_tz_of;
use super::patient_form::{self, PatientFields};
use super::{Chrome, Gate, db, render, render_status, require_user, see_other};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::limits;
use crate::{AppState, internal};

#[derive(Default, serde::Deserialize)]
pub struct PatientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    invite: Option<String>,
}

#[derive(Default, serde::Deserialize)]
pub struct StaffForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Template)]
#[template(path = "admin_console.html")]
struct Console {
    chrome: Chrome,
    me: SignedIn,
    notice: Option<String>,
    patients: Vec<Patient>,
    staff: Vec<StaffMember>,
    staff_roles: [Role; 4],
    self_signup: bool,
    pf: PatientForm,
    patient_error: Option<String>,
    sf: StaffForm,
    staff_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_patient.html")]
struct PatientPage {
    chrome: Chrome,
    patient: Patient,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// A signed-in member of staff, or the response that sends anyone else away.
async fn staff_gate(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn), Response>> {
    match require_user(req, state, "admin").await? {
        Gate::In(c, u) if u.role.is_staff() => Ok(Ok((c, u))),
        Gate::In(..) => Ok(Err(
            poem::Error::from(poem::error::NotFoundError).into_response()
        )),
        Gate::Out(r) => Ok(Err(r)),
    }
}

/// What the console's forms show besides the data: a notice, and a form sent back with its error.
#[derive(Default)]
struct Forms {
    notice: Option<String>,
    pf: PatientForm,
    patient_error: Option<String>,
    sf: StaffForm,
    staff_error: Option<String>,
}

async fn console(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: SignedIn,
    forms: Forms,
) -> poem::Result<Console> {
    let Forms {
        notice,
        pf,
        patient_error,
        sf,
        staff_error,
    } = forms;
    let staff_scope = me
        .staff()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let patients = patients::list(&mut tx, &staff_scope, &ctx, now, 200)
        .await
        .map_err(db)?;
    let staff = match me.admin() {
        Some(admin) => accounts::list_staff(&mut tx, &admin).await.map_err(db)?,
        None => Vec::new(),
    };
    let self_signup = ClinicProfile::self_signup_enabled(&mut tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Console {
        chrome,
        me,
        notice,
        patients,
        staff,
        staff_roles: Role::STAFF_ROLES,
        self_signup,
        pf,
        patient_error,
        sf,
        staff_error,
    })
}

/// The console again with a form sent back and its error (422, so tools see the failure too).
async fn console_again(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: SignedIn,
    forms: Forms,
) -> poem::Result<Response> {
    let page = console(req, state, chrome, me, forms).await?;
    render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

#[handler]
pub async fn index(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let notice = match q.done.as_deref() {
        Some("staff-invited") => Some("Invitation sent.".to_owned()),
        Some("settings") => Some("Settings saved.".to_owned()),
        _ => None,
    };
    let page = console(
        req,
        state,
        chrome,
        me,
        Forms {
            notice,
            ..Forms::default()
        },
    )
    .await?;
    Ok(render(&page)?.into_response())
}

fn parse_patient(f: &PatientForm, today: chrono::NaiveDate) -> Result<NewPatient, String> {
    patient_form::parse(
        &PatientFields {
            given_name: &f.given_name,
            family_name: &f.family_name,
            date_of_birth: &f.date_of_birth,
            email: &f.email,
            phone: &f.phone,
        },
        today,
        false,
    )
}

#[handler]
pub async fn create_patient(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<PatientForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let staff = me
        .registration()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let now = state.clock.now();
    let today = now
        .with_timezone(&chrono_tz_of(&chrome.tenant))
        .date_naive();
    let new = match parse_patient(&f, today) {
        Ok(n) if f.invite.is_some() && n.email.is_none() => {
            Err("Add an email address to send a portal invitation.".to_owned()).map(|()| n)
        }
        other => other,
    };
    let new = match new {
        Ok(n) => n,
        Err(e) => {
            return console_again(
                req,
                state,
                chrome,
                me,
                Forms {
                    pf: f,
                    patient_error: Some(e),
                    ..Forms::default()
                },
            )
            .await;
        }
    };
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let id = patients::create(&mut tx, &staff, &ctx, &new, now)
        .await
        .map_err(db)?;
    if f.invite.is_some() {
        match accounts::invite_patient(&mut tx, &staff, &ctx, id, now).await {
            Ok(_) => {}
            Err(e @ AccountError::EmailTaken) => {
                drop(tx);
                return console_again(
                    req,
                    state,
                    chrome,
                    me,
                    Forms {
                        pf: f,
                        patient_error: Some(e.to_string()),
                        ..Forms::default()
                    },
                )
                .await;
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

/// What the patient page says above the record.
struct Note {
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
}

async fn show_patient(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    raw_id: &str,
    note: Note,
) -> poem::Result<Response> {
    let Note {
        notice,
        error,
        status,
    } = note;
    let staff = me
        .staff()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    // A malformed id, a missing one and another clinic's all answer the same: not found.
    let id =
        PatientId::parse(raw_id).ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let ctx = audit_ctx(req, Some(me));
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let patient = patients::get(&mut tx, &staff, &ctx, id, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let patient = patient.ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    render_status(
        &PatientPage {
            chrome,
            patient,
            notice,
            error,
        },
        status,
    )
}

#[handler]
pub async fn patient_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw_id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let notice = match q.done.as_deref() {
        Some("created") => Some("Patient added."),
        Some("invited") => Some("Invitation sent. It works once and expires in 7 days."),
        _ => None,
    };
    show_patient(
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

#[handler]
pub async fn invite_patient(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw_id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let staff = me
        .registration()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let id =
        PatientId::parse(&raw_id).ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let target = format!("{}:{id}", chrome.tenant.id());
    if let Err(wait) = state
        .limiter
        .check(&[(limits::INVITE_PER_PATIENT, &target)], state.clock.now())
        .await
    {
        let resp = show_patient(
            req,
            state,
            chrome,
            &me,
            &raw_id,
            Note {
                notice: None,
                error: Some(super::too_many_words(wait)),
                status: StatusCode::TOO_MANY_REQUESTS,
            },
        )
        .await?;
        return Ok(super::as_too_many(resp, wait));
    }
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    match accounts::invite_patient(&mut tx, &staff, &ctx, id, state.clock.now()).await {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/admin/patients/{id}?done=invited")))
        }
        Err(AccountError::NoSuchPatient) => Err(poem::Error::from(poem::error::NotFoundError)),
        Err(
            e @ (AccountError::NoEmail | AccountError::AlreadyActive | AccountError::EmailTaken),
        ) => {
            drop(tx);
            show_patient(
                req,
                state,
                chrome,
                &me,
                &raw_id,
                Note {
                    notice: None,
                    error: Some(e.to_string()),
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                },
            )
            .await
        }
        Err(e) => Err(internal(e)),
    }
}

/// Only clinic administrators; everyone else gets "not found".
async fn admin_gate(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn), Response>> {
    match staff_gate(req, state).await? {
        Ok((c, u)) if u.admin().is_some() => Ok(Ok((c, u))),
        Ok(_) => Ok(Err(
            poem::Error::from(poem::error::NotFoundError).into_response()
        )),
        Err(r) => Ok(Err(r)),
    }
}

#[handler]
pub async fn invite_staff(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<StaffForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let parsed = (|| {
        let name = PersonName::parse(&f.name, "name").map_err(|e| e.to_string())?;
        let email = EmailAddress::parse(&f.email).map_err(|e| e.to_string())?;
        let role = Role::parse(&f.role)
            .filter(|r| r.is_staff())
            .ok_or_else(|| "Choose one of the staff roles.".to_owned())?;
        Ok::<_, String>((name, email, role))
    })();
    let (name, email, role) = match parsed {
        Ok(x) => x,
        Err(e) => {
            return console_again(
                req,
                state,
                chrome,
                me,
                Forms {
                    sf: f,
                    staff_error: Some(e),
                    ..Forms::default()
                },
            )
            .await;
        }
    };
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    match accounts::invite_staff(
        &mut tx,
        &admin,
        &ctx,
        &email,
        &name,
        role,
        state.clock.now(),
    )
    .await
    {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other("/admin?done=staff-invited"))
        }
        Err(e @ AccountError::EmailTaken) => {
            drop(tx);
            return console_again(
                req,
                state,
                chrome,
                me,
                Forms {
                    sf: f,
                    staff_error: Some(e.to_string()),
                    ..Forms::default()
                },
            )
            .await;
        }
        Err(e) => Err(internal(e)),
    }
}

#[derive(serde::Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    self_signup: Option<String>,
}

#[handler]
pub async fn settings(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<SettingsForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    ClinicProfile::set_self_signup(
        &mut tx,
        &admin,
        &ctx,
        f.self_signup.is_some(),
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other("/admin?done=settings"))
}

#[derive(serde::Deserialize)]
pub struct AuditQuery {
    patient: Option<String>,
}

#[handler]
pub async fn audit_trail(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<AuditQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let (heading, entries, back) = match q.patient.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => {
            let id = PatientId::parse(raw)
                .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
            let staff = admin.staff().clone();
            let p = patients::get(&mut tx, &staff, &ctx, id, now)
                .await
                .map_err(db)?
                .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
            let event = audit::AuditEvent::new(audit::Action::AuditView, "patient")
                .resource(id)
                .patient(id);
            audit::record(&mut tx, &ctx, now, event).await.map_err(db)?;
            let entries = audit::for_patient(&mut tx, &admin, id, 500)
                .await
                .map_err(db)?;
            (
                format!("Access to {}'s record", p.full_name()),
                entries,
                Some((format!("/admin/patients/{id}"), "Back to the patient")),
            )
        }
        None => {
            audit::record(
                &mut tx,
                &ctx,
                now,
                audit::AuditEvent::new(audit::Action::AuditView, "audit_log"),
            )
            .await
            .map_err(db)?;
            let entries = audit::recent(&mut tx, &admin, 500).await.map_err(db)?;
            (
                "Audit trail".to_owned(),
                entries,
                Some(("/admin".to_owned(), "Back to the console")),
            )
        }
    };
    tx.commit().await.map_err(db)?;
    let tz = chrono_tz_of(&chrome.tenant);
    Ok(render(&AccessLog {
        chrome,
        heading,
        intro: "Every sign-in and every read or write of patient data, newest first. Entries cannot be changed or deleted.",
        entries: log_rows(entries, tz, ("Automatic or not signed in", "—")),
        detailed: true,
        back,
    })?
    .into_response())
}

#[derive(Template)]
#[template(path = "admin_branding.html")]
struct BrandingPage {
    chrome: Chrome,
    name: String,
    sender_name: String,
    primary: String,
    accent: String,
    errors: Vec<String>,
    notice: Option<&'static str>,
}

fn branding_page(
    chrome: Chrome,
    errors: Vec<String>,
    notice: Option<&'static str>,
) -> BrandingPage {
    let t = chrome.tenant.clone();
    BrandingPage {
        name: t.display_name().to_owned(),
        sender_name: t.branding().sender_name.clone(),
        primary: t.branding().primary_color.clone(),
        accent: t.branding().accent_color.clone(),
        chrome,
        errors,
        notice,
    }
}

#[handler]
pub async fn branding_page_get(
    req: &Request,
    Data(state): Data<&AppState>,
) -> poem::Result<Response> {
    let (chrome, _me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    Ok(render(&branding_page(chrome, Vec::new(), None))?.into_response())
}

/// WCAG 2.1 contrast ratio of white text on `hex`.
pub(crate) fn contrast_with_white(hex: &HexColor) -> f64 {
    let h = hex.as_str().trim_start_matches('#');
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    1.05 / (l + 0.05)
}

#[handler]
pub async fn branding_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    mut multipart: Multipart,
) -> poem::Result<Response> {
    let mut fields = std::collections::HashMap::new();
    let mut logo: Option<(String, Vec<u8>)> = None;
    let mut errors = Vec::new();
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "logo" {
            let ct = field.content_type().unwrap_or_default().to_owned();
            let has_file = field.file_name().is_some_and(|f| !f.is_empty());
            let bytes = field.bytes().await?;
            if has_file && !bytes.is_empty() {
                logo = Some((ct, bytes));
            }
        } else {
            fields.insert(name, field.text().await?);
        }
    }
    check_form(req, fields.get("csrf").map_or("", String::as_str))?;
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let get = |k: &str| fields.get(k).map_or("", String::as_str);
    let name = DisplayName::parse(get("name"))
        .map_err(|e| errors.push(format!("Clinic name: {e}")))
        .ok();
    let sender = SenderName::parse(get("sender_name"))
        .map_err(|e| errors.push(format!("Sender name: {e}")))
        .ok();
    let primary = HexColor::parse(get("primary_color"))
        .map_err(|e| errors.push(format!("Main colour: {e}")))
        .ok();
    let accent = HexColor::parse(get("accent_color"))
        .map_err(|e| errors.push(format!("Accent colour: {e}")))
        .ok();
    for (label, c) in [("Main colour", &primary), ("Accent colour", &accent)] {
        if let Some(c) = c {
            let ratio = contrast_with_white(c);
            if ratio < 4.5 {
                errors.push(format!(
                    "{label}: white text on {} has a contrast of {ratio:.1}:1; WCAG AA needs at least 4.5:1. Choose a darker colour.",
                    c.as_str()
                ));
            }
        }
    }
    let logo = match logo {
        Some((_declared, bytes)) => Logo::new(bytes)
            .map_err(|e| errors.push(format!("Logo: {e}")))
            .ok(),
        None => None,
    };
    let (Some(name), Some(sender), Some(primary), Some(accent)) = (name, sender, primary, accent)
    else {
        return render_status(
            &branding_page(chrome, errors, None),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    if !errors.is_empty() {
        return render_status(
            &branding_page(chrome, errors, None),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    branding::change(
        &mut tx,
        &admin,
        &ctx,
        &branding::Branding {
            display_name: name,
            primary_color: primary,
            accent_color: accent,
            sender_name: sender,
            logo,
        },
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    state.resolver.invalidate_all();
    let updated = state
        .registry
        .by_id(chrome.tenant.id())
        .await
        .map_err(internal)?
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let chrome = Chrome {
        tenant: std::sync::Arc::new(updated),
        ..chrome
    };
    Ok(render(&branding_page(chrome, Vec::new(), Some("Branding saved.")))?.into_response())
}
