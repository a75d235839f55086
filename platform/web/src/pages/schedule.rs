//! The staff schedule: a day or a week of appointments, with check-in, no-show, complete,
//! cancel and move, and booking for a patient. The page polls a change stamp and redraws
//! itself when anyone (staff or a patient) books or changes a visit.

use askama::Template;
use chrono::{DateTime, TimeZone, Utc};
use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use poem::http::StatusCode;
use poem::web::{Data, Form, Json, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::scope::{SchedulingScope, SignedIn};
use portal_domain::ids::{AppointmentId, PatientId};
use portal_domain::patients::{self, Patient};
use portal_domain::scheduling::appointments::status::{StaffAction, mark};
use portal_domain::scheduling::appointments::{
    self, Actor, BookFor, BookRequest, NewTime, book, cancel, reschedule,
};
use portal_domain::scheduling::search::{self, SlotQuery};
use portal_domain::scheduling::setup::{self, Provider, VisitType};
use portal_domain::scheduling::{AppointmentError, clinic_tz};

use super::confirm::ConfirmAction;
use super::scheduling_view::{
    ApptView, SlotDay, appt_view, opt_location, opt_provider, opt_visit_type, parse_date,
    parse_start, provider_and_location, sentence, slot_days, status_of, today, zone_note,
};
use super::{Chrome, Gate, db, render, render_status, require_user, see_other, words};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::{AppState, internal};

async fn staff_gate(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn, SchedulingScope), Response>> {
    match require_user(req, state, "schedule").await? {
        Gate::In(c, u) => match u.scheduling() {
            Some(s) => Ok(Ok((c, u, s))),
            None => Ok(Err(
                poem::Error::from(poem::error::NotFoundError).into_response()
            )),
        },
        Gate::Out(r) => Ok(Err(r)),
    }
}

/// Local midnight of `date` as an instant (the first instant of the day if midnight is skipped).
fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let naive = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc))
}

pub struct DayView {
    pub label: String,
    pub appts: Vec<ApptView>,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    chrome: Chrome,
    notice: Option<String>,
    error: Option<String>,
    zone: String,
    date: String,
    week: bool,
    title: String,
    prev: String,
    next: String,
    provider: String,
    providers: Vec<Provider>,
    days: Vec<DayView>,
    stamp: i64,
    /// Messages of the last 30 days that could not be sent (links to the list).
    undelivered: i64,
    /// Front desk's start page: today's arrivals only (no cancelled visits).
    arrivals: bool,
    /// The filters as a query string, for links that keep them.
    keep: String,
    /// This page's address, encoded for a `back=` parameter.
    back_param: String,
}

#[derive(serde::Deserialize, Default)]
pub struct ScheduleQuery {
    date: Option<String>,
    view: Option<String>,
    provider: Option<String>,
    done: Option<String>,
    arrivals: Option<String>,
    mine: Option<String>,
}

async fn schedule_page(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &SchedulingScope,
    q: &ScheduleQuery,
    error: Option<String>,
) -> poem::Result<SchedulePage> {
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let arrivals = q.arrivals.is_some();
    let mine = q.mine.is_some() && !arrivals;
    let date = match arrivals {
        true => today(tz, now),
        false => parse_date(q.date.as_deref()).unwrap_or_else(|| today(tz, now)),
    };
    let week = q.view.as_deref() == Some("week") && !arrivals;
    let (first, n_days) = if week {
        let monday = date
            - Duration::days(i64::from(
                chrono::Datelike::weekday(&date).num_days_from_monday(),
            ));
        (monday, 7)
    } else {
        (date, 1)
    };
    let last = first + Duration::days(n_days);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let providers = setup::providers(&mut tx).await.map_err(db)?;
    let own = match mine {
        true => setup::provider_for_user(&mut tx, me.user_id, &me.display_name)
            .await
            .map_err(db)?,
        false => None,
    };
    let provider = own.or_else(|| opt_provider(q.provider.as_deref()));
    let list = appointments::schedule(
        &mut tx,
        scope,
        &audit_ctx(req, Some(me)),
        day_start(tz, first),
        day_start(tz, last),
        provider,
        now,
    )
    .await
    .map_err(db)?;
    let stamp = appointments::schedule_stamp(&mut tx, scope)
        .await
        .map_err(db)?;
    let undelivered = portal_domain::undelivered::count(&mut tx, now)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let mut days: Vec<DayView> = (0..n_days)
        .map(|i| DayView {
            label: (first + Duration::days(i))
                .format("%a %-d %b %Y")
                .to_string(),
            appts: Vec::new(),
        })
        .collect();
    for a in &list {
        if arrivals && a.status == portal_domain::scheduling::AppointmentStatus::Cancelled {
            continue;
        }
        let d = a.starts_at.with_timezone(&tz).date_naive();
        let i = (d - first).num_days();
        if let Some(day) = usize::try_from(i).ok().and_then(|i| days.get_mut(i)) {
            day.appts.push(appt_view(a, tz, now));
        }
    }
    let step = Duration::days(n_days);
    let mut notice = match q.done.as_deref() {
        Some("booked") => Some("Visit booked.".to_owned()),
        Some("moved") => Some("Visit moved.".to_owned()),
        Some("updated") => Some("Visit updated.".to_owned()),
        _ => None,
    };
    let provider_param = provider.map(|p| p.to_string()).unwrap_or_default();
    let keep = format!(
        "view={}&provider={provider_param}",
        if week { "week" } else { "day" }
    );
    let name = |p: portal_domain::ids::ProviderId| {
        providers
            .iter()
            .find(|x| x.id == p)
            .map_or(String::new(), |x| x.display_name.clone())
    };
    let title = if arrivals {
        format!("Today's arrivals — {}", words::date(date))
    } else if let Some(p) = own {
        format!("{} — {}", name(p), words::date(date))
    } else if week {
        format!("Week of {}", words::date(first))
    } else {
        words::date(date)
    };
    if mine && own.is_none() {
        notice = notice.or_else(|| {
            Some(format!(
                "No provider is set up under your name ({}), so this is everyone's schedule.",
                me.display_name
            ))
        });
    }
    let here = format!(
        "/staff/schedule?date={date}&{keep}{}",
        if arrivals { "&arrivals=1" } else { "" }
    );
    let back_param = here
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    Ok(SchedulePage {
        chrome,
        notice,
        error,
        back_param,
        zone: zone_note(tz, now),
        date: date.to_string(),
        week,
        arrivals,
        keep,
        title,
        prev: (date - step).to_string(),
        next: (date + step).to_string(),
        provider: provider_param,
        providers,
        days,
        stamp,
        undelivered,
    })
}

#[handler]
pub async fn schedule_view(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<ScheduleQuery>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let page = schedule_page(req, state, chrome, &me, &scope, &q, None).await?;
    render(&page).map(IntoResponse::into_response)
}

#[derive(serde::Serialize)]
struct Stamp {
    stamp: i64,
}

/// The schedule's change stamp, polled by the page to know when to redraw.
#[handler]
pub async fn schedule_stamp_json(
    req: &Request,
    Data(state): Data<&AppState>,
) -> poem::Result<Response> {
    let (chrome, _, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(_) => return Ok(StatusCode::UNAUTHORIZED.into_response()),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let stamp = appointments::schedule_stamp(&mut tx, &scope)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(Stamp { stamp })
        .with_header("Cache-Control", "no-store")
        .into_response())
}

#[derive(serde::Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    view: String,
    /// The schedule page to return to, with its filters.
    #[serde(default)]
    back: String,
}

/// Where to go after an action: the schedule page it came from (only ever a schedule page).
fn back_to(f: &ActionForm) -> String {
    if f.back.starts_with("/staff/schedule?") && !f.back.contains("//") {
        let sep = if f.back.contains("done=") {
            ""
        } else {
            "&done=updated"
        };
        format!("{}{sep}", f.back)
    } else {
        format!(
            "/staff/schedule?date={}&view={}&done=updated",
            f.date, f.view
        )
    }
}

#[derive(serde::Deserialize, Default)]
pub struct BackQuery {
    #[serde(default)]
    back: String,
}

/// `GET /staff/appointments/{id}/{cancel|no-show}`: asks before a change the patient feels.
#[handler]
pub async fn act_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((id, action)): Path<(String, String)>,
    Query(b): Query<BackQuery>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if action != "cancel" && action != "no-show" {
        return Err(not_found());
    }
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let a = staff_appt(req, state, &chrome, &me, &scope, id).await?;
    let (tz, now) = (clinic_tz(&chrome.tenant), state.clock.now());
    let view = appt_view(&a, tz, now);
    let back = if b.back.starts_with("/staff/schedule?") && !b.back.contains("//") {
        b.back.clone()
    } else {
        format!(
            "/staff/schedule?date={}",
            a.starts_at.with_timezone(&tz).date_naive()
        )
    };
    let (title, question, consequence, label) = if action == "cancel" {
        (
            "Cancel this visit?",
            format!(
                "Cancel {} {} with {} on {}?",
                words::possessive(&view.patient_name),
                view.visit_type.to_lowercase(),
                view.provider,
                view.when
            ),
            "The patient is told by email (and text message if they chose it), and the time is offered to patients waiting for an earlier one.",
            "Yes, cancel the visit",
        )
    } else {
        (
            "Mark as a no-show?",
            format!(
                "Record that {} did not come to their {} with {} on {}?",
                view.patient_name,
                view.visit_type.to_lowercase(),
                view.provider,
                view.when
            ),
            "The visit stays on the record as missed. This cannot be undone here.",
            "Yes, mark as a no-show",
        )
    };
    let page = ConfirmAction {
        title: title.to_owned(),
        question,
        details: Vec::new(),
        consequence: consequence.to_owned(),
        action: format!("/staff/appointments/{}/{action}", view.id),
        hidden: vec![("back", back.clone())],
        confirm_label: label.to_owned(),
        danger: true,
        back,
        back_label: "Schedule".to_owned(),
        error: None,
        chrome,
    };
    render(&page).map(IntoResponse::into_response)
}

#[handler]
pub async fn act(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let now = state.clock.now();
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = if action == "cancel" {
        cancel(&mut tx, Actor::Staff(&scope), &ctx, id, now).await
    } else {
        let a = StaffAction::parse(&action).ok_or_else(not_found)?;
        mark(&mut tx, &scope, &ctx, id, a, now).await
    };
    let q = ScheduleQuery {
        date: Some(f.date.clone()).filter(|d| !d.is_empty()),
        view: Some(f.view.clone()).filter(|v| !v.is_empty()),
        ..ScheduleQuery::default()
    };
    match result {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&back_to(&f)))
        }
        Err(AppointmentError::NotFound) => Err(not_found()),
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e) => {
            drop(tx);
            let page =
                schedule_page(req, state, chrome, &me, &scope, &q, Some(sentence(&e))).await?;
            render_status(&page, status_of(&e))
        }
    }
}

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

#[derive(Template)]
#[template(path = "staff_book.html")]
struct StaffBookPage {
    chrome: Chrome,
    zone: String,
    error: Option<String>,
    /// Set when moving an existing visit.
    moving: Option<ApptView>,
    /// The patient being booked for (chosen on their page, reached by search).
    patient_name: Option<String>,
    patient: String,
    visit_types: Vec<VisitType>,
    visit_type: String,
    providers: Vec<(String, String)>,
    locations: Vec<(String, String)>,
    provider: String,
    location: String,
    from: String,
    next_from: String,
    days: Vec<SlotDay>,
}

#[derive(serde::Deserialize, Default)]
pub struct StaffSlotParams {
    patient: Option<String>,
    visit_type: Option<String>,
    provider: Option<String>,
    location: Option<String>,
    from: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn staff_book_page(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &SchedulingScope,
    p: &StaffSlotParams,
    moving: Option<(ApptView, portal_domain::ids::VisitTypeId)>,
    error: Option<String>,
) -> poem::Result<StaffBookPage> {
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let first = today(tz, now);
    let from = parse_date(p.from.as_deref())
        .filter(|d| *d >= first)
        .unwrap_or(first);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let patient_name = match (
        moving.is_none(),
        p.patient.as_deref().and_then(PatientId::parse),
    ) {
        (true, Some(id)) => {
            patients::get(&mut tx, scope.staff(), &audit_ctx(req, Some(me)), id, now)
                .await
                .map_err(db)?
                .map(|x: Patient| x.full_name())
        }
        _ => None,
    };
    let visit_types = setup::visit_types(&mut tx).await.map_err(db)?;
    let vt = match &moving {
        Some((_, vt)) => Some(*vt),
        None => opt_visit_type(p.visit_type.as_deref()),
    };
    let (mut days, mut providers, mut locations) = (Vec::new(), Vec::new(), Vec::new());
    let mut error = error;
    if let Some(vt) = vt {
        let q = SlotQuery {
            visit_type_id: vt,
            provider_id: opt_provider(p.provider.as_deref()),
            location_id: opt_location(p.location.as_deref()),
            from,
            days: 7,
        };
        match search::search(&mut tx, false, &q, tz, now).await {
            Ok(found) => {
                days = slot_days(&found, tz);
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
            }
            Err(e) if e.is_internal() => return Err(internal(e)),
            Err(e) => error = error.or(Some(sentence(&e))),
        }
    }
    tx.commit().await.map_err(db)?;
    Ok(StaffBookPage {
        chrome,
        zone: zone_note(tz, now),
        error,
        moving: moving.map(|(v, _)| v),
        patient: if patient_name.is_some() {
            p.patient.clone().unwrap_or_default()
        } else {
            String::new()
        },
        patient_name,
        visit_types,
        visit_type: vt.map(|v| v.to_string()).unwrap_or_default(),
        providers,
        locations,
        provider: p.provider.clone().unwrap_or_default(),
        location: p.location.clone().unwrap_or_default(),
        from: from.to_string(),
        next_from: (from + Duration::days(7)).to_string(),
        days,
    })
}

#[handler]
pub async fn book_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(p): Query<StaffSlotParams>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let page = staff_book_page(req, state, chrome, &me, &scope, &p, None, None).await?;
    render(&page).map(IntoResponse::into_response)
}

#[derive(serde::Deserialize, Default)]
pub struct StaffSlotChoice {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    patient: String,
    #[serde(default)]
    visit_type: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    start: String,
}

/// `GET /staff/book/confirm`: says exactly what booking for the patient will do.
#[handler]
pub async fn book_confirm(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(c): Query<StaffSlotChoice>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let (Some(patient), Some(vt), Some(p), Some(l), Some(start)) = (
        PatientId::parse(&c.patient),
        opt_visit_type(Some(&c.visit_type)),
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        return Ok(see_other("/staff/book"));
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let who = patients::get(
        &mut tx,
        scope.staff(),
        &audit_ctx(req, Some(&me)),
        patient,
        now,
    )
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    let visit_type = setup::visit_type(&mut tx, vt).await.map_err(db)?;
    let (provider, location) = provider_and_location(&mut tx, p, l).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let (Some(visit_type), Some(provider), Some(location)) = (visit_type, provider, location)
    else {
        return Ok(see_other("/staff/book"));
    };
    let video = visit_type.modality == portal_domain::scheduling::Modality::Video;
    let page = ConfirmAction {
        title: "Book this visit?".to_owned(),
        question: format!(
            "Book {} {} with {} on {}?",
            words::possessive(&who.full_name()),
            visit_type.name.to_lowercase(),
            provider.display_name,
            portal_domain::scheduling::local_label(start, tz)
        ),
        details: vec![(
            "Where",
            if video {
                "Video visit".to_owned()
            } else {
                location.name
            },
        )],
        consequence: "The patient gets a confirmation email with a calendar file.".to_owned(),
        action: "/staff/book".to_owned(),
        hidden: vec![
            ("patient", patient.to_string()),
            ("visit_type", vt.to_string()),
            ("provider", p.to_string()),
            ("location", l.to_string()),
            ("start", start.to_rfc3339()),
        ],
        confirm_label: "Yes, book the visit".to_owned(),
        danger: false,
        back: format!(
            "/staff/book?patient={patient}&visit_type={vt}&from={}",
            start.with_timezone(&tz).date_naive()
        ),
        back_label: "Other times".to_owned(),
        error: None,
        chrome,
    };
    render(&page).map(IntoResponse::into_response)
}

/// `GET /staff/appointments/{id}/move/confirm`: the new time, checked before moving.
#[handler]
pub async fn move_confirm(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(c): Query<StaffSlotChoice>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let a = staff_appt(req, state, &chrome, &me, &scope, id).await?;
    let (Some(p), Some(l), Some(start)) = (
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        return Ok(see_other(&format!("/staff/appointments/{id}/move")));
    };
    let tz = clinic_tz(&chrome.tenant);
    let view = appt_view(&a, tz, state.clock.now());
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let provider = setup::providers(&mut tx)
        .await
        .map_err(db)?
        .into_iter()
        .find(|x| x.id == p)
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    let page = ConfirmAction {
        title: "Move this visit?".to_owned(),
        question: format!(
            "Move {} {} from {} to {} with {}?",
            words::possessive(&view.patient_name),
            view.visit_type.to_lowercase(),
            view.when,
            portal_domain::scheduling::local_label(start, tz),
            provider.display_name
        ),
        details: Vec::new(),
        consequence: "The patient gets an email with the new time, and the old time is offered to patients waiting for one.".to_owned(),
        action: format!("/staff/appointments/{id}/move"),
        hidden: vec![
            ("provider", p.to_string()),
            ("location", l.to_string()),
            ("start", start.to_rfc3339()),
        ],
        confirm_label: "Yes, move the visit".to_owned(),
        danger: false,
        back: format!("/staff/appointments/{id}/move"),
        back_label: "Other times".to_owned(),
        error: None,
        chrome,
    };
    render(&page).map(IntoResponse::into_response)
}

#[handler]
pub async fn book_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(c): Form<StaffSlotChoice>,
) -> poem::Result<Response> {
    check_form(req, &c.csrf)?;
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let params = StaffSlotParams {
        patient: Some(c.patient.clone()),
        visit_type: Some(c.visit_type.clone()),
        provider: Some(c.provider.clone()),
        location: Some(c.location.clone()),
        from: None,
    };
    let (Some(patient), Some(vt), Some(p), Some(l), Some(start)) = (
        PatientId::parse(&c.patient),
        opt_visit_type(Some(&c.visit_type)),
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        let page = staff_book_page(
            req,
            state,
            chrome,
            &me,
            &scope,
            &params,
            None,
            Some("Choose a patient, a visit type and a time.".to_owned()),
        )
        .await?;
        return render_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = book(
        &mut tx,
        BookFor::Staff(&scope, patient),
        &audit_ctx(req, Some(&me)),
        &BookRequest {
            visit_type_id: vt,
            provider_id: p,
            location_id: l,
            starts_at: start,
            reason: None,
        },
        tz,
        now,
    )
    .await;
    match result {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            let date = start.with_timezone(&tz).date_naive();
            Ok(see_other(&format!(
                "/staff/schedule?date={date}&done=booked"
            )))
        }
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e) => {
            drop(tx);
            let page = staff_book_page(
                req,
                state,
                chrome,
                &me,
                &scope,
                &params,
                None,
                Some(sentence(&e)),
            )
            .await?;
            render_status(&page, status_of(&e))
        }
    }
}

async fn staff_appt(
    req: &Request,
    state: &AppState,
    chrome: &Chrome,
    me: &SignedIn,
    scope: &SchedulingScope,
    id: AppointmentId,
) -> poem::Result<appointments::Appointment> {
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let a = appointments::get(
        &mut tx,
        Actor::Staff(scope),
        &audit_ctx(req, Some(me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    a.ok_or_else(not_found)
}

#[handler]
pub async fn move_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Query(p): Query<StaffSlotParams>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let a = staff_appt(req, state, &chrome, &me, &scope, id).await?;
    let view = appt_view(&a, clinic_tz(&chrome.tenant), state.clock.now());
    let page = staff_book_page(
        req,
        state,
        chrome,
        &me,
        &scope,
        &p,
        Some((view, a.visit_type_id)),
        None,
    )
    .await?;
    render(&page).map(IntoResponse::into_response)
}

#[handler]
pub async fn move_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(c): Form<StaffSlotChoice>,
) -> poem::Result<Response> {
    check_form(req, &c.csrf)?;
    let (chrome, me, scope) = match staff_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AppointmentId::parse(&id).ok_or_else(not_found)?;
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let (Some(p), Some(l), Some(start)) = (
        opt_provider(Some(&c.provider)),
        opt_location(Some(&c.location)),
        parse_start(&c.start),
    ) else {
        return Ok(see_other(&format!("/staff/appointments/{id}/move")));
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = reschedule(
        &mut tx,
        Actor::Staff(&scope),
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
            let date = start.with_timezone(&tz).date_naive();
            Ok(see_other(&format!(
                "/staff/schedule?date={date}&done=moved"
            )))
        }
        Err(AppointmentError::NotFound) => Err(not_found()),
        Err(e) if e.is_internal() => Err(internal(e)),
        Err(e) => {
            drop(tx);
            let a = staff_appt(req, state, &chrome, &me, &scope, id).await?;
            let view = appt_view(&a, tz, now);
            let page = staff_book_page(
                req,
                state,
                chrome,
                &me,
                &scope,
                &StaffSlotParams::default(),
                Some((view, a.visit_type_id)),
                Some(sentence(&e)),
            )
            .await?;
            render_status(&page, status_of(&e))
        }
    }
}
