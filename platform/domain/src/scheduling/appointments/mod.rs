//! Appointments: who may see which, and the errors every change can meet. Booking lives in
//! [`book`], moving and cancelling in [`change`], what both are judged on in `facts`, staff
//! status actions in [`status`].

pub mod book;
pub mod change;
mod facts;
pub mod status;

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::setup::Modality;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{PatientScope, SchedulingScope};
use crate::ids::{AppointmentId, LocationId, PatientId, ProviderId, UserId, VisitTypeId};

pub use book::{BookFor, BookRequest, book};
pub use change::{NewTime, cancel, reschedule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    CheckedIn,
    Completed,
    NoShow,
    Cancelled,
}

impl AppointmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::CheckedIn => "checked_in",
            Self::Completed => "completed",
            Self::NoShow => "no_show",
            Self::Cancelled => "cancelled",
        }
    }
    fn parse(raw: &str) -> Self {
        match raw {
            "checked_in" => Self::CheckedIn,
            "completed" => Self::Completed,
            "no_show" => Self::NoShow,
            "cancelled" => Self::Cancelled,
            _ => Self::Booked,
        }
    }
    /// The status inside a sentence ("this visit is cancelled").
    pub fn label_lower(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::CheckedIn => "checked in",
            Self::Completed => "completed",
            Self::NoShow => "marked as a no-show",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Booked => "Booked",
            Self::CheckedIn => "Checked in",
            Self::Completed => "Completed",
            Self::NoShow => "No-show",
            Self::Cancelled => "Cancelled",
        }
    }
}

/// An appointment with the names people read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Appointment {
    pub id: AppointmentId,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub provider_id: ProviderId,
    pub provider_name: String,
    pub location_id: LocationId,
    pub location_name: String,
    pub location_address: String,
    pub visit_type_id: VisitTypeId,
    pub visit_type_name: String,
    pub modality: Modality,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: AppointmentStatus,
    pub reason: Option<String>,
    /// The video visit's join link.
    pub video_url: Option<String>,
    /// Bumped by every move.
    pub version: i32,
    /// When the patient confirmed by text.
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl Appointment {
    pub fn is_upcoming(&self, now: DateTime<Utc>) -> bool {
        self.ends_at > now
            && matches!(
                self.status,
                AppointmentStatus::Booked | AppointmentStatus::CheckedIn
            )
    }
}

/// Who is acting on an appointment: a patient (only their own) or staff (any of the clinic).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Patient(&'a PatientScope),
    Staff(&'a SchedulingScope),
}

impl Actor<'_> {
    fn own_patient(&self) -> Option<PatientId> {
        match self {
            Actor::Patient(p) => Some(p.patient_id()),
            Actor::Staff(_) => None,
        }
    }
    fn user_id(&self) -> UserId {
        match self {
            Actor::Patient(p) => p.user_id(),
            Actor::Staff(s) => s.user_id(),
        }
    }
    fn is_patient(&self) -> bool {
        matches!(self, Actor::Patient(_))
    }
}

/// A signed-in person's standing towards appointments, owned; [`Acting::actor`] lends it out
/// as an [`Actor`]. Patients act for themselves, staff for the clinic; anyone else (a proxy,
/// for now) has none.
#[derive(Debug, Clone)]
pub enum Acting {
    Patient(PatientScope),
    Staff(SchedulingScope),
}

impl Acting {
    pub fn of(me: &crate::identity::scope::SignedIn) -> Option<Self> {
        me.patient()
            .map(Acting::Patient)
            .or_else(|| me.scheduling().map(Acting::Staff))
    }
    pub fn actor(&self) -> Actor<'_> {
        match self {
            Acting::Patient(p) => Actor::Patient(p),
            Acting::Staff(s) => Actor::Staff(s),
        }
    }
    pub fn is_patient(&self) -> bool {
        matches!(self, Acting::Patient(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppointmentError {
    #[error("no such appointment")]
    NotFound,
    #[error("no such patient")]
    UnknownPatient,
    #[error("no such visit type")]
    UnknownVisitType,
    #[error("no such provider")]
    UnknownProvider,
    #[error("no such location")]
    UnknownLocation,
    #[error("that provider does not offer this kind of visit")]
    NotOffered,
    #[error("this kind of visit is booked by the clinic; please call to book it")]
    NotSelfBookable,
    #[error("this kind of visit is for new patients only")]
    ForNewPatients,
    #[error("this kind of visit is for patients who have been seen here before")]
    ForEstablishedPatients,
    #[error("that time has already passed")]
    InPast,
    #[error("that time is too soon; book at least {minutes} minutes ahead")]
    TooSoon { minutes: i32 },
    #[error("that time is too far ahead; book at most {days} days ahead")]
    BeyondHorizon { days: i32 },
    #[error("the provider is not available at that time")]
    OutsideAvailability,
    #[error("that time was just taken")]
    Taken,
    #[error(
        "it is too late to change this visit online (less than {hours} hours before it); please call the clinic"
    )]
    PastCutoff { hours: i32 },
    #[error("this visit is {0} and can no longer be changed")]
    NotChangeable(&'static str),
    #[error("{0}")]
    TooEarly(&'static str),
    #[error("the reason is too long (1000 characters at most)")]
    ReasonTooLong,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("job error")]
    Enqueue(#[from] crate::jobs::EnqueueError),
}

impl AppointmentError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::UnknownPatient => "unknown_patient",
            Self::UnknownVisitType => "unknown_visit_type",
            Self::UnknownProvider => "unknown_provider",
            Self::UnknownLocation => "unknown_location",
            Self::NotOffered => "not_offered",
            Self::NotSelfBookable => "not_self_bookable",
            Self::ForNewPatients => "new_patients_only",
            Self::ForEstablishedPatients => "established_patients_only",
            Self::InPast => "in_past",
            Self::TooSoon { .. } => "too_soon",
            Self::BeyondHorizon { .. } => "beyond_horizon",
            Self::OutsideAvailability => "outside_availability",
            Self::Taken => "slot_taken",
            Self::PastCutoff { .. } => "past_cutoff",
            Self::NotChangeable(_) => "not_changeable",
            Self::TooEarly(_) => "too_early",
            Self::ReasonTooLong => "reason_too_long",
            Self::Database(_) | Self::Enqueue(_) => "internal",
        }
    }

    /// A failure of ours rather than of the request.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Enqueue(_))
    }

    /// The database refused an overlapping booking (the exclusion constraint).
    pub(crate) fn from_write(e: sqlx::Error) -> Self {
        match e.as_database_error().and_then(|d| d.code()).as_deref() {
            Some("23P01") => Self::Taken,
            _ => Self::Database(e),
        }
    }
}

/// Which appointments to read.
#[derive(Debug, Clone, Copy, Default)]
struct Filter {
    id: Option<AppointmentId>,
    patient: Option<PatientId>,
    provider: Option<ProviderId>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    include_cancelled: bool,
    limit: i64,
}

/// An appointment row with the names joined in; every read of appointments (and the booking's
/// INSERT … RETURNING) produces exactly these columns.
struct AppointmentRow {
    id: uuid::Uuid,
    patient_id: uuid::Uuid,
    patient_name: String,
    provider_id: uuid::Uuid,
    provider_name: String,
    location_id: uuid::Uuid,
    location_name: String,
    location_address: String,
    visit_type_id: uuid::Uuid,
    visit_type_name: String,
    modality: String,
    video_base_url: Option<String>,
    video_room: Option<String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: String,
    reason: Option<String>,
    version: i32,
    confirmed_at: Option<DateTime<Utc>>,
}

impl From<AppointmentRow> for Appointment {
    fn from(r: AppointmentRow) -> Self {
        let modality = Modality::parse(&r.modality).unwrap_or(Modality::InPerson);
        let video_url = match (modality, r.video_base_url, r.video_room) {
            (Modality::Video, Some(base), Some(room)) => Some(format!("{base}/{room}")),
            _ => None,
        };
        Appointment {
            id: AppointmentId::from_uuid(r.id),
            patient_id: PatientId::from_uuid(r.patient_id),
            patient_name: r.patient_name,
            provider_id: ProviderId::from_uuid(r.provider_id),
            provider_name: r.provider_name,
            location_id: LocationId::from_uuid(r.location_id),
            location_name: r.location_name,
            location_address: r.location_address,
            visit_type_id: VisitTypeId::from_uuid(r.visit_type_id),
            visit_type_name: r.visit_type_name,
            modality,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            status: AppointmentStatus::parse(&r.status),
            reason: r.reason,
            video_url,
            version: r.version,
            confirmed_at: r.confirmed_at,
        }
    }
}

async fn fetch(tx: &mut TenantTx, f: Filter) -> Result<Vec<Appointment>, sqlx::Error> {
    let rows = sqlx::query_as!(
        AppointmentRow,
        r#"SELECT a.id, a.patient_id, p.given_name || ' ' || p.family_name AS "patient_name!",
                  a.provider_id, pr.display_name AS provider_name,
                  a.location_id, l.name AS location_name, l.address AS location_address,
                  a.visit_type_id, v.name AS visit_type_name, v.modality, v.video_base_url,
                  a.video_room, a.starts_at, a.ends_at, a.status, a.reason, a.version,
                  a.confirmed_at
           FROM appointments a
           JOIN patients p ON p.id = a.patient_id
           JOIN providers pr ON pr.id = a.provider_id
           JOIN locations l ON l.id = a.location_id
           JOIN visit_types v ON v.id = a.visit_type_id
           WHERE ($1::uuid IS NULL OR a.id = $1)
             AND ($2::uuid IS NULL OR a.patient_id = $2)
             AND ($3::uuid IS NULL OR a.provider_id = $3)
             AND ($4::timestamptz IS NULL OR a.starts_at >= $4)
             AND ($5::timestamptz IS NULL OR a.starts_at < $5)
             AND ($6 OR a.status <> 'cancelled')
           ORDER BY a.starts_at, pr.display_name
           LIMIT $7"#,
        f.id.map(|i| i.as_uuid()),
        f.patient.map(|p| p.as_uuid()),
        f.provider.map(|p| p.as_uuid()),
        f.from,
        f.to,
        f.include_cancelled,
        f.limit.max(1)
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(Appointment::from).collect())
}

/// One appointment without auditing, for services that audit their own action. A patient's
/// actor finds only their own; another patient's id is simply missing.
pub(crate) async fn load(
    tx: &mut TenantTx,
    actor: Actor<'_>,
    id: AppointmentId,
) -> Result<Option<Appointment>, sqlx::Error> {
    Ok(fetch(
        tx,
        Filter {
            id: Some(id),
            patient: actor.own_patient(),
            include_cancelled: true,
            limit: 1,
            ..Filter::default()
        },
    )
    .await?
    .pop())
}

/// One appointment, audited. `None` for a missing id, another clinic's and another patient's.
pub async fn get(
    tx: &mut TenantTx,
    actor: Actor<'_>,
    ctx: &AuditContext,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<Option<Appointment>, sqlx::Error> {
    let found = load(tx, actor, id).await?;
    if let Some(a) = &found {
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::AppointmentView, "appointment")
                .resource(a.id)
                .patient(a.patient_id),
        )
        .await?;
    }
    Ok(found)
}

/// Where to tell a patient about their visit.
#[derive(Debug, Clone)]
pub struct NoticeTarget {
    pub appointment: Appointment,
    pub email: Option<String>,
    /// The patient's mobile number, only once verified (texts go nowhere else). Whether the
    /// phone said STOP is the sender's check (per number, in the control plane).
    pub phone: Option<String>,
    /// The patient's reminder choices.
    pub reminder_email: bool,
    pub reminder_sms: bool,
    /// The patient already confirmed by text.
    pub confirmed: bool,
}

/// For the workers, acting as the clinic itself: an appointment and its patient's contact
/// details, audited as a system read.
pub async fn for_notice(
    tx: &mut TenantTx,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<Option<NoticeTarget>, sqlx::Error> {
    // One statement for the visit and its patient's contact details: a burst of reminders runs
    // this once per message.
    let Some(r) = sqlx::query!(
        r#"SELECT a.id, a.patient_id, p.given_name || ' ' || p.family_name AS "patient_name!",
                  a.provider_id, pr.display_name AS provider_name,
                  a.location_id, l.name AS location_name, l.address AS location_address,
                  a.visit_type_id, v.name AS visit_type_name, v.modality, v.video_base_url,
                  a.video_room, a.starts_at, a.ends_at, a.status, a.reason, a.version,
                  a.confirmed_at, p.email,
                  CASE WHEN p.phone_verified_at IS NOT NULL AND p.sms_opted_out_at IS NULL
                       THEN p.phone END AS phone,
                  p.reminder_email, p.reminder_sms
           FROM appointments a
           JOIN patients p ON p.id = a.patient_id
           JOIN providers pr ON pr.id = a.provider_id
           JOIN locations l ON l.id = a.location_id
           JOIN visit_types v ON v.id = a.visit_type_id
           WHERE a.id = $1"#,
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let appointment = Appointment::from(AppointmentRow {
        id: r.id,
        patient_id: r.patient_id,
        patient_name: r.patient_name,
        provider_id: r.provider_id,
        provider_name: r.provider_name,
        location_id: r.location_id,
        location_name: r.location_name,
        location_address: r.location_address,
        visit_type_id: r.visit_type_id,
        visit_type_name: r.visit_type_name,
        modality: r.modality,
        video_base_url: r.video_base_url,
        video_room: r.video_room,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        status: r.status,
        reason: r.reason,
        version: r.version,
        confirmed_at: r.confirmed_at,
    });
    audit::record(
        tx,
        &AuditContext::default(),
        now,
        AuditEvent::new(Action::AppointmentNotify, "appointment")
            .resource(id)
            .patient(appointment.patient_id),
    )
    .await?;
    Ok(Some(NoticeTarget {
        confirmed: appointment.confirmed_at.is_some(),
        appointment,
        email: r.email,
        phone: r.phone,
        reminder_email: r.reminder_email,
        reminder_sms: r.reminder_sms,
    }))
}

/// The signed-in patient's appointments (cancelled ones included), soonest first.
pub async fn for_patient(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Appointment>, sqlx::Error> {
    let list = fetch(
        tx,
        Filter {
            patient: Some(me.patient_id()),
            include_cancelled: true,
            limit: 500,
            ..Filter::default()
        },
    )
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AppointmentList, "appointment").patient(me.patient_id()),
    )
    .await?;
    Ok(list)
}

/// The patient says they will come to a booked, future visit of theirs (the web twin of
/// replying C to a reminder). `false` when there is no such visit; confirming twice is a
/// no-op that still answers `true`.
pub async fn confirm_attendance(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query_scalar!(
        r#"UPDATE appointments
           SET confirmed_at = coalesce(confirmed_at, $3),
               change_seq = CASE WHEN confirmed_at IS NULL THEN nextval('appointment_changes')
                                 ELSE change_seq END,
               updated_at = $3
           WHERE id = $1 AND patient_id = $2 AND status = 'booked' AND starts_at > $3
           RETURNING id"#,
        id.as_uuid(),
        me.patient_id().as_uuid(),
        now
    )
    .fetch_optional(tx.conn())
    .await?;
    if row.is_none() {
        return Ok(false);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AppointmentConfirmOnline, "appointment")
            .resource(id)
            .patient(me.patient_id()),
    )
    .await?;
    Ok(true)
}

/// One patient's appointments (cancelled ones included), soonest first, for staff: the
/// visits on the staff patient page.
pub async fn of_patient(
    tx: &mut TenantTx,
    _staff: &SchedulingScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Vec<Appointment>, sqlx::Error> {
    let list = fetch(
        tx,
        Filter {
            patient: Some(patient),
            include_cancelled: true,
            limit: 500,
            ..Filter::default()
        },
    )
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AppointmentList, "appointment").patient(patient),
    )
    .await?;
    Ok(list)
}

/// The clinic's schedule over `[from, to)`, optionally of one provider, for staff.
pub async fn schedule(
    tx: &mut TenantTx,
    _staff: &SchedulingScope,
    ctx: &AuditContext,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    provider: Option<ProviderId>,
    now: DateTime<Utc>,
) -> Result<Vec<Appointment>, sqlx::Error> {
    let list = fetch(
        tx,
        Filter {
            provider,
            from: Some(from),
            to: Some(to),
            include_cancelled: true,
            limit: 5000,
            ..Filter::default()
        },
    )
    .await?;
    audit::record_list(
        tx,
        ctx,
        now,
        Action::ScheduleView,
        "appointment",
        list.iter().map(|a| a.patient_id),
    )
    .await?;
    Ok(list)
}

/// A fingerprint of the clinic's schedule: it changes whenever any appointment is booked,
/// moved, cancelled or changes status. The schedule page polls it to refresh itself; it
/// carries no patient data.
pub async fn schedule_stamp(
    tx: &mut TenantTx,
    _staff: &SchedulingScope,
) -> Result<i64, sqlx::Error> {
    let latest =
        sqlx::query_scalar!(r#"SELECT coalesce(max(change_seq), 0) AS "n!" FROM appointments"#)
            .fetch_one(tx.conn())
            .await?;
    Ok(latest)
}
