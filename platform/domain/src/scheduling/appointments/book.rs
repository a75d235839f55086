//! Booking. Every rule is checked before the insert; the insert itself is the final judge of
//! "is this time still free" (the exclusion constraint), so a race ends in [`AppointmentError::Taken`]
//! for all but one, never in a double booking.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::facts::{Facts, Place, notice_and_reminders};
use super::{Actor, Appointment, AppointmentError, AppointmentRow};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{PatientScope, SchedulingScope};
use crate::identity::tokens::SecretToken;
use crate::ids::{AppointmentId, LocationId, PatientId, ProviderId, VisitTypeId};
use crate::jobs::{self, AppointmentChange};
use crate::scheduling::setup::Modality;

/// For whom a visit is booked: a patient for themself, or staff for any patient of the clinic.
#[derive(Debug, Clone, Copy)]
pub enum BookFor<'a> {
    Patient(&'a PatientScope),
    Staff(&'a SchedulingScope, PatientId),
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
    let place = Place {
        visit_type: req.visit_type_id,
        provider: req.provider_id,
        location: req.location_id,
        starts_at: req.starts_at,
    };
    let facts = Facts::read(tx, patient, &place, None).await?;
    if !facts.patient_known {
        return Err(AppointmentError::UnknownPatient);
    }
    let vt = facts
        .visit_type
        .as_ref()
        .ok_or(AppointmentError::UnknownVisitType)?;
    facts.check_patient_may_book(actor, vt)?;
    facts.check_time(actor, vt, &place, tz, now)?;
    let id = AppointmentId::new();
    let video_room =
        (vt.modality == Modality::Video).then(|| SecretToken::generate().expose().to_owned());
    // The INSERT hands back the appointment as every read shows it, names joined in: no
    // second query to answer the caller.
    let row = sqlx::query_as!(
        AppointmentRow,
        r#"WITH a AS (
               INSERT INTO appointments (id, patient_id, provider_id, location_id, visit_type_id,
                                         starts_at, ends_at, status, reason, video_room, booked_by,
                                         created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'booked', $8, $9, $10, $11, $11)
               RETURNING id, patient_id, provider_id, location_id, visit_type_id, video_room,
                         starts_at, ends_at, status, reason, version, confirmed_at)
           SELECT a.id AS "id!", a.patient_id AS "patient_id!",
                  p.given_name || ' ' || p.family_name AS "patient_name!",
                  a.provider_id AS "provider_id!", pr.display_name AS "provider_name!",
                  a.location_id AS "location_id!", l.name AS "location_name!",
                  l.address AS "location_address!",
                  a.visit_type_id AS "visit_type_id!", v.name AS "visit_type_name!",
                  v.modality AS "modality!", v.video_base_url AS "video_base_url?",
                  a.video_room AS "video_room?", a.starts_at AS "starts_at!",
                  a.ends_at AS "ends_at!", a.status AS "status!", a.reason AS "reason?",
                  a.version AS "version!", a.confirmed_at AS "confirmed_at?"
           FROM a
           JOIN patients p ON p.id = a.patient_id
           JOIN providers pr ON pr.id = a.provider_id
           JOIN locations l ON l.id = a.location_id
           JOIN visit_types v ON v.id = a.visit_type_id"#,
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
    .fetch_one(tx.conn())
    .await
    .map_err(AppointmentError::from_write)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AppointmentBook, "appointment")
            .resource(id)
            .patient(patient),
    )
    .await?;
    let jobs = notice_and_reminders(
        &facts,
        id,
        1,
        AppointmentChange::Booked,
        req.starts_at,
        tz,
        now,
    );
    jobs::enqueue_many(tx, &jobs).await?;
    Ok(Appointment::from(row))
}
