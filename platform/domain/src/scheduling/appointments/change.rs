//! Moving and cancelling. Patients may do either only for their own booked visits and not
//! after the clinic's cut-off; staff may do either at any time before the visit. A move keeps
//! the appointment's id and bumps its version, so work queued for the old time goes stale.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::facts::{Facts, Place, notice_and_reminders};
use super::{Actor, Appointment, AppointmentError, AppointmentStatus, load};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::ids::{AppointmentId, LocationId, ProviderId};
use crate::jobs::{self, AppointmentChange, Job};
use crate::scheduling::setup::{self, BookingRules};
use crate::scheduling::waitlist;

/// Where and when a visit moves to. Provider and location may change; the visit type not.
#[derive(Debug, Clone, Copy)]
pub struct NewTime {
    pub provider_id: ProviderId,
    pub location_id: LocationId,
    pub starts_at: DateTime<Utc>,
}

/// Loads the appointment for a change: it must exist (for this actor), still be booked and,
/// for patients, be outside the cut-off.
async fn changeable(
    tx: &mut TenantTx,
    actor: Actor<'_>,
    id: AppointmentId,
) -> Result<Appointment, AppointmentError> {
    let appt = load(tx, actor, id)
        .await?
        .ok_or(AppointmentError::NotFound)?;
    if appt.status != AppointmentStatus::Booked {
        return Err(AppointmentError::NotChangeable(appt.status.label_lower()));
    }
    Ok(appt)
}

/// The clinic's cut-off and the visit's own time: patients may not change a visit inside the
/// cut-off, nobody one that already began.
fn check_cutoff(
    actor: Actor<'_>,
    appt: &Appointment,
    rules: &BookingRules,
    now: DateTime<Utc>,
) -> Result<(), AppointmentError> {
    if appt.starts_at <= now {
        return Err(AppointmentError::NotChangeable("in the past"));
    }
    if actor.is_patient() && appt.starts_at - rules.cancel_cutoff() < now {
        return Err(AppointmentError::PastCutoff {
            hours: rules.cancel_cutoff_hours,
        });
    }
    Ok(())
}

pub async fn reschedule(
    tx: &mut TenantTx,
    actor: Actor<'_>,
    ctx: &AuditContext,
    id: AppointmentId,
    to: NewTime,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Appointment, AppointmentError> {
    let appt = changeable(tx, actor, id).await?;
    let place = Place {
        visit_type: appt.visit_type_id,
        provider: to.provider_id,
        location: to.location_id,
        starts_at: to.starts_at,
    };
    let facts = Facts::read(tx, appt.patient_id, &place, Some(id)).await?;
    check_cutoff(actor, &appt, &facts.rules, now)?;
    let vt = facts
        .visit_type
        .as_ref()
        .ok_or(AppointmentError::UnknownVisitType)?;
    // A patient may move only a visit they could have booked themself.
    facts.check_patient_may_book(actor, vt)?;
    facts.check_time(actor, vt, &place, tz, now)?;
    let version = sqlx::query_scalar!(
        "UPDATE appointments SET provider_id = $2, location_id = $3, starts_at = $4, ends_at = $5,
                version = version + 1, change_seq = nextval('appointment_changes'), updated_at = $6
         WHERE id = $1 AND status = 'booked' RETURNING version",
        id.as_uuid(),
        to.provider_id.as_uuid(),
        to.location_id.as_uuid(),
        to.starts_at,
        to.starts_at + vt.duration(),
        now
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(AppointmentError::from_write)?
    .ok_or(AppointmentError::NotFound)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AppointmentReschedule, "appointment")
            .resource(id)
            .patient(appt.patient_id),
    )
    .await?;
    let jobs = notice_and_reminders(
        &facts,
        id,
        version,
        AppointmentChange::Moved,
        to.starts_at,
        tz,
        now,
    );
    jobs::enqueue_many(tx, &jobs).await?;
    // The time it left is free now: offer it to patients waiting for an earlier one.
    waitlist::offer_freed(tx, ctx, &appt, &facts.rules, now).await?;
    load(tx, actor, id).await?.ok_or(AppointmentError::NotFound)
}

pub async fn cancel(
    tx: &mut TenantTx,
    actor: Actor<'_>,
    ctx: &AuditContext,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<Appointment, AppointmentError> {
    let rules = setup::rules(tx).await?;
    let appt = changeable(tx, actor, id).await?;
    check_cutoff(actor, &appt, &rules, now)?;
    let version = sqlx::query_scalar!(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = $2, cancelled_by = $3,
                change_seq = nextval('appointment_changes'), updated_at = $2
         WHERE id = $1 AND status = 'booked' RETURNING version",
        id.as_uuid(),
        now,
        actor.user_id().as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(AppointmentError::NotFound)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AppointmentCancel, "appointment")
            .resource(id)
            .patient(appt.patient_id),
    )
    .await?;
    jobs::enqueue(
        tx,
        &Job::AppointmentNotice {
            appointment_id: id,
            version,
            change: AppointmentChange::Cancelled,
        },
    )
    .await?;
    // The cancelled visit's own place on the waitlist ends with it; its time goes to others.
    waitlist::leave_with(tx, id).await?;
    waitlist::offer_freed(tx, ctx, &appt, &rules, now).await?;
    load(tx, actor, id).await?.ok_or(AppointmentError::NotFound)
}
