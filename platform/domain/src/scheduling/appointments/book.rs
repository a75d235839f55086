//! Booking. Every rule is checked before the insert; the insert itself is the final judge of
//! "is this time still free" (the exclusion constraint), so a race ends in [`AppointmentError::Taken`]
//! for all but one, never in a double booking.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::{Actor, Appointment, AppointmentError, load};
use crate::audit::{self, AuditContext, AuditEvent};
use crate::identity::scope::{PatientScope, StaffScope};
use crate::identity::tokens::SecretToken;
use crate::ids::{AppointmentId, LocationId, PatientId, ProviderId, VisitTypeId};
use crate::jobs::{self, AppointmentChange, Job};
use crate::scheduling::reminders;
use crate::scheduling::setup::{self, Audience, BookingRules, Modality, VisitType};
use crate::scheduling::slots::{Busy, Span, open_slots};

/// For whom a visit is booked: a patient for themself, or staff for any patient of the clinic.
#[derive(Debug, Clone, Copy)]
pub enum BookFor<'a> {
    Patient(&'a PatientScope),
    Staff(&'a StaffScope, PatientId),
}

#[derive(Debug, Clone)]
pub struct BookRequest {
    pub visit_type_id: VisitTypeId,
    pub provider_id: ProviderId,
    pub location_id: LocationId,
    pub starts_at: DateTime<Utc>,
    /// What the patient wants to be seen for; stays inside the portal.
    pub reason: Option<String>,
}

pub async fn book(
    tx: &mut TenantTx,
    who: BookFor<'_>,
    ctx: &AuditContext,
    req: &BookRequest,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Appointment, AppointmentError> {
    let (actor, patient) = match who {
        BookFor::Patient(p) => (Actor::Patient(p), p.patient_id()),
        BookFor::Staff(s, patient) => (Actor::Staff(s), patient),
    };
    let reason = match req.reason.as_deref().map(str::trim) {
        Some(r) if r.chars().count() > 1000 => return Err(AppointmentError::ReasonTooLong),
        Some("") | None => None,
        Some(r) => Some(r.to_owned()),
    };
    if !sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1) AS "e!""#,
        patient.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?
    {
        return Err(AppointmentError::UnknownPatient);
    }
    let vt = setup::visit_type(tx, req.visit_type_id)
        .await?
        .ok_or(AppointmentError::UnknownVisitType)?;
    if actor.is_patient() {
        if !vt.self_bookable {
            return Err(AppointmentError::NotSelfBookable);
        }
        check_audience(tx, &vt, patient).await?;
    }
    let rules = setup::rules(tx).await?;
    check_time(
        tx,
        actor,
        &vt,
        &rules,
        req.provider_id,
        req.location_id,
        req.starts_at,
        tz,
        now,
    )
    .await?;
    let id = AppointmentId::new();
    let video_room =
        (vt.modality == Modality::Video).then(|| SecretToken::generate().expose().to_owned());
    sqlx::query!(
        "INSERT INTO appointments (id, patient_id, provider_id, location_id, visit_type_id,
                                   starts_at, ends_at, status, reason, video_room, booked_by,
                                   created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'booked', $8, $9, $10, $11, $11)",
        id.as_uuid(),
        patient.as_uuid(),
        req.provider_id.as_uuid(),
        req.location_id.as_uuid(),
        vt.id.as_uuid(),
        req.starts_at,
        req.starts_at + vt.duration(),
        reason,
        video_room,
        actor.user_id().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await
    .map_err(AppointmentError::from_write)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new("appointment.book", "appointment")
            .resource(id)
            .patient(patient),
    )
    .await?;
    jobs::enqueue(
        tx,
        &Job::AppointmentNotice {
            appointment_id: id,
            version: 1,
            change: AppointmentChange::Booked,
        },
    )
    .await?;
    reminders::schedule(tx, id, 1, req.starts_at, tz, now).await?;
    // Read back without a second audit row: the booking's own row covers it.
    load(tx, actor, id).await?.ok_or(AppointmentError::NotFound)
}

/// New and established patients: "established" means at least one earlier visit here that was
/// not cancelled.
async fn check_audience(
    tx: &mut TenantTx,
    vt: &VisitType,
    patient: PatientId,
) -> Result<(), AppointmentError> {
    if vt.audience == Audience::Any {
        return Ok(());
    }
    let seen = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM appointments WHERE patient_id = $1
                          AND status IN ('booked', 'checked_in', 'completed', 'no_show')) AS "e!""#,
        patient.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    match (vt.audience, seen) {
        (Audience::New, true) => Err(AppointmentError::ForNewPatients),
        (Audience::Established, false) => Err(AppointmentError::ForEstablishedPatients),
        _ => Ok(()),
    }
}

/// Whether `starts_at` is a bookable start for this visit type with this provider at this
/// location: in the future, within the patient's notice and horizon (staff are not bound by
/// those), on the provider's weekly grid and outside time off. Whether it is still free is left
/// to the write, where the exclusion constraint decides.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn check_time(
    tx: &mut TenantTx,
    actor: Actor<'_>,
    vt: &VisitType,
    rules: &BookingRules,
    provider: ProviderId,
    location: LocationId,
    starts_at: DateTime<Utc>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<(), AppointmentError> {
    let offered = sqlx::query!(
        r#"SELECT (EXISTS (SELECT 1 FROM providers WHERE id = $1 AND active)) AS "provider!",
                  (EXISTS (SELECT 1 FROM locations WHERE id = $2 AND active)) AS "location!",
                  (EXISTS (SELECT 1 FROM provider_visit_types WHERE provider_id = $1
                           AND visit_type_id = $3)) AS "offered!""#,
        provider.as_uuid(),
        location.as_uuid(),
        vt.id.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if !offered.provider {
        return Err(AppointmentError::UnknownProvider);
    }
    if !offered.location {
        return Err(AppointmentError::UnknownLocation);
    }
    if !offered.offered {
        return Err(AppointmentError::NotOffered);
    }
    if starts_at <= now {
        return Err(AppointmentError::InPast);
    }
    if actor.is_patient() {
        if starts_at < now + rules.min_notice() {
            return Err(AppointmentError::TooSoon {
                minutes: rules.min_notice_minutes,
            });
        }
        if starts_at > now + rules.horizon() {
            return Err(AppointmentError::BeyondHorizon {
                days: rules.horizon_days,
            });
        }
    }
    let ends_at = starts_at + vt.duration();
    let windows: Vec<_> = setup::windows(tx, Some(provider))
        .await?
        .into_iter()
        .filter(|w| w.location_id == location)
        .collect();
    let closed: Vec<Busy> = setup::time_off(tx, starts_at, ends_at)
        .await?
        .into_iter()
        .map(|t| Busy {
            provider_id: t.provider_id,
            location_id: t.location_id,
            starts_at: t.starts_at,
            ends_at: t.ends_at,
        })
        .collect();
    let date = starts_at.with_timezone(&tz).date_naive();
    let on_grid = open_slots(
        tz,
        &windows,
        &closed,
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
