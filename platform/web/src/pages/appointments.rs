//! The patient's appointments: list, book (visit type → open times → confirm), details with
//! calendar file and video link, reschedule and cancel. Every store call goes through the
//! patient's own scope, so another patient's appointment id answers 404.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::clinic::ClinicProfile;
use portal_domain::identity::scope::{PatientScope, SignedIn};
use portal_domain::ids::{AppointmentId, OfferId};
use portal_domain::scheduling::appointments::{
    self, Actor, BookFor, BookRequest, NewTime, book, cancel, reschedule,
};
use portal_domain::scheduling::search::{self, SlotQuery};
use portal_domain::scheduling::setup::{self, VisitType};
use portal_domain::scheduling::waitlist;
use portal_domain::scheduling::{AppointmentError, calendar, clinic_tz, local_label};
use portal_tenants::Tenant;

use super::confirm::ConfirmAction;
use super::scheduling_view::{
    ApptView, SlotGroup, StripDay, appt_view, day_strip, opt_location, opt_provider,
    opt_visit_type, parse_date, parse_start, provider_and_location, sentence, slot_groups,
    status_of, today, zone_note,
};
use super::{Chrome, Gate, db, render, render_status, require_user, see_other};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::{AppState, internal};

/// A signed-in patient, or where to send anyone else (staff go to the schedule).
async fn patient_gate(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn, PatientScope), Response>> {
    match require_user(req, state, "appointments").await? {
        Gate::In(c, u) => match u.patient() {
            Some(p) => Ok(Ok((c, u, p))),
            None => Ok(Err(see_other("/staff/schedule"))),
        },
        Gate::Out(r) => Ok(Err(r)),
    }
}

#[derive(Template)]
#[template(path = "appointments.html")]
struct ListPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
    zone: String,
    upcoming: Vec<ApptView>,
    past: Vec<ApptView>,
    offers: Vec<OfferView>,
}

/// An earlier time offered from the waitlist.
pub struct OfferView {
    pub id: String,
    pub when: String,
    pub provider: String,
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn notice_of(done: Option<&str>) -> Option<&'static str> {
    match done {
        Some("booked") => Some("Your visit is booked. A confirmation email is on its way."),
        Some("moved") => Some("Your visit has moved. An updated confirmation is on its way."),
        Some("cancelled") => Some("Your visit is cancelled."),
        Some("waiting") => Some("You are on the list: we will email you if an earlier time opens."),
        Some("not-waiting") => Some("You are no longer waiting for an earlier time."),
        _ => None,
    }
}

#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<DoneQuery>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let page = list_page(
        req,
        state,
        chrome,
        &me,
        &scope,
        notice_of(q.done.as_deref()),
        None,
    )
    .await?;
    render(&page).map(IntoResponse::into_response)
}

async fn list_page(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &PatientScope,
    notice: Option<&'static str>,
    error: Option<String>,
) -> poem::Result<ListPage> {
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let all = appointments::for_patient(&mut tx, scope, &audit_ctx(req, Some(me)), now)
        .await
        .map_err(db)?;
    let offers = waitlist::open_offers(&mut tx, scope, &audit_ctx(req, Some(me)), now)
        .await
        .map_err(db)?
        .into_iter()
        .map(|o| OfferView {
            id: o.id.to_string(),
            when: local_label(o.starts_at, tz),
            provider: o.provider_name,
        })
        .collect();
    tx.commit().await.map_err(db)?;
    let (upcoming, mut past): (Vec<_>, Vec<_>) = all
        .iter()
        .map(|a| appt_view(a, tz, now))
        .partition(|a| a.upcoming);
    past.reverse();
    Ok(ListPage {
        chrome,
        notice,
        error,
        zone: zone_note(tz, now),
        upcoming,
        past,
        offers,
    })
}

#[handler]
pub async fn accept_offer(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(f): Form<SlotChoice>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let offer = OfferId::parse(&id).ok_or_else(not_found)?;
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match waitlist::accept(&mut tx, &scope, &audit_ctx(req, Some(&me)), offer, tz, now).await {
        Ok(a) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/appointments/{}?done=moved", a.id)))
        }
        Err(AppointmentError::NotFound) => Err(not_found()),
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e) => {
            drop(tx);
            let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
                .await
                .map_err(db)?;
            waitlist::mark_taken(&mut tx, &scope, offer)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            let msg = match e {
                AppointmentError::Taken => {
                    "Someone else took that time first. Your visit stays as it was.".to_owned()
                }
                _ => sentence(&e),
            };
            let page = list_page(req, state, chrome, &me, &scope, None, Some(msg)).await?;
            render_status(&page, status_of(&e))
        }
    }
}

#[handler]
pub async fn waitlist_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<SlotChoice>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let now = state.clock.now();
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (result, done) = match action.as_str() {
        "join" => (
            waitlist::join(&mut tx, &scope, &ctx, id, now).await,
            "waiting",
        ),
        "leave" => (
            waitlist::leave(&mut tx, &scope, &ctx, id, now).await,
            "not-waiting",
        ),
        _ => return Err(not_found()),
    };
    match result {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/appointments/{id}?done={done}")))
        }
        Err(AppointmentError::NotFound) => Err(not_found()),
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e) => {
            drop(tx);
            detail_again(req, state, chrome, &me, &scope, id, &e).await
        }
    }
}

#[derive(Template)]
#[template(path = "appointment_book.html")]
struct BookPage {
    chrome: Chrome,
    zone: String,
    /// Set when moving an existing visit.
    moving: Option<ApptView>,
    error: Option<String>,
    call_us: String,
    visit_types: Vec<VisitType>,
    chosen: Option<VisitType>,
    providers: Vec<(String, String)>,
    locations: Vec<(String, String)>,
    provider: String,
    location: String,
    /// The date strip (7 days) and the day whose times are shown.
    strip: Vec<StripDay>,
    from: String,
    day_label: String,
    groups: Vec<SlotGroup>,
    /// The query string that keeps the visit type and filters on every link.
    keep: String,
    prev_from: Option<String>,
    next_from: String,
    /// Set when the first week shown is not this week: the first day with open times.
    jumped: bool,
}

#[derive(serde::Deserialize, Default)]
pub struct SlotParams {
    visit_type: Option<String>,
    provider: Option<String>,
    location: Option<String>,
    /// First day of the date strip.
    from: Option<String>,
    /// The day whose times are shown.
    day: Option<String>,
}

const DAYS_SHOWN: u32 = 7;

/// The booking page (or the move page when `moving` is set), with an error when a try failed:
/// one day's times at a time under a week's date strip, opening on the first day with times.
async fn book_page(
    req: &poem::Request,
    state: &AppState,
    chrome: Chrome,
    p: &SlotParams,
    moving: Option<(ApptView, portal_domain::ids::VisitTypeId)>,
    error: Option<String>,
) -> poem::Result<BookPage> {
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let first = today(tz, now);
    let asked_from = parse_date(p.from.as_deref()).filter(|d| *d >= first);
    let mut from = asked_from.unwrap_or(first);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let call_us = ClinicProfile::load(&mut tx)
        .await
        .map_err(db)?
        .call_us(chrome.tenant.display_name());
    let visit_types: Vec<VisitType> = setup::visit_types(&mut tx)
        .await
        .map_err(db)?
        .into_iter()
        .filter(|v| v.self_bookable)
        .collect();
    let chosen_id = match &moving {
        Some((_, vt)) => Some(*vt),
        None => opt_visit_type(p.visit_type.as_deref()),
    };
    let (mut chosen, mut strip, mut groups, mut providers, mut locations) =
        (None, Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut day_label = String::new();
    let mut jumped = false;
    let mut error = error;
    if let Some(vt) = chosen_id {
        let mut q = SlotQuery {
            visit_type_id: vt,
            provider_id: opt_provider(p.provider.as_deref()),
            location_id: opt_location(p.location.as_deref()),
            from,
            days: DAYS_SHOWN,
        };
        let mut found = search::search(&mut tx, true, &q, tz, now).await;
        // Nothing this week and no week asked for: open on the first available day instead.
        if asked_from.is_none()
            && let Ok(f) = &found
            && f.slots.is_empty()
        {
            let ahead = SlotQuery {
                from: from + chrono::Duration::days(i64::from(DAYS_SHOWN)),
                days: 31,
                ..q
            };
            if let Ok(later) = search::search(&mut tx, true, &ahead, tz, now).await
                && let Some(s) = later.slots.first()
            {
                from = s.starts_at.with_timezone(&tz).date_naive();
                q.from = from;
                jumped = true;
                found = search::search(&mut tx, true, &q, tz, now).await;
            }
        }
        match found {
            Ok(found) => {
                let asked_day = parse_date(p.day.as_deref()).filter(|d| {
                    *d >= from && *d < from + chrono::Duration::days(i64::from(DAYS_SHOWN))
                });
                let day = asked_day
                    .or_else(|| {
                        found
                            .slots
                            .first()
                            .map(|s| s.starts_at.with_timezone(&tz).date_naive())
                    })
                    .unwrap_or(from);
                strip = day_strip(&found, tz, from, DAYS_SHOWN, day);
                groups = slot_groups(&found, tz, day);
                day_label = super::words::date(day);
                providers = found
                    .providers
                    .iter()
                    .map(|x| (x.id.to_string(), x.display_name.clone()))
                    .collect();
                locations = found
                    .locations
                    .iter()
                    .map(|x| (x.id.to_string(), x.name.clone()))
                    .collect();
                chosen = Some(found.visit_type);
            }
            Err(e) if e.is_internal() => return Err(internal(e)),
            Err(e) => error = error.or(Some(sentence(&e))),
        }
    }
    tx.commit().await.map_err(db)?;
    let step = chrono::Duration::days(i64::from(DAYS_SHOWN));
    // Only ids that parse go back into links (nothing typed travels on unescaped).
    let provider = opt_provider(p.provider.as_deref())
        .map(|x| x.to_string())
        .unwrap_or_default();
    let location = opt_location(p.location.as_deref())
        .map(|x| x.to_string())
        .unwrap_or_default();
    let keep = match (&moving, &chosen) {
        (None, Some(c)) => format!(
            "visit_type={}&provider={provider}&location={location}",
            c.id
        ),
        _ => format!("provider={provider}&location={location}"),
    };
    // A video visit has no place to choose.
    if chosen
        .as_ref()
        .is_some_and(|c| c.modality == portal_domain::scheduling::Modality::Video)
    {
        locations.clear();
    }
    Ok(BookPage {
        chrome,
        zone: zone_note(tz, now),
        moving: moving.map(|(v, _)| v),
        error,
        call_us,
        visit_types,
        chosen,
        providers,
        locations,
        provider,
        location,
        strip,
        from: from.to_string(),
        day_label,
        groups,
        keep,
        prev_from: (from > first).then(|| (from - step).max(first).to_string()),
        next_from: (from + step).to_string(),
        jumped,
    })
}

#[handler]
pub async fn new(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(p): Query<SlotParams>,
) -> poem::Result<Response> {
    let (chrome, _, _) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let page = book_page(req, state, chrome, &p, None, None).await?;
    render(&page).map(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "appointment_confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    error: Option<String>,
    visit_type: String,
    visit_type_id: String,
    provider_id: String,
    provider_name: String,
    location_id: String,
    location_name: String,
    start: String,
    when: String,
    reason: String,
    video: bool,
    /// Back to the open times, with the same day and filters.
    other_times: String,
    provider_filter: String,
    location_filter: String,
}

#[derive(serde::Deserialize, Default)]
pub struct SlotChoice {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    visit_type: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    reason: String,
    /// The filters the times were chosen under, kept for "other times".
    #[serde(default)]
    provider_filter: String,
    #[serde(default)]
    location_filter: String,
}

async fn confirm_page(
    req: &poem::Request,
    state: &AppState,
    chrome: Chrome,
    c: &SlotChoice,
    error: Option<String>,
) -> poem::Result<Option<ConfirmPage>> {
    let (Some(vt), Some(p), Some(l), Some(start)) = (
        opt_visit_type(Some(&c.visit_type)),
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        return Ok(None);
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let visit_type = setup::visit_type(&mut tx, vt).await.map_err(db)?;
    let (provider, location) = provider_and_location(&mut tx, p, l).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let (Some(visit_type), Some(provider), Some(location)) = (visit_type, provider, location)
    else {
        return Ok(None);
    };
    let tz = clinic_tz(&chrome.tenant);
    let local = start.with_timezone(&tz).date_naive();
    let (provider_filter, location_filter) = (
        opt_provider(Some(&c.provider_filter)).map_or_else(String::new, |x| x.to_string()),
        opt_location(Some(&c.location_filter)).map_or_else(String::new, |x| x.to_string()),
    );
    let other_times = format!(
        "/appointments/new?visit_type={vt}&provider={provider_filter}&location={location_filter}&from={local}&day={local}"
    );
    let video = visit_type.modality == portal_domain::scheduling::Modality::Video;
    Ok(Some(ConfirmPage {
        chrome,
        error,
        visit_type: visit_type.name,
        visit_type_id: vt.to_string(),
        provider_id: p.to_string(),
        provider_name: provider.display_name,
        location_id: l.to_string(),
        location_name: location.name,
        start: start.to_rfc3339(),
        when: local_label(start, tz),
        reason: c.reason.clone(),
        video,
        other_times,
        provider_filter,
        location_filter,
    }))
}

#[handler]
pub async fn confirm(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(c): Query<SlotChoice>,
) -> poem::Result<Response> {
    let (chrome, _, _) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    match confirm_page(req, state, chrome, &c, None).await? {
        Some(page) => render(&page).map(IntoResponse::into_response),
        None => Ok(see_other("/appointments/new")),
    }
}

#[handler]
pub async fn create(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(c): Form<SlotChoice>,
) -> poem::Result<Response> {
    check_form(req, &c.csrf)?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (Some(vt), Some(p), Some(l), Some(start)) = (
        opt_visit_type(Some(&c.visit_type)),
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        return Ok(see_other("/appointments/new"));
    };
    let request = BookRequest {
        visit_type_id: vt,
        provider_id: p,
        location_id: l,
        starts_at: start,
        reason: Some(c.reason.clone()),
    };
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = book(
        &mut tx,
        BookFor::Patient(&scope),
        &audit_ctx(req, Some(&me)),
        &request,
        tz,
        now,
    )
    .await;
    match result {
        Ok(a) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/appointments/{}?done=booked", a.id)))
        }
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e @ AppointmentError::Taken) => {
            drop(tx);
            // Fresh alternatives: the same search, from the same day.
            // The same search, filters kept, from the same day.
            let day = start.with_timezone(&tz).date_naive().to_string();
            let params = SlotParams {
                visit_type: Some(c.visit_type.clone()),
                provider: Some(c.provider_filter.clone()),
                location: Some(c.location_filter.clone()),
                from: Some(day.clone()),
                day: Some(day),
            };
            let msg = format!("{} Here are other open times.", sentence(&e));
            let page = book_page(req, state, chrome, &params, None, Some(msg)).await?;
            render_status(&page, StatusCode::CONFLICT)
        }
        Err(e) => {
            drop(tx);
            let status = status_of(&e);
            match confirm_page(req, state, chrome, &c, Some(sentence(&e))).await? {
                Some(page) => render_status(&page, status),
                None => Ok(see_other("/appointments/new")),
            }
        }
    }
}

#[derive(Template)]
#[template(path = "appointment.html")]
struct DetailPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
    zone: String,
    appt: ApptView,
    /// Set when the visit is too close to change online: the clinic's cut-off in hours.
    cutoff_hours: Option<i32>,
    /// On the earlier-time waitlist.
    waiting: bool,
    /// "Please call Sunrise on …": how to change a visit the portal cannot.
    call_us: String,
    /// The clinic's number for a tap-to-call link.
    tel: Option<String>,
}

/// Where a patient stands with a visit: the cut-off in hours when it is booked but already
/// inside it (so only a call can change it), whether it is on the earlier-time waitlist, and
/// how to call the clinic.
struct Standing {
    cutoff_hours: Option<i32>,
    waiting: bool,
    call_us: String,
    tel: Option<String>,
}

async fn standing(
    req: &poem::Request,
    state: &AppState,
    tenant: &Tenant,
    scope: &PatientScope,
    a: &appointments::Appointment,
) -> poem::Result<Standing> {
    let mut tx = crate::tx::begin(req, &state.tenant_db, tenant)
        .await
        .map_err(db)?;
    let rules = setup::rules(&mut tx).await.map_err(db)?;
    let waiting = waitlist::is_waiting(&mut tx, scope, a.id)
        .await
        .map_err(db)?;
    let profile = ClinicProfile::load(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let now = state.clock.now();
    let cutoff_hours = (a.starts_at > now && a.starts_at - rules.cancel_cutoff() < now)
        .then_some(rules.cancel_cutoff_hours);
    Ok(Standing {
        cutoff_hours,
        waiting,
        call_us: profile.call_us(tenant.display_name()),
        tel: profile.tel(),
    })
}

async fn own(
    req: &Request,
    state: &AppState,
    tenant: &Tenant,
    me: &SignedIn,
    scope: &PatientScope,
    id: &str,
) -> poem::Result<Option<appointments::Appointment>> {
    let Some(id) = AppointmentId::parse(id) else {
        return Ok(None);
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, tenant)
        .await
        .map_err(db)?;
    let a = appointments::get(
        &mut tx,
        Actor::Patient(scope),
        &audit_ctx(req, Some(me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(a)
}

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

#[handler]
pub async fn detail(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let a = own(req, state, &chrome.tenant, &me, &scope, &id)
        .await?
        .ok_or_else(not_found)?;
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let st = standing(req, state, &chrome.tenant, &scope, &a).await?;
    render(&DetailPage {
        zone: zone_note(tz, now),
        appt: appt_view(&a, tz, now),
        chrome,
        notice: notice_of(q.done.as_deref()),
        error: None,
        cutoff_hours: st.cutoff_hours,
        waiting: st.waiting,
        call_us: st.call_us,
        tel: st.tel,
    })
    .map(IntoResponse::into_response)
}

#[handler]
pub async fn calendar_file(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let a = own(req, state, &chrome.tenant, &me, &scope, &id)
        .await?
        .ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let call_us = ClinicProfile::load(&mut tx)
        .await
        .map_err(db)?
        .call_us(chrome.tenant.display_name());
    tx.commit().await.map_err(db)?;
    let ics = calendar::ics(
        &a,
        chrome.tenant.display_name(),
        &call_us,
        chrome.tenant.slug(),
        state.clock.now(),
    );
    Ok(ics
        .with_content_type("text/calendar; charset=utf-8")
        .with_header("Content-Disposition", "attachment; filename=\"visit.ics\"")
        .with_header("Cache-Control", "no-store")
        .into_response())
}

/// `GET /appointments/{id}/cancel`: asks before cancelling, saying exactly which visit.
#[handler]
pub async fn cancel_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let a = own(req, state, &chrome.tenant, &me, &scope, &id)
        .await?
        .ok_or_else(not_found)?;
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let view = appt_view(&a, tz, now);
    let st = standing(req, state, &chrome.tenant, &scope, &a).await?;
    if !view.booked || st.cutoff_hours.is_some() {
        return Ok(see_other(&format!("/appointments/{}", view.id)));
    }
    let page = ConfirmAction {
        title: "Cancel this visit?".to_owned(),
        question: format!(
            "Cancel your {} with {} on {}?",
            view.visit_type.to_lowercase(),
            view.provider,
            view.when
        ),
        details: Vec::new(),
        consequence:
            "The time will be offered to other patients. You can book a new visit at any time."
                .to_owned(),
        action: format!("/appointments/{}/cancel", view.id),
        hidden: Vec::new(),
        confirm_label: "Yes, cancel this visit".to_owned(),
        danger: true,
        back: format!("/appointments/{}", view.id),
        back_label: "Your visit".to_owned(),
        error: None,
        chrome,
    };
    render(&page).map(IntoResponse::into_response)
}

/// `GET /appointments/{id}/reschedule/confirm`: the chosen new time, checked before moving.
#[handler]
pub async fn move_confirm(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(c): Query<SlotChoice>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let a = own(req, state, &chrome.tenant, &me, &scope, &id)
        .await?
        .ok_or_else(not_found)?;
    let (Some(p), Some(l), Some(start)) = (
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        return Ok(see_other(&format!("/appointments/{}/reschedule", a.id)));
    };
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (provider, location) = provider_and_location(&mut tx, p, l).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let (Some(provider), Some(location)) = (provider, location) else {
        return Ok(see_other(&format!("/appointments/{}/reschedule", a.id)));
    };
    let view = appt_view(&a, tz, now);
    let place = if view.video {
        "Video visit".to_owned()
    } else {
        location.name
    };
    let page = ConfirmAction {
        title: "Move your visit?".to_owned(),
        question: format!(
            "Move your {} with {} from {} to {}?",
            view.visit_type.to_lowercase(),
            view.provider,
            view.when,
            local_label(start, tz)
        ),
        details: vec![("New time with", provider.display_name), ("Where", place)],
        consequence:
            "Your old time will be offered to other patients. We will email you the new time."
                .to_owned(),
        action: format!("/appointments/{}/reschedule", view.id),
        hidden: vec![
            ("provider", p.to_string()),
            ("location", l.to_string()),
            ("start", start.to_rfc3339()),
        ],
        confirm_label: "Yes, move my visit".to_owned(),
        danger: false,
        back: format!("/appointments/{}/reschedule", view.id),
        back_label: "Other times".to_owned(),
        error: None,
        chrome,
    };
    render(&page).map(IntoResponse::into_response)
}

#[handler]
pub async fn cancel_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(f): Form<SlotChoice>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = cancel(
        &mut tx,
        Actor::Patient(&scope),
        &audit_ctx(req, Some(&me)),
        id,
        now,
    )
    .await;
    match result {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/appointments/{id}?done=cancelled")))
        }
        Err(AppointmentError::NotFound) => Err(not_found()),
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e) => {
            drop(tx);
            detail_again(req, state, chrome, &me, &scope, id, &e).await
        }
    }
}

/// The detail page with the error of a change that was refused.
async fn detail_again(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &PatientScope,
    id: AppointmentId,
    e: &AppointmentError,
) -> poem::Result<Response> {
    let a = own(req, state, &chrome.tenant, me, scope, &id.to_string())
        .await?
        .ok_or_else(not_found)?;
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let st = standing(req, state, &chrome.tenant, scope, &a).await?;
    let mut error = sentence(e);
    if matches!(e, AppointmentError::PastCutoff { .. }) {
        error = format!("{error} {}", st.call_us);
    }
    render_status(
        &DetailPage {
            zone: zone_note(tz, now),
            appt: appt_view(&a, tz, now),
            chrome,
            notice: None,
            error: Some(error),
            cutoff_hours: st.cutoff_hours,
            waiting: st.waiting,
            call_us: st.call_us,
            tel: st.tel,
        },
        status_of(e),
    )
}

#[handler]
pub async fn move_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(p): Query<SlotParams>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let a = own(req, state, &chrome.tenant, &me, &scope, &id)
        .await?
        .ok_or_else(not_found)?;
    let view = appt_view(&a, clinic_tz(&chrome.tenant), state.clock.now());
    let page = book_page(req, state, chrome, &p, Some((view, a.visit_type_id)), None).await?;
    render(&page).map(IntoResponse::into_response)
}

#[handler]
pub async fn move_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(c): Form<SlotChoice>,
) -> poem::Result<Response> {
    check_form(req, &c.csrf)?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let (Some(p), Some(l), Some(start)) = (
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        return Ok(see_other(&format!("/appointments/{id}/reschedule")));
    };
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = reschedule(
        &mut tx,
        Actor::Patient(&scope),
        &audit_ctx(req, Some(&me)),
        id,
        NewTime {
            provider_id: p,
            location_id: l,
            starts_at: start,
        },
        tz,
        now,
    )
    .await;
    match result {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/appointments/{id}?done=moved")))
        }
        Err(AppointmentError::NotFound) => Err(not_found()),
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e) => {
            drop(tx);
            let a = own(req, state, &chrome.tenant, &me, &scope, &id.to_string())
                .await?
                .ok_or_else(not_found)?;
            let view = appt_view(&a, tz, now);
            let day = start.with_timezone(&tz).date_naive().to_string();
            let params = SlotParams {
                from: Some(day.clone()),
                day: Some(day),
                ..SlotParams::default()
            };
            let msg = match e {
                AppointmentError::Taken => format!("{} Here are other open times.", sentence(&e)),
                _ => sentence(&e),
            };
            let page = book_page(
                req,
                state,
                chrome,
                &params,
                Some((view, a.visit_type_id)),
                Some(msg),
            )
            .await?;
            render_status(&page, status_of(&e))
        }
    }
}
