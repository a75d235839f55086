//! The earlier-slot waitlist. A patient puts a booked visit on the list; when a visit of the
//! same kind is cancelled, every waiting patient whose visit is later than the freed time (and
//! who could still book it) is offered it. Accepting moves their visit there through
//! [`reschedule`], so the no-double-booking constraint lets exactly one accept win; the rest
//! learn the time was taken.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::appointments::{Actor, Appointment, AppointmentError, AppointmentStatus, NewTime};
use super::appointments::{load, reschedule};
use super::setup::BookingRules;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::PatientScope;
use crate::ids::{AppointmentId, LocationId, OfferId, PatientId, ProviderId};
use crate::jobs::{self, Channel, Job};

/// At most this many patients are offered one freed time (first come, first offered).
pub const OFFERS_PER_SLOT: i64 = 10;

/// An open offer, as the patient sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Offer {
    pub id: OfferId,
    pub appointment_id: AppointmentId,
    pub provider_id: ProviderId,
    pub provider_name: String,
    pub location_id: LocationId,
    pub starts_at: DateTime<Utc>,
}

/// Puts the patient's booked, future visit on the waitlist (again, if it was before).
pub async fn join(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<(), AppointmentError> {
    let a = load(tx, Actor::Patient(me), id)
        .await?
        .ok_or(AppointmentError::NotFound)?;
    if a.status != AppointmentStatus::Booked || a.starts_at <= now {
        return Err(AppointmentError::NotChangeable(a.status.label_lower()));
    }
    sqlx::query!(
        "INSERT INTO waitlist_entries (id, appointment_id, patient_id, created_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (appointment_id) DO UPDATE SET active = true",
        uuid::Uuid::now_v7(),
        id.as_uuid(),
        me.patient_id().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::WaitlistJoin, "appointment")
            .resource(id)
            .patient(me.patient_id()),
    )
    .await?;
    Ok(())
}

/// Takes the visit off the waitlist.
pub async fn leave(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<(), AppointmentError> {
    let n = sqlx::query!(
        "UPDATE waitlist_entries SET active = false WHERE appointment_id = $1 AND patient_id = $2",
        id.as_uuid(),
        me.patient_id().as_uuid()
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppointmentError::NotFound);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::WaitlistLeave, "appointment")
            .resource(id)
            .patient(me.patient_id()),
    )
    .await?;
    Ok(())
}

/// Whether the patient's visit is on the waitlist.
pub async fn is_waiting(
    tx: &mut TenantTx,
    me: &PatientScope,
    id: AppointmentId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM waitlist_entries
                          WHERE appointment_id = $1 AND patient_id = $2 AND active) AS "e!""#,
        id.as_uuid(),
        me.patient_id().as_uuid()
    )
    .fetch_one(tx.conn())
    .await
}

/// Ends a cancelled visit's place on the waitlist.
pub(crate) async fn leave_with(tx: &mut TenantTx, id: AppointmentId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE waitlist_entries SET active = false WHERE appointment_id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Offers the time `freed` (a visit just cancelled or moved away from it) to waiting patients:
/// same visit type, a later visit (not `freed` itself), and the time still at least the
/// clinic's notice away. Called inside the change's transaction, so offers exist only if the
/// change commits.
pub(crate) async fn offer_freed(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    freed: &Appointment,
    rules: &BookingRules,
    now: DateTime<Utc>,
) -> Result<usize, AppointmentError> {
    if freed.starts_at < now + rules.min_notice() {
        return Ok(0);
    }
    let offers = sqlx::query!(
        r#"WITH o AS (
               INSERT INTO waitlist_offers (id, entry_id, provider_id, location_id, starts_at,
                                            status, created_at)
               SELECT gen_random_uuid(), w.id, $2, $3, $4, 'open', $5
               FROM waitlist_entries w JOIN appointments a ON a.id = w.appointment_id
               WHERE w.active AND a.status = 'booked' AND a.visit_type_id = $1
                 AND a.starts_at > $4 AND a.id <> $6
               ORDER BY w.created_at
               LIMIT $7
               RETURNING id, entry_id)
           SELECT o.id AS "id!", w.patient_id AS "patient_id!"
           FROM o JOIN waitlist_entries w ON w.id = o.entry_id"#,
        freed.visit_type_id.as_uuid(),
        freed.provider_id.as_uuid(),
        freed.location_id.as_uuid(),
        freed.starts_at,
        now,
        freed.id.as_uuid(),
        OFFERS_PER_SLOT
    )
    .fetch_all(tx.conn())
    .await?;
    // Each offer is a write about another patient: it gets its own audit row, made by the
    // clinic automatically — never under the name of whoever freed the time.
    let automatic = ctx.automatic();
    for o in &offers {
        audit::record(
            tx,
            &automatic,
            now,
            AuditEvent::new(Action::WaitlistOfferMade, "waitlist_offer")
                .resource(OfferId::from_uuid(o.id))
                .patient(PatientId::from_uuid(o.patient_id)),
        )
        .await?;
    }
    let jobs: Vec<_> = offers
        .iter()
        .flat_map(|o| {
            let offer_id = OfferId::from_uuid(o.id);
            [Channel::Email, Channel::Sms].map(|channel| {
                (
                    Job::WaitlistOffer {
                        offer_id,
                        channel: Some(channel),
                    },
                    None,
                )
            })
        })
        .collect();
    jobs::enqueue_many(tx, &jobs).await?;
    Ok(offers.len())
}

/// The patient's open offers whose time is still ahead (audited).
pub async fn open_offers(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Offer>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT o.id, w.appointment_id, o.provider_id, p.display_name, o.location_id, o.starts_at
         FROM waitlist_offers o
         JOIN waitlist_entries w ON w.id = o.entry_id
         JOIN providers p ON p.id = o.provider_id
         WHERE w.patient_id = $1 AND w.active AND o.status = 'open' AND o.starts_at > $2
         ORDER BY o.starts_at",
        me.patient_id().as_uuid(),
        now
    )
    .fetch_all(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::WaitlistOffers, "waitlist_offer").patient(me.patient_id()),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Offer {
            id: OfferId::from_uuid(r.id),
            appointment_id: AppointmentId::from_uuid(r.appointment_id),
            provider_id: ProviderId::from_uuid(r.provider_id),
            provider_name: r.display_name,
            location_id: LocationId::from_uuid(r.location_id),
            starts_at: r.starts_at,
        })
        .collect())
}

/// Accepts an offer: the patient's visit moves to the offered time, or — if someone was
/// quicker — [`AppointmentError::Taken`] (and the offer is marked taken; the caller commits
/// that in a fresh transaction via [`mark_taken`]).
pub async fn accept(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    offer: OfferId,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Appointment, AppointmentError> {
    let row = sqlx::query!(
        "SELECT o.provider_id, o.location_id, o.starts_at, w.appointment_id, w.id AS entry_id
         FROM waitlist_offers o JOIN waitlist_entries w ON w.id = o.entry_id
         WHERE o.id = $1 AND w.patient_id = $2 AND w.active AND o.starts_at > $3",
        offer.as_uuid(),
        me.patient_id().as_uuid(),
        now
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(AppointmentError::NotFound)?;
    // Patients accepting offers of the same time take turns: every offer of that time is locked
    // up front, in one order, so the second waits for the first and then finds its offer taken
    // (locking only one's own offer deadlocked against the exclusion constraint's wait).
    let statuses = sqlx::query!(
        "SELECT id, status FROM waitlist_offers WHERE provider_id = $1 AND starts_at = $2
         ORDER BY id FOR UPDATE",
        row.provider_id,
        row.starts_at
    )
    .fetch_all(tx.conn())
    .await?;
    let status = statuses
        .iter()
        .find(|r| r.id == offer.as_uuid())
        .map_or("taken", |r| r.status.as_str());
    if status != "open" {
        return Err(AppointmentError::Taken);
    }
    let to = NewTime {
        provider_id: ProviderId::from_uuid(row.provider_id),
        location_id: LocationId::from_uuid(row.location_id),
        starts_at: row.starts_at,
    };
    let id = AppointmentId::from_uuid(row.appointment_id);
    let moved = reschedule(tx, Actor::Patient(me), ctx, id, to, tz, now).await?;
    sqlx::query!(
        "UPDATE waitlist_offers SET status = CASE WHEN id = $1 THEN 'accepted' ELSE 'taken' END
         WHERE status = 'open' AND (id = $1 OR (provider_id = $2 AND starts_at = $3))",
        offer.as_uuid(),
        row.provider_id,
        row.starts_at
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE waitlist_entries SET active = false WHERE id = $1",
        row.entry_id
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::WaitlistAccept, "appointment")
            .resource(id)
            .patient(me.patient_id()),
    )
    .await?;
    Ok(moved)
}

/// Marks an offer taken after a failed accept (its own transaction, since the failed one rolled
/// back), so it stops being shown.
pub async fn mark_taken(
    tx: &mut TenantTx,
    me: &PatientScope,
    offer: OfferId,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE waitlist_offers o SET status = 'taken'
         FROM waitlist_entries w
         WHERE o.id = $1 AND w.id = o.entry_id AND w.patient_id = $2 AND o.status = 'open'",
        offer.as_uuid(),
        me.patient_id().as_uuid()
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// For the workers: an open offer and its patient's contact details, audited as a system read.
pub async fn for_offer_notice(
    tx: &mut TenantTx,
    offer: OfferId,
    now: DateTime<Utc>,
) -> Result<Option<OfferNotice>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT o.starts_at, w.patient_id, p.email, p.reminder_sms,
                CASE WHEN p.phone_verified_at IS NOT NULL AND p.sms_opted_out_at IS NULL
                     THEN p.phone END AS phone
         FROM waitlist_offers o
         JOIN waitlist_entries w ON w.id = o.entry_id
         JOIN patients p ON p.id = w.patient_id
         WHERE o.id = $1 AND o.status = 'open' AND w.active AND o.starts_at > $2",
        offer.as_uuid(),
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let patient = PatientId::from_uuid(r.patient_id);
    audit::record(
        tx,
        &AuditContext::default(),
        now,
        AuditEvent::new(Action::WaitlistOffer, "waitlist_offer")
            .resource(offer)
            .patient(patient),
    )
    .await?;
    Ok(Some(OfferNotice {
        starts_at: r.starts_at,
        email: r.email,
        phone: r.phone.filter(|_| r.reminder_sms),
    }))
}

/// Where and what to tell a patient about an offer.
#[derive(Debug, Clone)]
pub struct OfferNotice {
    pub starts_at: DateTime<Utc>,
    pub email: Option<String>,
    /// `None` when the patient has no phone, turned texts off, or texted STOP.
    pub phone: Option<String>,
}
