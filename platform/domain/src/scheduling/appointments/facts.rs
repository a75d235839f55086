//! What a booking or a move is judged on, read in one statement, and the time rules checked
//! against it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::{Actor, AppointmentError};
use crate::ids::{AppointmentId, AvailabilityId, LocationId, PatientId, ProviderId, VisitTypeId};
use crate::jobs::{AppointmentChange, Job};
use crate::scheduling::reminders::{self, ReminderRules};
use crate::scheduling::setup::{Audience, BookingRules, Modality, VisitType, Window};
use crate::scheduling::slots::{Span, open_slots};

/// Where and when a visit would be: what booking and moving are judged on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub visit_type: VisitTypeId,
    pub provider: ProviderId,
    pub location: LocationId,
    pub starts_at: DateTime<Utc>,
}

/// Everything a booking or a move is judged by, read in one round trip: the patient, the
/// visit type, the clinic's rules, whether the provider and location are active and offer the
/// visit, whether time off covers the time, and the provider's weekly hours at the location.
/// Whether the time is still free is left to the write, where the exclusion constraint decides.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub patient_known: bool,
    /// The patient has had or has a visit here that was not cancelled ("established").
    pub patient_seen: bool,
    pub visit_type: Option<VisitType>,
    pub rules: BookingRules,
    pub reminders: ReminderRules,
    provider_active: bool,
    location_active: bool,
    offered: bool,
    closed: bool,
    windows: Vec<Window>,
}

impl Facts {
    /// `moving` is the visit being moved, if any: it does not count as the patient having been
    /// seen (a new patient moving their first visit is still new).
    pub(crate) async fn read(
        tx: &mut TenantTx,
        patient: PatientId,
        place: &Place,
        moving: Option<AppointmentId>,
    ) -> Result<Self, sqlx::Error> {
        // Hold the provider, location and visit type still until this booking commits: a
        // removal (`setup::changes`, which takes them FOR UPDATE) then waits and sees the new
        // visit, or has already committed and this read sees them retired.
        sqlx::query_scalar!(
            r#"WITH p AS (SELECT id FROM providers WHERE id = $1 FOR SHARE),
                    l AS (SELECT id FROM locations WHERE id = $2 FOR SHARE),
                    v AS (SELECT id FROM visit_types WHERE id = $3 FOR SHARE)
               SELECT (SELECT count(*) FROM p) + (SELECT count(*) FROM l)
                      + (SELECT count(*) FROM v) AS "n!""#,
            place.provider.as_uuid(),
            place.location.as_uuid(),
            place.visit_type.as_uuid()
        )
        .fetch_one(tx.conn())
        .await?;
        // One row per weekly window of the provider at the location (or one row with no window).
        // The uncorrelated EXISTS run once per statement, not per row.
        let rows = sqlx::query!(
            r#"SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1) AS "patient_known!",
                      EXISTS (SELECT 1 FROM appointments WHERE patient_id = $1
                              AND status IN ('booked', 'checked_in', 'completed', 'no_show')
                              AND id IS DISTINCT FROM $6)
                          AS "patient_seen!",
                      EXISTS (SELECT 1 FROM providers WHERE id = $3 AND active)
                          AS "provider_active!",
                      EXISTS (SELECT 1 FROM locations WHERE id = $4 AND active)
                          AS "location_active!",
                      EXISTS (SELECT 1 FROM provider_visit_types
                              WHERE provider_id = $3 AND visit_type_id = $2) AS "offered!",
                      EXISTS (SELECT 1 FROM availability_exceptions x
                              WHERE x.starts_at < $5::timestamptz + make_interval(mins => vt.duration_minutes)
                                AND x.ends_at > $5
                                AND (x.provider_id IS NULL OR x.provider_id = $3)
                                AND (x.location_id IS NULL OR x.location_id = $4)) AS "closed!",
                      r.min_notice_minutes, r.horizon_days, r.cancel_cutoff_hours,
                      r.reminder_hours, r.reminder_email, r.reminder_sms,
                      vt.id AS "vt_id?", vt.name AS "vt_name?",
                      vt.duration_minutes AS "vt_duration_minutes?",
                      vt.self_bookable AS "vt_self_bookable?", vt.audience AS "vt_audience?",
                      vt.modality AS "vt_modality?", vt.video_base_url AS "vt_video_base_url?",
                      w.id AS "w_id?", w.weekday AS "w_weekday?",
                      w.start_minute AS "w_start_minute?", w.end_minute AS "w_end_minute?"
               FROM booking_rules r
               LEFT JOIN visit_types vt ON vt.id = $2 AND vt.active
               LEFT JOIN availability w ON w.provider_id = $3 AND w.location_id = $4"#,
            patient.as_uuid(),
            place.visit_type.as_uuid(),
            place.provider.as_uuid(),
            place.location.as_uuid(),
            place.starts_at,
            moving.map(|m| m.as_uuid()),
        )
        .fetch_all(tx.conn())
        .await?;
        let Some(first) = rows.first() else {
            return Err(sqlx::Error::RowNotFound);
        };
        let visit_type = match (
            first.vt_id,
            &first.vt_name,
            first.vt_duration_minutes,
            first.vt_self_bookable,
            &first.vt_audience,
            &first.vt_modality,
        ) {
            (Some(id), Some(name), Some(minutes), Some(self_bookable), Some(aud), Some(m)) => {
                Some(VisitType {
                    id: VisitTypeId::from_uuid(id),
                    name: name.clone(),
                    duration_minutes: minutes,
                    self_bookable,
                    audience: Audience::parse(aud).unwrap_or(Audience::Any),
                    modality: Modality::parse(m).unwrap_or(Modality::InPerson),
                    video_base_url: first.vt_video_base_url.clone(),
                })
            }
            _ => None,
        };
        let windows = rows
            .iter()
            .filter_map(|r| {
                Some(Window {
                    id: AvailabilityId::from_uuid(r.w_id?),
                    provider_id: place.provider,
                    location_id: place.location,
                    weekday: u8::try_from(r.w_weekday?).ok()?,
                    start_minute: u16::try_from(r.w_start_minute?).ok()?,
                    end_minute: u16::try_from(r.w_end_minute?).ok()?,
                })
            })
            .collect();
        Ok(Self {
            patient_known: first.patient_known,
            patient_seen: first.patient_seen,
            visit_type,
            rules: BookingRules {
                min_notice_minutes: first.min_notice_minutes,
                horizon_days: first.horizon_days,
                cancel_cutoff_hours: first.cancel_cutoff_hours,
            },
            reminders: ReminderRules {
                hours: first.reminder_hours.clone(),
                email: first.reminder_email,
                sms: first.reminder_sms,
            },
            provider_active: first.provider_active,
            location_active: first.location_active,
            offered: first.offered,
            closed: first.closed,
            windows,
        })
    }

    /// Whether a patient may book (or move) a visit of type `vt` themself: the type must be
    /// self-bookable and meant for them (new or established). Staff are not bound by these.
    pub(crate) fn check_patient_may_book(
        &self,
        actor: Actor<'_>,
        vt: &VisitType,
    ) -> Result<(), AppointmentError> {
        if !actor.is_patient() {
            return Ok(());
        }
        if !vt.self_bookable {
            return Err(AppointmentError::NotSelfBookable);
        }
        match (vt.audience, self.patient_seen) {
            (Audience::New, true) => Err(AppointmentError::ForNewPatients),
            (Audience::Established, false) => Err(AppointmentError::ForEstablishedPatients),
            _ => Ok(()),
        }
    }

    /// Whether the place's time is a bookable start for `vt`: provider, location and offer
    /// known, in the future, within the patient's notice and horizon (staff are not bound by
    /// those), on the provider's weekly grid and outside time off.
    pub(crate) fn check_time(
        &self,
        actor: Actor<'_>,
        vt: &VisitType,
        place: &Place,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<(), AppointmentError> {
        if !self.provider_active {
            return Err(AppointmentError::UnknownProvider);
        }
        if !self.location_active {
            return Err(AppointmentError::UnknownLocation);
        }
        if !self.offered {
            return Err(AppointmentError::NotOffered);
        }
        let starts_at = place.starts_at;
        if starts_at <= now {
            return Err(AppointmentError::InPast);
        }
        if actor.is_patient() {
            if starts_at < now + self.rules.min_notice() {
                return Err(AppointmentError::TooSoon {
                    minutes: self.rules.min_notice_minutes,
                });
            }
            if starts_at > now + self.rules.horizon() {
                return Err(AppointmentError::BeyondHorizon {
                    days: self.rules.horizon_days,
                });
            }
        }
        if self.closed {
            return Err(AppointmentError::OutsideAvailability);
        }
        let date = starts_at.with_timezone(&tz).date_naive();
        let on_grid = open_slots(
            tz,
            &self.windows,
            &[],
            vt.duration(),
            Span {
                from: date,
                to: date,
                earliest: starts_at,
                latest: starts_at,
            },
        )
        .iter()
        .any(|s| s.starts_at == starts_at);
        if !on_grid {
            return Err(AppointmentError::OutsideAvailability);
        }
        Ok(())
    }
}

/// The jobs a booking or a move queues with itself: the patient's notice now, and every
/// reminder the clinic's rules (read with the facts) call for at the visit's new time.
pub(crate) fn notice_and_reminders(
    facts: &Facts,
    id: AppointmentId,
    version: i32,
    change: AppointmentChange,
    starts_at: DateTime<Utc>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<(Job, Option<DateTime<Utc>>)> {
    let notice = Job::AppointmentNotice {
        appointment_id: id,
        version,
        change,
    };
    let mut jobs = vec![(notice, None)];
    jobs.extend(reminders::plan(
        &facts.reminders,
        id,
        version,
        starts_at,
        tz,
        now,
    ));
    jobs
}
