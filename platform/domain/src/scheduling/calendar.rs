//! Calendar files (`.ics`, RFC 5545) for a visit: the clinic's name, the time, the place and
//! the video link — never the reason for the visit. The appointment id is the event's UID and
//! its version the SEQUENCE, so calendar apps update a moved visit in place and drop a
//! cancelled one.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus};

use super::appointments::{Appointment, AppointmentStatus};

/// The calendar file of `appt` at `clinic` (`host` makes the UID globally unique). `contact`
/// says how to reach the clinic to change the visit (`ClinicProfile::call_us`).
pub fn ics(
    appt: &Appointment,
    clinic: &str,
    contact: &str,
    host: &str,
    now: DateTime<Utc>,
) -> String {
    let cancelled = appt.status == AppointmentStatus::Cancelled;
    let mut event = Event::new();
    event
        .uid(&format!("{}@{host}", appt.id))
        .timestamp(now)
        .sequence(u32::try_from(appt.version).unwrap_or(0))
        .summary(&format!("Visit at {clinic}"))
        .starts(appt.starts_at)
        .ends(appt.ends_at)
        .status(if cancelled {
            EventStatus::Cancelled
        } else {
            EventStatus::Confirmed
        });
    match &appt.video_url {
        Some(url) => {
            event
                .location("Video visit")
                .description(&format!(
                    "Join the video visit: {url}\n\nTo change this visit: {contact}"
                ))
                .url(url);
        }
        None => {
            let place = if appt.location_address.is_empty() {
                appt.location_name.clone()
            } else {
                format!("{}, {}", appt.location_name, appt.location_address)
            };
            event
                .location(&place)
                .description(&format!("To change this visit: {contact}"));
        }
    }
    let mut cal = Calendar::new();
    cal.append_property(("METHOD", if cancelled { "CANCEL" } else { "PUBLISH" }));
    cal.push(event.done());
    cal.done().to_string()
}
