//! What the appointment pages show, ready for templates: times in the clinic's zone, slots
//! grouped by day, and the mapping of booking errors to statuses.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use poem::http::StatusCode;
use portal_domain::ids::{LocationId, ProviderId, VisitTypeId};
use portal_domain::scheduling::appointments::status::check_in_open;
use portal_domain::scheduling::search::SlotSearch;
use portal_domain::scheduling::{
    Appointment, AppointmentError, AppointmentStatus, local_label, local_time_label,
};

/// One open time, as a button.
pub struct SlotView {
    pub provider_id: String,
    pub provider_name: String,
    pub location_id: String,
    /// The start (RFC 3339), ready for a query string.
    pub start_q: String,
    pub time: String,
    /// Where: the location's name, or "Video" for a video visit (never "Main clinic").
    pub place: String,
}

impl SlotView {
    fn of(search: &SlotSearch, s: &portal_domain::scheduling::slots::Slot, tz: Tz) -> Self {
        let video = search.visit_type.modality == portal_domain::scheduling::Modality::Video;
        SlotView {
            provider_id: s.provider_id.to_string(),
            provider_name: search.provider_name(s.provider_id).to_owned(),
            location_id: s.location_id.to_string(),
            start_q: s.starts_at.to_rfc3339().replace('+', "%2B"),
            time: local_time_label(s.starts_at, tz),
            place: if video {
                "Video".to_owned()
            } else {
                search.location_name(s.location_id).to_owned()
            },
        }
    }
}

/// One day in the booking page's date strip.
pub struct StripDay {
    /// `YYYY-MM-DD`, for links.
    pub date: String,
    pub weekday: String,
    pub day: String,
    pub month: String,
    /// Open times that day.
    pub count: usize,
    pub selected: bool,
    /// Read after the visible "Wed 2 Dec" (which stays the start of the link's name, for
    /// speech users): "3 open times".
    pub times: String,
}

/// The open times of one part of a day (morning, afternoon, evening).
pub struct SlotGroup {
    pub label: &'static str,
    pub slots: Vec<SlotView>,
}

/// `days` dates from `from`, each with its number of open times.
pub fn day_strip(
    search: &SlotSearch,
    tz: Tz,
    from: NaiveDate,
    days: u32,
    selected: NaiveDate,
) -> Vec<StripDay> {
    (0..i64::from(days))
        .map(|i| {
            let date = from + chrono::Duration::days(i);
            let count = search
                .slots
                .iter()
                .filter(|s| s.starts_at.with_timezone(&tz).date_naive() == date)
                .count();
            StripDay {
                date: date.to_string(),
                weekday: date.format("%a").to_string(),
                day: date.format("%-d").to_string(),
                month: date.format("%b").to_string(),
                count,
                selected: date == selected,
                times: super::words::count(count as i64, "open time", "open times"),
            }
        })
        .collect()
}

/// The open times on `day`, grouped into morning, afternoon and evening.
pub fn slot_groups(search: &SlotSearch, tz: Tz, day: NaiveDate) -> Vec<SlotGroup> {
    let mut groups = vec![
        SlotGroup {
            label: "Morning",
            slots: Vec::new(),
        },
        SlotGroup {
            label: "Afternoon",
            slots: Vec::new(),
        },
        SlotGroup {
            label: "Evening",
            slots: Vec::new(),
        },
    ];
    for s in &search.slots {
        let local = s.starts_at.with_timezone(&tz);
        if local.date_naive() != day {
            continue;
        }
        let part = match chrono::Timelike::hour(&local) {
            0..12 => 0,
            12..17 => 1,
            _ => 2,
        };
        groups[part].slots.push(SlotView::of(search, s, tz));
    }
    groups.retain(|g| !g.slots.is_empty());
    groups
}

/// A day's open times.
pub struct SlotDay {
    pub label: String,
    pub slots: Vec<SlotView>,
}

pub fn slot_days(search: &SlotSearch, tz: Tz) -> Vec<SlotDay> {
    let mut days: Vec<SlotDay> = Vec::new();
    for s in &search.slots {
        let label = s
            .starts_at
            .with_timezone(&tz)
            .format("%a %-d %b %Y")
            .to_string();
        let view = SlotView::of(search, s, tz);
        match days.last_mut() {
            Some(d) if d.label == label => d.slots.push(view),
            _ => days.push(SlotDay {
                label,
                slots: vec![view],
            }),
        }
    }
    days
}

/// An appointment as a row or a page.
pub struct ApptView {
    pub id: String,
    pub when: String,
    pub time: String,
    pub patient_id: String,
    pub patient_name: String,
    pub provider: String,
    pub location: String,
    pub address: String,
    pub visit_type: String,
    pub video: bool,
    pub video_url: Option<String>,
    pub status: &'static str,
    pub status_label: &'static str,
    pub reason: Option<String>,
    pub upcoming: bool,
    pub booked: bool,
    pub confirmed: bool,
    /// What staff may do with it now (the schedule shows only these).
    pub can_check_in: bool,
    pub can_no_show: bool,
    pub can_complete: bool,
}

pub fn appt_view(a: &Appointment, tz: Tz, now: DateTime<Utc>) -> ApptView {
    ApptView {
        id: a.id.to_string(),
        when: local_label(a.starts_at, tz),
        time: format!(
            "{} – {}",
            local_time_label(a.starts_at, tz),
            local_time_label(a.ends_at, tz)
        ),
        patient_id: a.patient_id.to_string(),
        patient_name: a.patient_name.clone(),
        provider: a.provider_name.clone(),
        location: a.location_name.clone(),
        address: a.location_address.clone(),
        visit_type: a.visit_type_name.clone(),
        video: a.video_url.is_some(),
        video_url: a.video_url.clone(),
        status: a.status.as_str(),
        status_label: a.status.label(),
        reason: a.reason.clone(),
        upcoming: a.is_upcoming(now),
        booked: a.status == AppointmentStatus::Booked && a.starts_at > now,
        confirmed: a.confirmed_at.is_some(),
        can_check_in: a.status == AppointmentStatus::Booked
            && check_in_open(a.starts_at, a.ends_at, now),
        can_no_show: a.status == AppointmentStatus::Booked && now >= a.starts_at,
        can_complete: a.status == AppointmentStatus::CheckedIn,
    }
}

/// A provider and a location of the clinic's set-up by id (each `None` when unknown or
/// removed), for the pages that confirm a chosen time.
pub async fn provider_and_location(
    tx: &mut portal_tenants::TenantTx,
    provider: ProviderId,
    location: LocationId,
) -> Result<
    (
        Option<portal_domain::scheduling::Provider>,
        Option<portal_domain::scheduling::Location>,
    ),
    sqlx::Error,
> {
    let p = portal_domain::scheduling::setup::providers(tx)
        .await?
        .into_iter()
        .find(|x| x.id == provider);
    let l = portal_domain::scheduling::setup::locations(tx)
        .await?
        .into_iter()
        .find(|x| x.id == location);
    Ok((p, l))
}

/// The zone line every page with times shows, e.g. "Times are in America/New_York (EST)".
pub fn zone_note(tz: Tz, now: DateTime<Utc>) -> String {
    format!(
        "Times are in the clinic's time zone, {} ({}).",
        tz.name(),
        now.with_timezone(&tz).format("%Z")
    )
}

/// The clinic's today.
pub fn today(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// Parses an optional date query (`YYYY-MM-DD`).
pub fn parse_date(raw: Option<&str>) -> Option<NaiveDate> {
    raw.and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok())
}

pub fn parse_start(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

pub fn opt_provider(raw: Option<&str>) -> Option<ProviderId> {
    raw.filter(|s| !s.is_empty()).and_then(ProviderId::parse)
}
pub fn opt_location(raw: Option<&str>) -> Option<LocationId> {
    raw.filter(|s| !s.is_empty()).and_then(LocationId::parse)
}
pub fn opt_visit_type(raw: Option<&str>) -> Option<VisitTypeId> {
    raw.filter(|s| !s.is_empty()).and_then(VisitTypeId::parse)
}

/// The HTTP status a booking error answers with on a page.
pub fn status_of(e: &AppointmentError) -> StatusCode {
    match e {
        AppointmentError::NotFound => StatusCode::NOT_FOUND,
        AppointmentError::Taken
        | AppointmentError::NotChangeable(_)
        | AppointmentError::PastCutoff { .. }
        | AppointmentError::TooEarly(_) => StatusCode::CONFLICT,
        _ if e.is_internal() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// An error as a sentence for people: a capital letter first, a full stop last.
pub fn sentence(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    let mut c = s.chars();
    let mut out: String = c
        .next()
        .map(|f| f.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(c.as_str());
    if !out.is_empty() && !out.ends_with('.') {
        out.push('.');
    }
    out
}
