use askama::Template;
use poem::web::{Data, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::audit::{self, AuditEntry};
use portal_domain::clinic::ClinicProfile;
use portal_domain::identity::Role;
use portal_domain::identity::scope::{PatientScope, SignedIn};
use portal_domain::patients::{self, Patient};
use portal_domain::scheduling::{appointments, clinic_tz, local_label, waitlist};

use super::scheduling_view::{ApptView, appt_view, zone_note};

use super::{Chrome, Gate, chrome, db, platform, render, require_user, see_other};
use crate::auth::audit_ctx;
use crate::{AppState, CurrentSite};

#[derive(Template)]
#[template(path = "clinic_home.html")]
struct ClinicHome {
    chrome: Chrome,
    profile: ClinicProfile,
    self_signup: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    patient: Patient,
    born: String,
    /// The mobile number as people read it.
    mobile: Option<String>,
    zone: String,
    notice: Option<&'static str>,
    /// The next visit, whether its video link is open now, and whether the patient can say
    /// they have arrived (an in-person visit whose check-in is open).
    next: Option<ApptView>,
    join_open: bool,
    arrive_open: bool,
    later: Vec<ApptView>,
    /// Visits in the next 7 days the patient has not confirmed.
    to_confirm: Vec<ApptView>,
    offers: Vec<super::appointments::OfferView>,
    call_us: String,
}

/// A video visit's link opens 15 minutes before it starts.
const JOIN_OPENS_MINUTES: i64 = 15;

/// Visits this close ask the patient to confirm they are coming.
const CONFIRM_WITHIN_DAYS: i64 = 7;

/// One line of the patient's access report: one person doing one kind of thing on one day,
/// however many times ("Listed visits — 12 times, 9:02 AM – 4:40 PM").
pub(crate) struct LogGroup {
    pub day: String,
    pub who: String,
    pub role: String,
    pub what: &'static str,
    pub times: usize,
    pub span: String,
    /// The latest time of the group (entries arrive newest first).
    pub latest: String,
}

/// Groups a log, newest first, by local day, person, role and action: a day's page loads
/// (which record several kinds of reads each) become one line per kind, in order of the
/// latest of each.
pub(crate) fn group_log(
    entries: Vec<AuditEntry>,
    tz: chrono_tz::Tz,
    nobody: (&str, &str),
) -> Vec<LogGroup> {
    let mut groups: Vec<LogGroup> = Vec::new();
    let mut index: std::collections::HashMap<
        (chrono::NaiveDate, String, String, &'static str),
        usize,
    > = std::collections::HashMap::new();
    for e in entries {
        let local = e.at.with_timezone(&tz);
        let who = e.actor_name.unwrap_or_else(|| nobody.0.to_owned());
        let role = e
            .actor_role
            .as_deref()
            .and_then(Role::parse)
            .map_or(nobody.1, |r| r.label())
            .to_owned();
        let what = audit::describe(&e.action);
        let time = local.format("%-I:%M %p").to_string();
        let key = (local.date_naive(), who.clone(), role.clone(), what);
        match index.get(&key) {
            Some(&i) => {
                let g = &mut groups[i];
                g.times += 1;
                // Entries come newest first: this one is the earliest so far.
                g.span = format!("{time} – {}", g.latest);
            }
            None => {
                index.insert(key, groups.len());
                groups.push(LogGroup {
                    day: super::words::date(local.date_naive()),
                    who,
                    role,
                    what,
                    times: 1,
                    span: time.clone(),
                    latest: time,
                });
            }
        }
    }
    groups
}

#[derive(Template)]
#[template(path = "access_log.html")]
pub(crate) struct AccessLog {
    pub chrome: Chrome,
    pub groups: Vec<LogGroup>,
    pub page: usize,
    pub pages: usize,
    pub zone: String,
    /// There were more entries than the report reads.
    pub clipped: bool,
}

const ACCESS_PAGE: usize = 25;

/// The report reads this many of the latest entries (years of ordinary use); the page says so
/// when there are more.
const ACCESS_LIMIT: i64 = 5000;

#[derive(serde::Deserialize)]
pub struct PageQuery {
    page: Option<usize>,
}

/// `/`: the signed-in patient's dashboard, the clinic's public home page, or the platform's.
#[handler]
pub async fn home(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<HomeQuery>,
) -> poem::Result<Response> {
    if let Some(CurrentSite::Platform) = req.extensions().get::<CurrentSite>() {
        return Ok(platform::home(req)?.into_response());
    }
    let chrome = chrome(req, state, "home").await?;
    let notice = match q.done.as_deref() {
        Some("confirmed") => Some("Thank you: the clinic knows you are coming."),
        Some("arrived") => Some("You are checked in. Please take a seat; we will call you."),
        _ => None,
    };
    if let Some(me) = chrome.user.clone() {
        if me.role.is_staff() {
            return Ok(see_other(start_page(me.role)));
        }
        if let Some(scope) = me.patient() {
            return dashboard(req, state, chrome, &me, &scope, notice).await;
        }
    }
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (profile, self_signup) = ClinicProfile::load_for_home(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(render(&ClinicHome {
        chrome,
        profile,
        self_signup,
    })?
    .into_response())
}

#[derive(serde::Deserialize)]
pub struct HomeQuery {
    done: Option<String>,
}

/// Where each staff role starts its day: front desk with today's arrivals, a clinician with
/// their own schedule, billing with its work queue, an
/// administrator with the set-up checklist.
pub(crate) fn start_page(role: Role) -> &'static str {
    match role {
        Role::FrontDesk => "/staff/schedule?arrivals=1",
        Role::Clinician => "/staff/schedule?mine=1",
        Role::ClinicAdmin => "/admin",
        Role::Billing => "/billing",
        _ => "/admin/patients",
    }
}

/// The patient's home: what's next (the next visit, with its video link when open), what
/// needs them (visits to confirm, earlier times offered), and quick actions.
async fn dashboard(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &PatientScope,
    notice: Option<&'static str>,
) -> poem::Result<Response> {
    let ctx = audit_ctx(req, Some(me));
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let patient = patients::own(&mut tx, scope, &ctx, now).await.map_err(db)?;
    let visits = appointments::for_patient(&mut tx, scope, &ctx, now)
        .await
        .map_err(db)?;
    let offers = waitlist::open_offers(&mut tx, scope, &ctx, now)
        .await
        .map_err(db)?;
    let profile = ClinicProfile::load(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let Some(patient) = patient else {
        return Err(poem::error::NotFoundError.into());
    };
    let upcoming: Vec<_> = visits.iter().filter(|a| a.is_upcoming(now)).collect();
    let join_open = upcoming.first().is_some_and(|a| {
        a.video_url.is_some() && a.starts_at - chrono::Duration::minutes(JOIN_OPENS_MINUTES) <= now
    });
    let arrive_open = upcoming.first().is_some_and(|a| {
        a.video_url.is_none()
            && a.status == portal_domain::scheduling::AppointmentStatus::Booked
            && appointments::status::self_check_in_open(a.starts_at, a.ends_at, now)
    });
    let to_confirm = upcoming
        .iter()
        .filter(|a| {
            a.status == portal_domain::scheduling::AppointmentStatus::Booked
                && a.confirmed_at.is_none()
                && a.starts_at - chrono::Duration::days(CONFIRM_WITHIN_DAYS) <= now
        })
        .map(|a| appt_view(a, tz, now))
        .collect();
    let mut views = upcoming.iter().map(|a| appt_view(a, tz, now));
    let next = views.next();
    let later = views.take(3).collect();
    let offers = offers
        .into_iter()
        .map(|o| super::appointments::OfferView {
            id: o.id.to_string(),
            when: local_label(o.starts_at, tz),
            provider: o.provider_name,
        })
        .collect();
    Ok(render(&Dashboard {
        born: super::words::birth_date(patient.date_of_birth),
        mobile: patient.phone.as_deref().map(super::words::phone),
        zone: zone_note(tz, now),
        call_us: profile.call_us(chrome.tenant.display_name()),
        chrome,
        patient,
        notice,
        next,
        join_open,
        arrive_open,
        later,
        to_confirm,
        offers,
    })?
    .into_response())
}

/// A patient's form post about one of their visits: the form token checked, the patient and
/// the visit's id, or where to send anyone else.
async fn own_visit_post(
    req: &Request,
    state: &AppState,
    csrf: &str,
    raw_id: &str,
) -> poem::Result<
    Result<
        (
            Chrome,
            SignedIn,
            PatientScope,
            portal_domain::ids::AppointmentId,
        ),
        Response,
    >,
> {
    crate::csrf::check_form(req, csrf)?;
    let (chrome, me) = match require_user(req, state, "home").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(Err(r)),
    };
    let not_found = || poem::Error::from(poem::error::NotFoundError);
    let scope = me.patient().ok_or_else(not_found)?;
    let id = portal_domain::ids::AppointmentId::parse(raw_id).ok_or_else(not_found)?;
    Ok(Ok((chrome, me, scope, id)))
}

/// `POST /appointments/{id}/confirm`: the patient says they are coming.
#[handler]
pub async fn confirm_visit(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(id): poem::web::Path<String>,
    poem::web::Form(f): poem::web::Form<CsrfOnly>,
) -> poem::Result<Response> {
    let (chrome, me, scope, id) = match own_visit_post(req, state, &f.csrf, &id).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let done = appointments::confirm_attendance(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    if !done {
        return Err(poem::error::NotFoundError.into());
    }
    Ok(see_other("/?done=confirmed"))
}

/// `POST /appointments/{id}/arrived`: "I'm here" for a visit whose check-in is open.
#[handler]
pub async fn arrived(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(id): poem::web::Path<String>,
    poem::web::Form(f): poem::web::Form<CsrfOnly>,
) -> poem::Result<Response> {
    let (chrome, me, scope, id) = match own_visit_post(req, state, &f.csrf, &id).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = appointments::status::patient_arrived(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await;
    match result {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other("/?done=arrived"))
        }
        Err(portal_domain::scheduling::AppointmentError::NotFound) => {
            Err(poem::error::NotFoundError.into())
        }
        Err(e) if e.is_internal() => Err(crate::internal(e)),
        // Too early, or no longer booked: the visit's page says where it stands.
        Err(_) => Ok(see_other(&format!("/appointments/{id}"))),
    }
}

#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `/account/access`: who viewed my record, grouped by person, action and day, 25 a page.
#[handler]
pub async fn access(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<PageQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "account").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let Some(scope) = me.patient() else {
        return Ok(see_other(start_page(me.role)));
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let entries = audit::about_me(&mut tx, &scope, ACCESS_LIMIT)
        .await
        .map_err(db)?;
    let clipped = entries.len() as i64 == ACCESS_LIMIT;
    tx.commit().await.map_err(db)?;
    let tz = clinic_tz(&chrome.tenant);
    let automatic = format!("{} (automatic)", chrome.tenant.display_name());
    let all = group_log(entries, tz, (&automatic, "Clinic"));
    let pages = all.len().div_ceil(ACCESS_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let groups = all
        .into_iter()
        .skip((page - 1) * ACCESS_PAGE)
        .take(ACCESS_PAGE)
        .collect();
    Ok(render(&AccessLog {
        zone: zone_note(tz, state.clock.now()),
        chrome,
        groups,
        page,
        pages,
        clipped,
    })?
    .into_response())
}
