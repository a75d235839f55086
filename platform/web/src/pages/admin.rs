//! Clinic set-up, for clinic admins: the set-up checklist of a new clinic, staff (invite),
//! branding, settings and the audit trail. (Patients are in `patients.rs`.) Every patient
//! read or write goes through a staff scope
//! and is audited by the store.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Multipart, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::audit;
use portal_domain::clinic::ClinicProfile;
use portal_domain::clinic::branding;
use portal_domain::identity::Role;
use portal_domain::identity::accounts::{self, AccountError, StaffMember};
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::PatientId;
use portal_domain::patients;
use portal_domain::scheduling::setup;
use portal_domain::values::{EmailAddress, PersonName};
use portal_tenants::{DisplayName, HexColor, Logo, SenderName};

use super::invite::chrono_tz_of;
use super::scheduling_view::sentence;
use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other, words};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::{AppState, internal};

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
    notice: Option<String>,
    checklist: Vec<Step>,
    ready: bool,
    staff: Vec<StaffMember>,
    staff_roles: [Role; 4],
    self_signup: bool,
    sf: StaffForm,
    staff_error: FormErrors,
}

/// One step of a new clinic's set-up, done or not.
pub(crate) struct Step {
    pub label: &'static str,
    pub done: bool,
    pub href: &'static str,
    pub detail: String,
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
    sf: StaffForm,
    staff_error: FormErrors,
}

async fn console(
    req: &poem::Request,
    state: &AppState,
    chrome: Chrome,
    me: SignedIn,
    forms: Forms,
) -> poem::Result<Console> {
    let Forms {
        notice,
        sf,
        staff_error,
    } = forms;
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let staff = accounts::list_staff(&mut tx, &admin).await.map_err(db)?;
    let profile = ClinicProfile::load(&mut tx).await.map_err(db)?;
    let self_signup = ClinicProfile::self_signup_enabled(&mut tx)
        .await
        .map_err(db)?;
    let locations = setup::locations(&mut tx).await.map_err(db)?.len() as i64;
    let providers = setup::providers(&mut tx).await.map_err(db)?;
    let visit_types = setup::visit_types(&mut tx).await.map_err(db)?.len() as i64;
    let hours = setup::windows(&mut tx, None).await.map_err(db)?.len() as i64;
    tx.commit().await.map_err(db)?;
    let checklist = vec![
        Step {
            label: "Add your phone number and opening hours",
            done: profile.phone.is_some() && profile.hours.is_some(),
            href: "/admin/clinic",
            detail: profile
                .phone
                .clone()
                .unwrap_or_else(|| "Not added yet".to_owned()),
        },
        Step {
            label: "Add your logo and colours",
            done: chrome.tenant.branding().has_logo,
            href: "/admin/branding",
            detail: if chrome.tenant.branding().has_logo {
                "Logo added".to_owned()
            } else {
                "No logo yet".to_owned()
            },
        },
        Step {
            label: "Add where you see patients",
            done: locations > 0,
            href: "/admin/scheduling#locations-heading",
            detail: words::count(locations, "location", "locations"),
        },
        Step {
            label: "Add your clinicians",
            done: !providers.is_empty(),
            href: "/admin/scheduling#providers-heading",
            detail: words::count(providers.len() as i64, "provider", "providers"),
        },
        Step {
            label: "Add the kinds of visit patients can book",
            done: visit_types > 0,
            href: "/admin/scheduling#visit-types-heading",
            detail: words::count(visit_types, "visit type", "visit types"),
        },
        Step {
            label: "Set each clinician's weekly hours",
            done: hours > 0,
            href: "/admin/scheduling#hours-heading",
            detail: words::count(hours, "block of hours", "blocks of hours"),
        },
        Step {
            label: "Invite your staff",
            done: staff.len() > 1,
            href: "#staff-heading",
            detail: words::count(staff.len() as i64, "member of staff", "members of staff"),
        },
    ];
    let ready = checklist.iter().all(|s| s.done);
    Ok(Console {
        chrome,
        notice,
        checklist,
        ready,
        staff,
        staff_roles: Role::STAFF_ROLES,
        self_signup,
        sf,
        staff_error,
    })
}

/// The console again with a form sent back and its error (422, so tools see the failure too).
async fn console_again(
    req: &poem::Request,
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
    let (chrome, me) = match admin_gate(req, state).await? {
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

pub(crate) async fn admin_gate(
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
    let mut errors = FormErrors::default();
    let name = PersonName::parse(&f.name, "name")
        .map_err(|e| errors.add("staff_name", sentence(&e)))
        .ok();
    let email = EmailAddress::parse(&f.email)
        .map_err(|e| errors.add("staff_email", sentence(&e)))
        .ok();
    let role = Role::parse(&f.role).filter(|r| r.is_staff());
    if role.is_none() {
        errors.add("staff_role", "Choose one of the staff roles.");
    }
    let parsed = match (name, email, role) {
        (Some(n), Some(e), Some(r)) if errors.is_empty() => Ok((n, e, r)),
        _ => Err(errors),
    };
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
                    staff_error: e,
                    ..Forms::default()
                },
            )
            .await;
        }
    };
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
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
                    staff_error: FormErrors::one("staff_email", sentence(&e)),
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
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
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

#[derive(serde::Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    patient: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// Local dates, `YYYY-MM-DD`, both included.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    page: Option<i64>,
    /// `csv` downloads every matching row.
    #[serde(default)]
    format: String,
}

/// One row of the audit trail page.
pub struct TrailView {
    when: String,
    who: String,
    role: String,
    what: &'static str,
    patient: String,
    patient_id: String,
    from: String,
    request: String,
}

#[derive(Template)]
#[template(path = "audit_trail.html")]
struct TrailPage {
    chrome: Chrome,
    heading: String,
    rows: Vec<TrailView>,
    summary: String,
    page: i64,
    pages: i64,
    staff: Vec<StaffMember>,
    actions: Vec<(&'static str, &'static str)>,
    q: AuditQuery,
    /// The filters as a query string, for paging and the CSV link.
    keep: String,
    zone: String,
}

const TRAIL_PAGE: i64 = 50;
const CSV_MAX_ROWS: i64 = 50_000;

/// A CSV field: quoted when it needs to be, and never read as a formula by a spreadsheet.
pub(crate) fn csv_field(raw: &str) -> String {
    let v = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn query_param(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
    let tz = chrono_tz_of(&chrome.tenant);
    let local = |raw: &str, plus_days: i64| {
        chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|d| (d + chrono::Duration::days(plus_days)).and_hms_opt(0, 0, 0))
            .and_then(|t| {
                use chrono::TimeZone;
                tz.from_local_datetime(&t).earliest()
            })
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    if !q.patient.trim().is_empty() && PatientId::parse(q.patient.trim()).is_none() {
        return Err(poem::Error::from(poem::error::NotFoundError));
    }
    let filter = audit::trail::TrailFilter {
        patient: PatientId::parse(q.patient.trim()),
        actor: portal_domain::ids::UserId::parse(q.actor.trim()),
        action: audit::Action::parse(q.action.trim()),
        from: local(&q.from, 0),
        to: local(&q.to, 1),
    };
    let csv = q.format == "csv";
    let page = q.page.unwrap_or(1).clamp(1, 100_000);
    let (offset, limit) = if csv {
        (0, CSV_MAX_ROWS)
    } else {
        ((page - 1) * TRAIL_PAGE, TRAIL_PAGE)
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let mut heading = "Audit trail".to_owned();
    if let Some(id) = filter.patient {
        let staff = admin.staff().clone();
        let p = patients::get(&mut tx, &staff, &ctx, id, now)
            .await
            .map_err(db)?
            .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
        heading = format!("Access to {} record", words::possessive(&p.full_name()));
    }
    let mut event = audit::AuditEvent::new(
        if csv {
            audit::Action::AuditExport
        } else {
            audit::Action::AuditView
        },
        "audit_log",
    );
    if let Some(id) = filter.patient {
        event = event.resource(id).patient(id);
    }
    audit::record(&mut tx, &ctx, now, event).await.map_err(db)?;
    let (rows, total) = audit::trail::search(&mut tx, &admin, &filter, offset, limit)
        .await
        .map_err(db)?;
    // The patients this page (or file) names are themselves audited: each one's access report
    // shows that an administrator read the trail about them.
    audit::record_list(
        &mut tx,
        &ctx,
        now,
        if csv {
            audit::Action::AuditExport
        } else {
            audit::Action::AuditView
        },
        "audit_log",
        rows.iter()
            .filter_map(|r| r.patient_id)
            .map(PatientId::from_uuid),
    )
    .await
    .map_err(db)?;
    let staff = accounts::list_staff(&mut tx, &admin).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let views: Vec<TrailView> = rows
        .into_iter()
        .map(|r| TrailView {
            when: r
                .at
                .with_timezone(&tz)
                .format("%a %-d %b %Y, %-I:%M:%S %p")
                .to_string(),
            who: r
                .actor_name
                .unwrap_or_else(|| "Automatic or not signed in".to_owned()),
            role: r
                .actor_role
                .as_deref()
                .and_then(Role::parse)
                .map_or("—", |r| r.label())
                .to_owned(),
            what: audit::describe(&r.action),
            patient: r.patient_name.unwrap_or_default(),
            patient_id: r.patient_id.map(|p| p.to_string()).unwrap_or_default(),
            from: r.client_addr.unwrap_or_default(),
            request: r.request_id.unwrap_or_default(),
        })
        .collect();
    if csv {
        let mut out = String::from(
            "time,time_zone,who,role,action,patient,patient_id,client_address,request_id\n",
        );
        for v in &views {
            let fields = [
                v.when.as_str(),
                tz.name(),
                &v.who,
                &v.role,
                v.what,
                &v.patient,
                &v.patient_id,
                &v.from,
                &v.request,
            ];
            out.push_str(
                &fields
                    .iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
        return Ok(out
            .with_content_type("text/csv; charset=utf-8")
            .with_header(
                "content-disposition",
                "attachment; filename=\"audit-trail.csv\"",
            )
            .with_header("cache-control", "no-store")
            .into_response());
    }
    let pages = ((total + TRAIL_PAGE - 1) / TRAIL_PAGE).max(1);
    let keep = format!(
        "patient={}&actor={}&action={}&from={}&to={}",
        query_param(q.patient.trim()),
        query_param(q.actor.trim()),
        query_param(q.action.trim()),
        query_param(q.from.trim()),
        query_param(q.to.trim())
    );
    let mut actions: Vec<(&'static str, &'static str)> = audit::Action::ALL
        .iter()
        .map(|a| (a.code(), a.label()))
        .collect();
    actions.sort_by_key(|(_, label)| *label);
    Ok(render(&TrailPage {
        heading,
        rows: views,
        summary: words::count(total, "entry", "entries"),
        page,
        pages,
        staff,
        actions,
        q,
        keep,
        zone: super::scheduling_view::zone_note(tz, now),
        chrome,
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
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
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

#[cfg(test)]
mod csv_tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+2"), "'=1+2");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }
}
