//! Scheduling: the clinic's set-up (locations, providers, visit types, weekly hours, time off,
//! booking rules), open-slot search, and appointments (book, move, cancel, check in, no-show).
//! PostgreSQL has the last word on double booking (an exclusion constraint per provider), so
//! two people racing for one time get one success and one [`AppointmentError::Taken`].

pub mod appointments;
pub mod calendar;
pub mod preferences;
pub mod reminders;
pub mod search;
pub mod setup;
pub mod slots;
pub mod waitlist;

pub use appointments::{Appointment, AppointmentError, AppointmentStatus};
pub use setup::{BookingRules, Location, Modality, Provider, SetupError, VisitType, Window};

/// The clinic's time zone (validated when the clinic was created; UTC if it ever is not).
pub fn clinic_tz(tenant: &portal_tenants::Tenant) -> chrono_tz::Tz {
    tenant.time_zone().parse().unwrap_or(chrono_tz::UTC)
}

/// How a time reads to people in the clinic's zone, with the zone named, e.g.
/// "Tue 3 Dec 2026, 9:30 AM EST".
pub fn local_label(at: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %-d %b %Y, %-I:%M %p %Z")
        .to_string()
}

/// The time of day alone ("9:30 AM"), for schedule grids under a dated heading.
pub fn local_time_label(at: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%-I:%M %p").to_string()
}
