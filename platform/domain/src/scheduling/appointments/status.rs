//! What the front desk records on the day: arrival (check-in), a missed visit (no-show), and
//! the end of the visit.

use chrono::{DateTime, Duration, Utc};
use portal_tenants::TenantTx;

use super::{Actor, Appointment, AppointmentError, AppointmentStatus, load};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::SchedulingScope;
use crate::ids::AppointmentId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffAction {
    CheckIn,
    NoShow,
    Complete,
}

impl StaffAction {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "check-in" | "check_in" => Some(Self::CheckIn),
            "no-show" | "no_show" => Some(Self::NoShow),
            "complete" => Some(Self::Complete),
            _ => None,
        }
    }
    fn audit_action(self) -> Action {
        match self {
            Self::CheckIn => Action::AppointmentCheckIn,
            Self::NoShow => Action::AppointmentNoShow,
            Self::Complete => Action::AppointmentComplete,
        }
    }
}

/// Check-in opens this long before the visit.
pub const CHECK_IN_OPENS: Duration = Duration::hours(2);

/// Applies a status action. Check-in needs a booked visit from two hours before its start;
/// no-show a booked visit that has started; complete a checked-in one.
pub async fn mark(
    tx: &mut TenantTx,
    staff: &SchedulingScope,
    ctx: &AuditContext,
    id: AppointmentId,
    action: StaffAction,
    now: DateTime<Utc>,
) -> Result<Appointment, AppointmentError> {
    let actor = Actor::Staff(staff);
    let appt = load(tx, actor, id)
        .await?
        .ok_or(AppointmentError::NotFound)?;
    let (from, to) = match action {
        StaffAction::CheckIn => (AppointmentStatus::Booked, AppointmentStatus::CheckedIn),
        StaffAction::NoShow => (AppointmentStatus::Booked, AppointmentStatus::NoShow),
        StaffAction::Complete => (AppointmentStatus::CheckedIn, AppointmentStatus::Completed),
    };
    if appt.status != from {
        return Err(AppointmentError::NotChangeable(appt.status.label_lower()));
    }
    let too_early = match action {
        StaffAction::CheckIn => now < appt.starts_at - CHECK_IN_OPENS,
        StaffAction::NoShow => now < appt.starts_at,
        StaffAction::Complete => false,
    };
    if too_early {
        return Err(AppointmentError::TooEarly(match action {
            StaffAction::CheckIn => "check-in opens two hours before the visit",
            _ => "a visit can only be marked as missed once it has started",
        }));
    }
    let changed = sqlx::query!(
        "UPDATE appointments SET status = $2, change_seq = nextval('appointment_changes'),
                updated_at = $3
         WHERE id = $1 AND status = $4",
        id.as_uuid(),
        to.as_str(),
        now,
        from.as_str()
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    // Someone else changed it between the read and the write: say so, record nothing.
    if changed == 0 {
        let now_status = load(tx, actor, id).await?.map(|a| a.status);
        return Err(now_status.map_or(AppointmentError::NotFound, |s| {
            AppointmentError::NotChangeable(s.label_lower())
        }));
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(action.audit_action(), "appointment")
            .resource(id)
            .patient(appt.patient_id),
    )
    .await?;
    load(tx, actor, id).await?.ok_or(AppointmentError::NotFound)
}

/// How long before a visit a patient may say they have arrived. Shorter than the front desk's
/// window: a self check-in is taken on trust, and once checked in a visit can no longer be
/// marked as missed, so a tap from home hours ahead must not be possible.
pub const SELF_CHECK_IN_OPENS: Duration = Duration::minutes(30);

/// A patient says they have arrived ("I'm here"), from half an hour before the visit until it
/// ends. Only their own booked, in-person visit; anything else
/// answers as missing or not changeable, exactly as for staff.
pub async fn patient_arrived(
    tx: &mut TenantTx,
    me: &crate::identity::scope::PatientScope,
    ctx: &AuditContext,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<Appointment, AppointmentError> {
    let actor = Actor::Patient(me);
    let appt = load(tx, actor, id)
        .await?
        .ok_or(AppointmentError::NotFound)?;
    if appt.status != AppointmentStatus::Booked || appt.video_url.is_some() {
        return Err(AppointmentError::NotChangeable(appt.status.label_lower()));
    }
    if !self_check_in_open(appt.starts_at, appt.ends_at, now) {
        return Err(AppointmentError::TooEarly(
            "you can check in from half an hour before the visit",
        ));
    }
    let changed = sqlx::query!(
        "UPDATE appointments SET status = 'checked_in',
                change_seq = nextval('appointment_changes'), updated_at = $2
         WHERE id = $1 AND status = 'booked'",
        id.as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if changed == 0 {
        let now_status = load(tx, actor, id).await?.map(|a| a.status);
        return Err(now_status.map_or(AppointmentError::NotFound, |s| {
            AppointmentError::NotChangeable(s.label_lower())
        }));
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AppointmentCheckIn, "appointment")
            .resource(id)
            .patient(appt.patient_id),
    )
    .await?;
    load(tx, actor, id).await?.ok_or(AppointmentError::NotFound)
}

/// Whether the front desk may check a visit over `[starts, ends)` in at `now`.
pub fn check_in_open(starts: DateTime<Utc>, ends: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= starts - CHECK_IN_OPENS && now < ends
}

/// Whether the patient may check themselves in at `now` ([`SELF_CHECK_IN_OPENS`]).
pub fn self_check_in_open(starts: DateTime<Utc>, ends: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= starts - SELF_CHECK_IN_OPENS && now < ends
}
