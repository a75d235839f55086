//! The clinic administrator's scheduling set-up: locations, visit types, providers, weekly
//! hours, time off and booking rules, on one page.

use askama::Template;
use chrono::{NaiveDateTime, TimeZone, Utc};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::scope::{AdminScope, SignedIn};
use portal_domain::ids::{AvailabilityId, LocationId, ProviderId, VisitTypeId};
use portal_domain::scheduling::reminders::{self, ReminderRules};
use portal_domain::scheduling::setup::{
    self, BookingRules, Location, NewVisitType, NewWindow, Provider, SetupError, TimeOff,
    VisitType, VisitTypeInput, Window, minute_label,
};
use portal_domain::scheduling::{clinic_tz, local_label};

use super::scheduling_view::sentence;
use super::{Chrome, Gate, db, render, render_status, require_user, see_other};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;

async fn admin_gate(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn, AdminScope), Response>> {
    match require_user(req, state, "admin").await? {
        Gate::In(c, u) => match u.admin() {
            Some(a) => Ok(Ok((c, u, a))),
            None => Ok(Err(
                poem::Error::from(poem::error::NotFoundError).into_response()
            )),
        },
        Gate::Out(r) => Ok(Err(r)),
    }
}

pub struct HoursRow {
    pub id: String,
    pub provider: String,
    pub location: String,
    pub day: &'static str,
    pub start: String,
    pub end: String,
}

pub struct TimeOffRow {
    pub who: String,
    pub from: String,
    pub to: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "admin_scheduling.html")]
struct SetupPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
    zone: String,
    locations: Vec<Location>,
    visit_types: Vec<VisitType>,
    providers: Vec<Provider>,
    hours: Vec<HoursRow>,
    time_off: Vec<TimeOffRow>,
    rules: BookingRules,
    reminders: ReminderRules,
    quiet: String,
    weekdays: [(u8, &'static str); 7],
}

const WEEKDAYS: [(u8, &str); 7] = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (7, "Sunday"),
];

fn day_name(d: u8) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(n, _)| *n == d)
        .map_or("", |(_, name)| name)
}

async fn setup_page(
    req: &poem::Request,
    state: &AppState,
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
) -> poem::Result<SetupPage> {
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let locations = setup::locations(&mut tx).await.map_err(db)?;
    let visit_types = setup::visit_types(&mut tx).await.map_err(db)?;
    let providers = setup::providers(&mut tx).await.map_err(db)?;
    let windows: Vec<Window> = setup::windows(&mut tx, None).await.map_err(db)?;
    let off: Vec<TimeOff> = setup::time_off(&mut tx, now, now + chrono::Duration::days(730))
        .await
        .map_err(db)?;
    let rules = setup::rules(&mut tx).await.map_err(db)?;
    let reminders = reminders::rules(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let provider_name = |id: ProviderId| {
        providers
            .iter()
            .find(|p| p.id == id)
            .map_or(String::new(), |p| p.display_name.clone())
    };
    let location_name = |id: LocationId| {
        locations
            .iter()
            .find(|l| l.id == id)
            .map_or(String::new(), |l| l.name.clone())
    };
    let hours = windows
        .iter()
        .map(|w| HoursRow {
            id: w.id.to_string(),
            provider: provider_name(w.provider_id),
            location: location_name(w.location_id),
            day: day_name(w.weekday),
            start: minute_label(w.start_minute),
            end: minute_label(w.end_minute),
        })
        .collect();
    let time_off = off
        .iter()
        .map(|t| TimeOffRow {
            who: match (t.provider_id, t.location_id) {
                (Some(p), _) => provider_name(p),
                (None, Some(l)) => format!("{} (closed)", location_name(l)),
                (None, None) => "Whole clinic (closed)".to_owned(),
            },
            from: local_label(t.starts_at, tz),
            to: local_label(t.ends_at, tz),
            label: t.label.clone(),
        })
        .collect();
    Ok(SetupPage {
        chrome,
        notice,
        error,
        zone: super::scheduling_view::zone_note(tz, now),
        locations,
        visit_types,
        providers,
        hours,
        time_off,
        rules,
        reminders,
        quiet: reminders::quiet_hours_label(),
        weekdays: WEEKDAYS,
    })
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

#[handler]
pub async fn setup_view(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<DoneQuery>,
) -> poem::Result<Response> {
    let (chrome, _, _) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let notice = q.done.as_deref().map(|_| "Saved.");
    render(&setup_page(req, state, chrome, notice, None).await?).map(IntoResponse::into_response)
}

/// One set-up change, parsed from its form.
enum Change {
    Location {
        name: String,
        address: String,
    },
    VisitType(NewVisitType),
    Provider {
        name: String,
        types: Vec<VisitTypeId>,
    },
    Hours(NewWindow),
    RemoveHours(Option<AvailabilityId>),
    /// Times are read in the clinic's zone when applied.
    TimeOff {
        provider: Option<ProviderId>,
        location: Option<LocationId>,
        starts: String,
        ends: String,
        label: String,
    },
    Rules(BookingRules),
    Reminders(ReminderRules),
}

/// Runs one set-up change in a clinic transaction; errors come back on the page (422).
async fn apply(
    req: &Request,
    state: &AppState,
    pairs: &[(String, String)],
    change: Result<Change, SetupError>,
) -> poem::Result<Response> {
    check_form(req, field(pairs, "csrf"))?;
    let (chrome, me, admin) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let ctx = audit_ctx(req, Some(&me));
    let tz = clinic_tz(&chrome.tenant);
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = match change {
        Err(e) => Err(e),
        Ok(Change::Location { name, address }) => {
            setup::add_location(&mut tx, &admin, &ctx, &name, &address, now)
                .await
                .map(|_| ())
        }
        Ok(Change::VisitType(new)) => setup::add_visit_type(&mut tx, &admin, &ctx, &new, now)
            .await
            .map(|_| ()),
        Ok(Change::Provider { name, types }) => {
            setup::add_provider(&mut tx, &admin, &ctx, &name, &types, now)
                .await
                .map(|_| ())
        }
        Ok(Change::Hours(new)) => setup::add_window(&mut tx, &admin, &ctx, &new, now)
            .await
            .map(|_| ()),
        Ok(Change::RemoveHours(id)) => match id {
            Some(id) => setup::remove_window(&mut tx, &admin, &ctx, id, now)
                .await
                .map(|_| ()),
            None => Ok(()),
        },
        Ok(Change::TimeOff {
            provider,
            location,
            starts,
            ends,
            label,
        }) => match (local_instant(&starts, tz), local_instant(&ends, tz)) {
            (Some(from), Some(to)) => setup::add_time_off(
                &mut tx, &admin, &ctx, provider, location, from, to, &label, now,
            )
            .await
            .map(|_| ()),
            _ => Err(SetupError::Invalid(
                "Give a start and an end date and time.",
            )),
        },
        Ok(Change::Rules(rules)) => setup::set_rules(&mut tx, &admin, &ctx, &rules, now).await,
        Ok(Change::Reminders(rules)) => {
            reminders::set_rules(&mut tx, &admin, &ctx, &rules, now).await
        }
    };
    match result {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other("/admin/scheduling?done=1"))
        }
        Err(SetupError::Database(e)) => Err(db(e)),
        Err(e) => {
            drop(tx);
            let page = setup_page(req, state, chrome, None, Some(sentence(&e))).await?;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// A `datetime-local` value read in the clinic's zone.
fn local_instant(raw: &str, tz: chrono_tz::Tz) -> Option<chrono::DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M").ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

type Pairs = Form<Vec<(String, String)>>;

#[handler]
pub async fn add_location(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = Ok(Change::Location {
        name: field(&f, "name").to_owned(),
        address: field(&f, "address").to_owned(),
    });
    apply(req, state, &f, change).await
}

#[handler]
pub async fn add_visit_type(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = NewVisitType::parse(&VisitTypeInput {
        name: field(&f, "name"),
        duration_minutes: field(&f, "duration"),
        self_bookable: !field(&f, "self_bookable").is_empty(),
        audience: field(&f, "audience"),
        modality: field(&f, "modality"),
        video_base_url: field(&f, "video_base_url"),
    })
    .map(Change::VisitType);
    apply(req, state, &f, change).await
}

#[handler]
pub async fn add_provider(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = f
        .iter()
        .filter(|(k, _)| k == "visit_types")
        .map(|(_, v)| VisitTypeId::parse(v).ok_or(SetupError::UnknownVisitType))
        .collect::<Result<Vec<_>, _>>()
        .map(|types| Change::Provider {
            name: field(&f, "name").to_owned(),
            types,
        });
    apply(req, state, &f, change).await
}

#[handler]
pub async fn add_hours(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = (|| {
        let provider =
            ProviderId::parse(field(&f, "provider")).ok_or(SetupError::UnknownProvider)?;
        let location =
            LocationId::parse(field(&f, "location")).ok_or(SetupError::UnknownLocation)?;
        NewWindow::parse(
            provider,
            location,
            field(&f, "weekday"),
            field(&f, "start"),
            field(&f, "end"),
        )
        .map(Change::Hours)
    })();
    apply(req, state, &f, change).await
}

#[handler]
pub async fn remove_hours(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = Ok(Change::RemoveHours(AvailabilityId::parse(&id)));
    apply(req, state, &f, change).await
}

#[handler]
pub async fn add_time_off(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = (|| {
        let provider = match field(&f, "provider") {
            "" => None,
            raw => Some(ProviderId::parse(raw).ok_or(SetupError::UnknownProvider)?),
        };
        let location = match field(&f, "location") {
            "" => None,
            raw => Some(LocationId::parse(raw).ok_or(SetupError::UnknownLocation)?),
        };
        Ok(Change::TimeOff {
            provider,
            location,
            starts: field(&f, "starts").to_owned(),
            ends: field(&f, "ends").to_owned(),
            label: field(&f, "label").to_owned(),
        })
    })();
    apply(req, state, &f, change).await
}

#[handler]
pub async fn set_rules(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = BookingRules::parse(
        field(&f, "min_notice"),
        field(&f, "horizon"),
        field(&f, "cutoff"),
    )
    .map(Change::Rules);
    apply(req, state, &f, change).await
}

#[handler]
pub async fn set_reminders(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Pairs,
) -> poem::Result<Response> {
    let change = ReminderRules::parse(
        field(&f, "hours"),
        field(&f, "email") == "1",
        field(&f, "sms") == "1",
    )
    .map(Change::Reminders);
    apply(req, state, &f, change).await
}
