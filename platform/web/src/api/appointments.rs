//! Appointments over JSON: booking options, open slots, and a caller's appointments (book,
//! read, reschedule, cancel). A patient sees and changes only their own; staff the clinic's.
//! Another patient's appointment id answers 404, like a missing one.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use portal_domain::ids::{AppointmentId, LocationId, OfferId, PatientId, ProviderId, VisitTypeId};
use portal_domain::scheduling::appointments::{
    self, Acting, BookFor, BookRequest, NewTime, book, cancel, reschedule,
};
use portal_domain::scheduling::search::{self, SlotQuery};
use portal_domain::scheduling::setup;
use portal_domain::scheduling::slots::Slot;
use portal_domain::scheduling::waitlist;
use portal_domain::scheduling::{Appointment, AppointmentError, clinic_tz};
use portal_tenants::Tenant;

use super::ApiTags;
use super::caller::{Caller, ChangingCaller, caller, changing_caller, csrf, unauthorized};
use super::error::ErrorBody;
use crate::auth::audit_ctx;
use crate::{AppState, internal};

#[derive(Debug, Object)]
pub struct VisitTypeOut {
    /// `vst_…`
    pub id: String,
    pub name: String,
    pub duration_minutes: i32,
    /// `in_person` or `video`.
    pub modality: String,
    /// `any`, `new` or `established`.
    pub audience: String,
    pub self_bookable: bool,
}

#[derive(Debug, Object)]
pub struct NamedOut {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Object)]
pub struct ProviderOut {
    /// `prv_…`
    pub id: String,
    pub name: String,
    /// The visit types (`vst_…`) this provider offers.
    pub visit_type_ids: Vec<String>,
}

/// What can be booked here.
#[derive(Debug, Object)]
pub struct BookingOptions {
    /// IANA time zone of the clinic; times are instants (RFC 3339, UTC).
    pub time_zone: String,
    pub visit_types: Vec<VisitTypeOut>,
    pub providers: Vec<ProviderOut>,
    pub locations: Vec<NamedOut>,
}

#[derive(Debug, Object)]
pub struct SlotOut {
    pub provider_id: String,
    pub location_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl From<&Slot> for SlotOut {
    fn from(s: &Slot) -> Self {
        Self {
            provider_id: s.provider_id.to_string(),
            location_id: s.location_id.to_string(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct SlotList {
    pub visit_type_id: String,
    pub time_zone: String,
    pub slots: Vec<SlotOut>,
}

#[derive(Debug, Object)]
pub struct AppointmentOut {
    /// `apt_…`
    pub id: String,
    /// `pat_…`
    pub patient_id: String,
    pub patient_name: String,
    pub provider_id: String,
    pub provider_name: String,
    pub location_id: String,
    pub location_name: String,
    pub visit_type_id: String,
    pub visit_type_name: String,
    /// `in_person` or `video`.
    pub modality: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `booked`, `checked_in`, `completed`, `no_show` or `cancelled`.
    pub status: String,
    pub reason: Option<String>,
    /// Join link of a video visit.
    pub video_url: Option<String>,
    /// Bumped by every move.
    pub version: i32,
    /// When the patient confirmed by replying to a reminder text.
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl From<&Appointment> for AppointmentOut {
    fn from(a: &Appointment) -> Self {
        Self {
            id: a.id.to_string(),
            patient_id: a.patient_id.to_string(),
            patient_name: a.patient_name.clone(),
            provider_id: a.provider_id.to_string(),
            provider_name: a.provider_name.clone(),
            location_id: a.location_id.to_string(),
            location_name: a.location_name.clone(),
            visit_type_id: a.visit_type_id.to_string(),
            visit_type_name: a.visit_type_name.clone(),
            modality: a.modality.as_str().to_owned(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            status: a.status.as_str().to_owned(),
            reason: a.reason.clone(),
            video_url: a.video_url.clone(),
            version: a.version,
            confirmed_at: a.confirmed_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct BookBody {
    pub visit_type_id: String,
    pub provider_id: String,
    pub location_id: String,
    pub starts_at: DateTime<Utc>,
    /// What the patient wants to be seen for (at most 1000 characters; stays in the portal).
    pub reason: Option<String>,
    /// Staff only: the patient (`pat_…`) to book for.
    pub patient_id: Option<String>,
}

#[derive(Debug, Object)]
pub struct MoveBody {
    pub provider_id: String,
    pub location_id: String,
    pub starts_at: DateTime<Utc>,
}

/// The time was just taken; here are other open times of the same kind.
#[derive(Debug, Object)]
pub struct TakenBody {
    /// `slot_taken`.
    pub code: String,
    pub message: String,
    /// Open times of the same visit type from the same day on.
    pub alternatives: Vec<SlotOut>,
}

#[derive(ApiResponse)]
pub enum OptionsResponse {
    #[oai(status = 200)]
    Ok(Json<BookingOptions>),
    /// Not signed in (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum SlotsResponse {
    #[oai(status = 200)]
    Ok(Json<SlotList>),
    /// Not signed in (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Unknown visit type, provider or location, or a bad date (codes `unknown_visit_type`,
    /// `unknown_provider`, `unknown_location`, `invalid_parameter`).
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<AppointmentOut>>),
    /// Not signed in (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A bad date range (code `invalid_parameter`).
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
}

// A response is built once and moved straight into the body; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum OneResponse {
    #[oai(status = 200)]
    Ok(Json<AppointmentOut>),
    /// Not signed in (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such appointment for this caller (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

// A response is built once and moved straight into the body; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum ChangeResponse {
    /// Booked (201) — the new appointment.
    #[oai(status = 201)]
    Created(Json<AppointmentOut>),
    /// Changed — the appointment as it is now.
    #[oai(status = 200)]
    Ok(Json<AppointmentOut>),
    /// Not signed in (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Missing `X-CSRF-Token` for a cookie session (code `csrf`), or a patient naming
    /// another patient (code `forbidden`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such appointment for this caller (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The time was just taken (code `slot_taken`, with alternatives).
    #[oai(status = 409)]
    Taken(Json<TakenBody>),
    /// A rule refused the time or the request (codes `in_past`, `too_soon`, `beyond_horizon`,
    /// `outside_availability`, `unknown_provider`, `unknown_location`, `unknown_visit_type`,
    /// `unknown_patient`, `not_offered`, `not_self_bookable`, `new_patients_only`,
    /// `established_patients_only`, `reason_too_long`, `invalid_parameter`), or the visit can no
    /// longer be changed online (`past_cutoff`: within the clinic's cut-off; `not_changeable`:
    /// cancelled, done or past).
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
}

#[derive(Debug, Object)]
pub struct OfferOut {
    /// `ofr_…`
    pub id: String,
    /// The visit that would move (`apt_…`).
    pub appointment_id: String,
    pub provider_id: String,
    pub provider_name: String,
    pub location_id: String,
    pub starts_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum WaitlistResponse {
    /// Done.
    #[oai(status = 204)]
    Done,
    /// Not signed in (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Missing `X-CSRF-Token` for a cookie session (code `csrf`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such appointment of this patient, or not on the list (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The visit is no longer booked or already past (code `not_changeable`).
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum OffersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<OfferOut>>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

fn invalid(msg: &str) -> Json<ErrorBody> {
    ErrorBody::new("invalid_parameter", msg)
}

fn body_of(e: &AppointmentError) -> Json<ErrorBody> {
    ErrorBody::new(e.code(), e.to_string())
}

/// A change's error as a response; `Taken` carries the fresh `alternatives`.
fn change_error(e: AppointmentError, alternatives: Vec<SlotOut>) -> poem::Result<ChangeResponse> {
    Ok(match &e {
        _ if e.is_internal() => return Err(internal(e)),
        AppointmentError::NotFound => ChangeResponse::NotFound(body_of(&e)),
        AppointmentError::Taken => ChangeResponse::Taken(Json(TakenBody {
            code: e.code().to_owned(),
            message: "that time was just taken; here are other open times".to_owned(),
            alternatives,
        })),
        _ => ChangeResponse::Invalid(body_of(&e)),
    })
}

/// Open times of `visit_type` from the day of `near` on, for a "just taken" answer.
async fn alternatives(
    req: &poem::Request,
    state: &AppState,
    tenant: &Tenant,
    for_patient: bool,
    visit_type: VisitTypeId,
    near: DateTime<Utc>,
) -> poem::Result<Vec<SlotOut>> {
    let tz = clinic_tz(tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, tenant)
        .await
        .map_err(internal)?;
    let q = SlotQuery {
        visit_type_id: visit_type,
        provider_id: None,
        location_id: None,
        from: near.with_timezone(&tz).date_naive(),
        days: 7,
    };
    let found = search::search(&mut tx, for_patient, &q, tz, state.clock.now()).await;
    tx.commit().await.map_err(internal)?;
    Ok(match found {
        Ok(f) => f.slots.iter().take(20).map(SlotOut::from).collect(),
        Err(_) => Vec::new(),
    })
}

pub struct AppointmentsApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Appointments")]
impl AppointmentsApi {
    /// What can be booked
    ///
    /// Visit types (for patients, only those they may book themselves), providers and locations.
    #[oai(
        path = "/booking-options",
        method = "get",
        operation_id = "getBookingOptions"
    )]
    async fn options(
        &self,
        req: &Request,
        state: Data<&AppState>,
    ) -> poem::Result<OptionsResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(OptionsResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let types = setup::visit_types(&mut tx).await.map_err(internal)?;
        let providers = setup::providers(&mut tx).await.map_err(internal)?;
        let locations = setup::locations(&mut tx).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        let staff = me.scheduling().is_some();
        Ok(OptionsResponse::Ok(Json(BookingOptions {
            time_zone: tenant.time_zone().to_owned(),
            visit_types: types
                .into_iter()
                .filter(|v| staff || v.self_bookable)
                .map(|v| VisitTypeOut {
                    id: v.id.to_string(),
                    name: v.name,
                    duration_minutes: v.duration_minutes,
                    modality: v.modality.as_str().to_owned(),
                    audience: v.audience.as_str().to_owned(),
                    self_bookable: v.self_bookable,
                })
                .collect(),
            providers: providers
                .into_iter()
                .map(|p| ProviderOut {
                    id: p.id.to_string(),
                    name: p.display_name,
                    visit_type_ids: p.visit_types.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            locations: locations
                .into_iter()
                .map(|l| NamedOut {
                    id: l.id.to_string(),
                    name: l.name,
                })
                .collect(),
        })))
    }

    /// Open slots
    ///
    /// Open times for a visit type over `days` days (1–31, default 7) from `from` (the clinic's
    /// local date, default today), optionally with one provider or at one location.
    #[oai(path = "/slots", method = "get", operation_id = "listSlots")]
    #[allow(clippy::too_many_arguments)] // one per query parameter, as the spec lists them
    async fn slots(
        &self,
        req: &Request,
        state: Data<&AppState>,
        visit_type_id: Query<String>,
        provider_id: Query<Option<String>>,
        location_id: Query<Option<String>>,
        from: Query<Option<String>>,
        days: Query<Option<u32>>,
    ) -> poem::Result<SlotsResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(SlotsResponse::Unauthorized(unauthorized()));
        };
        let tz = clinic_tz(&tenant);
        let now = state.clock.now();
        let Some(vt) = VisitTypeId::parse(&visit_type_id) else {
            return Ok(SlotsResponse::Invalid(body_of(
                &AppointmentError::UnknownVisitType,
            )));
        };
        let provider = match provider_id.0.as_deref() {
            None => None,
            Some(raw) => match ProviderId::parse(raw) {
                Some(p) => Some(p),
                None => {
                    return Ok(SlotsResponse::Invalid(body_of(
                        &AppointmentError::UnknownProvider,
                    )));
                }
            },
        };
        let location = match location_id.0.as_deref() {
            None => None,
            Some(raw) => match LocationId::parse(raw) {
                Some(l) => Some(l),
                None => {
                    return Ok(SlotsResponse::Invalid(body_of(
                        &AppointmentError::UnknownLocation,
                    )));
                }
            },
        };
        let from = match from.0.as_deref() {
            None => now.with_timezone(&tz).date_naive(),
            Some(raw) => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(d) => d,
                Err(_) => return Ok(SlotsResponse::Invalid(invalid("from must be YYYY-MM-DD"))),
            },
        };
        let days = days.0.unwrap_or(7);
        if !(1..=search::MAX_DAYS).contains(&days) {
            return Ok(SlotsResponse::Invalid(invalid("days must be 1 to 31")));
        }
        let q = SlotQuery {
            visit_type_id: vt,
            provider_id: provider,
            location_id: location,
            from,
            days,
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let found = search::search(&mut tx, me.patient().is_some(), &q, tz, now).await;
        tx.commit().await.map_err(internal)?;
        match found {
            Ok(f) => Ok(SlotsResponse::Ok(Json(SlotList {
                visit_type_id: vt.to_string(),
                time_zone: tenant.time_zone().to_owned(),
                slots: f.slots.iter().map(SlotOut::from).collect(),
            }))),
            Err(e) if e.is_internal() => Err(internal(e)),
            Err(e) => Ok(SlotsResponse::Invalid(body_of(&e))),
        }
    }

    /// List appointments
    ///
    /// A patient gets all their own (cancelled included). Staff get the clinic's schedule between
    /// `from` and `to` (local dates, default today and a week later).
    #[oai(
        path = "/appointments",
        method = "get",
        operation_id = "listAppointments"
    )]
    async fn list(
        &self,
        req: &Request,
        state: Data<&AppState>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
    ) -> poem::Result<ListResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(ListResponse::Unauthorized(unauthorized()));
        };
        let now = state.clock.now();
        let ctx = audit_ctx(req, Some(&me));
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let list = if let Some(p) = me.patient() {
            appointments::for_patient(&mut tx, &p, &ctx, now)
                .await
                .map_err(internal)?
        } else if let Some(s) = me.scheduling() {
            let tz = clinic_tz(&tenant);
            let parse = |raw: Option<&str>, default: NaiveDate| match raw {
                None => Some(default),
                Some(r) => NaiveDate::parse_from_str(r, "%Y-%m-%d").ok(),
            };
            let today = now.with_timezone(&tz).date_naive();
            let (Some(f), Some(t)) = (
                parse(from.0.as_deref(), today),
                parse(to.0.as_deref(), today + Duration::days(7)),
            ) else {
                return Ok(ListResponse::Invalid(invalid(
                    "from and to must be YYYY-MM-DD",
                )));
            };
            let start = |d: NaiveDate| {
                d.and_hms_opt(0, 0, 0)
                    .and_then(|n| n.and_local_timezone(tz).earliest())
                    .map(|t| t.with_timezone(&Utc))
            };
            let (Some(a), Some(b)) = (start(f), start(t)) else {
                return Ok(ListResponse::Invalid(invalid(
                    "from and to must be YYYY-MM-DD",
                )));
            };
            appointments::schedule(&mut tx, &s, &ctx, a, b, None, now)
                .await
                .map_err(internal)?
        } else {
            Vec::new()
        };
        tx.commit().await.map_err(internal)?;
        Ok(ListResponse::Ok(Json(
            list.iter().map(AppointmentOut::from).collect(),
        )))
    }

    /// Book an appointment
    ///
    /// A patient books for themself; staff name the patient in `patient_id`. Two callers racing
    /// for one time get one 201 and one 409 with alternatives.
    #[oai(
        path = "/appointments",
        method = "post",
        operation_id = "bookAppointment"
    )]
    async fn book(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<BookBody>,
    ) -> poem::Result<ChangeResponse> {
        let (tenant, me, mut tx) = match changing_caller(req, &state).await? {
            ChangingCaller::In(t, m, tx) => (t, m, tx),
            ChangingCaller::Out => return Ok(ChangeResponse::Unauthorized(unauthorized())),
            ChangingCaller::Csrf => return Ok(ChangeResponse::Forbidden(csrf())),
        };
        let (Some(vt), Some(p), Some(l)) = (
            VisitTypeId::parse(&body.visit_type_id),
            ProviderId::parse(&body.provider_id),
            LocationId::parse(&body.location_id),
        ) else {
            return Ok(ChangeResponse::Invalid(invalid(
                "visit_type_id, provider_id and location_id must be ids (vst_…, prv_…, loc_…)",
            )));
        };
        let request = BookRequest {
            visit_type_id: vt,
            provider_id: p,
            location_id: l,
            starts_at: body.starts_at,
            reason: body.reason.clone(),
        };
        let (patient_scope, staff_scope) = (me.patient(), me.scheduling());
        let who = match (&patient_scope, &staff_scope, body.patient_id.as_deref()) {
            (Some(p), _, None) => BookFor::Patient(p),
            (Some(p), _, Some(raw)) if PatientId::parse(raw) == Some(p.patient_id()) => {
                BookFor::Patient(p)
            }
            (Some(_), _, Some(_)) => {
                return Ok(ChangeResponse::Forbidden(ErrorBody::new(
                    "forbidden",
                    "patients book for themselves only",
                )));
            }
            (None, Some(s), Some(raw)) => match PatientId::parse(raw) {
                Some(patient) => BookFor::Staff(s, patient),
                None => {
                    return Ok(ChangeResponse::Invalid(body_of(
                        &AppointmentError::UnknownPatient,
                    )));
                }
            },
            (None, Some(_), None) => {
                return Ok(ChangeResponse::Invalid(invalid(
                    "staff must name the patient_id",
                )));
            }
            (None, None, _) => {
                return Ok(ChangeResponse::Forbidden(ErrorBody::new(
                    "forbidden",
                    "this account cannot book appointments",
                )));
            }
        };
        let ctx = audit_ctx(req, Some(&me));
        let tz = clinic_tz(&tenant);
        let now = state.clock.now();
        match book(&mut tx, who, &ctx, &request, tz, now).await {
            Ok(a) => {
                tx.commit().await.map_err(internal)?;
                Ok(ChangeResponse::Created(Json(AppointmentOut::from(&a))))
            }
            Err(e) => {
                drop(tx);
                let alts = if matches!(e, AppointmentError::Taken) {
                    alternatives(
                        req,
                        &state,
                        &tenant,
                        patient_scope.is_some(),
                        vt,
                        body.starts_at,
                    )
                    .await?
                } else {
                    Vec::new()
                };
                change_error(e, alts)
            }
        }
    }

    /// One appointment
    #[oai(
        path = "/appointments/:id",
        method = "get",
        operation_id = "getAppointment"
    )]
    async fn one(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<OneResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(OneResponse::Unauthorized(unauthorized()));
        };
        let missing = || OneResponse::NotFound(ErrorBody::new("not_found", "no such appointment"));
        let Some(id) = AppointmentId::parse(&id) else {
            return Ok(missing());
        };
        let Some(acting) = Acting::of(&me) else {
            return Ok(missing());
        };
        let actor = acting.actor();
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let a = appointments::get(
            &mut tx,
            actor,
            &audit_ctx(req, Some(&me)),
            id,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(match a {
            Some(a) => OneResponse::Ok(Json(AppointmentOut::from(&a))),
            None => missing(),
        })
    }

    /// Reschedule an appointment
    ///
    /// Moves a booked visit to another open time (same visit type; provider and location may
    /// change). Patients cannot move a visit within the clinic's cut-off.
    #[oai(
        path = "/appointments/:id/reschedule",
        method = "post",
        operation_id = "rescheduleAppointment"
    )]
    async fn reschedule(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
        body: Json<MoveBody>,
    ) -> poem::Result<ChangeResponse> {
        let (tenant, me, mut tx) = match changing_caller(req, &state).await? {
            ChangingCaller::In(t, m, tx) => (t, m, tx),
            ChangingCaller::Out => return Ok(ChangeResponse::Unauthorized(unauthorized())),
            ChangingCaller::Csrf => return Ok(ChangeResponse::Forbidden(csrf())),
        };
        let Some(id) = AppointmentId::parse(&id) else {
            return change_error(AppointmentError::NotFound, Vec::new());
        };
        let (Some(p), Some(l)) = (
            ProviderId::parse(&body.provider_id),
            LocationId::parse(&body.location_id),
        ) else {
            return Ok(ChangeResponse::Invalid(invalid(
                "provider_id and location_id must be ids (prv_…, loc_…)",
            )));
        };
        let Some(acting) = Acting::of(&me) else {
            return change_error(AppointmentError::NotFound, Vec::new());
        };
        let actor = acting.actor();
        let ctx = audit_ctx(req, Some(&me));
        let tz = clinic_tz(&tenant);
        let now = state.clock.now();
        let to = NewTime {
            provider_id: p,
            location_id: l,
            starts_at: body.starts_at,
        };
        match reschedule(&mut tx, actor, &ctx, id, to, tz, now).await {
            Ok(a) => {
                tx.commit().await.map_err(internal)?;
                Ok(ChangeResponse::Ok(Json(AppointmentOut::from(&a))))
            }
            Err(e) => {
                drop(tx);
                let alts = if matches!(e, AppointmentError::Taken) {
                    let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
                        .await
                        .map_err(internal)?;
                    let vt = appointments::get(&mut tx, actor, &ctx, id, now)
                        .await
                        .map_err(internal)?
                        .map(|a| a.visit_type_id);
                    tx.commit().await.map_err(internal)?;
                    match vt {
                        Some(vt) => {
                            alternatives(
                                req,
                                &state,
                                &tenant,
                                acting.is_patient(),
                                vt,
                                body.starts_at,
                            )
                            .await?
                        }
                        None => Vec::new(),
                    }
                } else {
                    Vec::new()
                };
                change_error(e, alts)
            }
        }
    }

    /// Cancel an appointment
    ///
    /// Patients cannot cancel online within the clinic's cut-off (422 `past_cutoff`).
    #[oai(
        path = "/appointments/:id/cancel",
        method = "post",
        operation_id = "cancelAppointment"
    )]
    async fn cancel(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<ChangeResponse> {
        let (_, me, mut tx) = match changing_caller(req, &state).await? {
            ChangingCaller::In(t, m, tx) => (t, m, tx),
            ChangingCaller::Out => return Ok(ChangeResponse::Unauthorized(unauthorized())),
            ChangingCaller::Csrf => return Ok(ChangeResponse::Forbidden(csrf())),
        };
        let Some(id) = AppointmentId::parse(&id) else {
            return change_error(AppointmentError::NotFound, Vec::new());
        };
        let Some(acting) = Acting::of(&me) else {
            return change_error(AppointmentError::NotFound, Vec::new());
        };
        let actor = acting.actor();
        match cancel(
            &mut tx,
            actor,
            &audit_ctx(req, Some(&me)),
            id,
            state.clock.now(),
        )
        .await
        {
            Ok(a) => {
                tx.commit().await.map_err(internal)?;
                Ok(ChangeResponse::Ok(Json(AppointmentOut::from(&a))))
            }
            Err(e) => change_error(e, Vec::new()),
        }
    }

    /// Ask for an earlier time
    ///
    /// Puts the signed-in patient's booked visit on the earlier-slot waitlist: when a visit of
    /// the same kind is cancelled, the patient is offered its time by email (and SMS).
    #[oai(
        path = "/appointments/:id/waitlist",
        method = "post",
        operation_id = "joinWaitlist"
    )]
    async fn join_waitlist(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<WaitlistResponse> {
        self.waitlist(req, &state, &id, true).await
    }

    /// Stop waiting for an earlier time
    #[oai(
        path = "/appointments/:id/waitlist",
        method = "delete",
        operation_id = "leaveWaitlist"
    )]
    async fn leave_waitlist(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<WaitlistResponse> {
        self.waitlist(req, &state, &id, false).await
    }

    /// Earlier times offered
    ///
    /// The signed-in patient's open offers from the waitlist.
    #[oai(
        path = "/waitlist-offers",
        method = "get",
        operation_id = "listWaitlistOffers"
    )]
    async fn offers(&self, req: &Request, state: Data<&AppState>) -> poem::Result<OffersResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(OffersResponse::Unauthorized(unauthorized()));
        };
        let Some(p) = me.patient() else {
            return Ok(OffersResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let offers =
            waitlist::open_offers(&mut tx, &p, &audit_ctx(req, Some(&me)), state.clock.now())
                .await
                .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(OffersResponse::Ok(Json(
            offers
                .into_iter()
                .map(|o| OfferOut {
                    id: o.id.to_string(),
                    appointment_id: o.appointment_id.to_string(),
                    provider_id: o.provider_id.to_string(),
                    provider_name: o.provider_name,
                    location_id: o.location_id.to_string(),
                    starts_at: o.starts_at,
                })
                .collect(),
        )))
    }

    /// Take an earlier time
    ///
    /// Moves the patient's visit to the offered time. The first patient to accept gets it;
    /// later ones get 409 `slot_taken` and keep their visit.
    #[oai(
        path = "/waitlist-offers/:id/accept",
        method = "post",
        operation_id = "acceptWaitlistOffer"
    )]
    async fn accept_offer(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<ChangeResponse> {
        let (tenant, me, mut tx) = match changing_caller(req, &state).await? {
            ChangingCaller::In(t, m, tx) => (t, m, tx),
            ChangingCaller::Out => return Ok(ChangeResponse::Unauthorized(unauthorized())),
            ChangingCaller::Csrf => return Ok(ChangeResponse::Forbidden(csrf())),
        };
        let (Some(p), Some(offer)) = (me.patient(), OfferId::parse(&id)) else {
            return change_error(AppointmentError::NotFound, Vec::new());
        };
        let tz = clinic_tz(&tenant);
        match waitlist::accept(
            &mut tx,
            &p,
            &audit_ctx(req, Some(&me)),
            offer,
            tz,
            state.clock.now(),
        )
        .await
        {
            Ok(a) => {
                tx.commit().await.map_err(internal)?;
                Ok(ChangeResponse::Ok(Json(AppointmentOut::from(&a))))
            }
            Err(e) => {
                drop(tx);
                if !matches!(e, AppointmentError::NotFound) && !e.is_internal() {
                    let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
                        .await
                        .map_err(internal)?;
                    waitlist::mark_taken(&mut tx, &p, offer)
                        .await
                        .map_err(internal)?;
                    tx.commit().await.map_err(internal)?;
                }
                change_error(e, Vec::new())
            }
        }
    }
}

impl AppointmentsApi {
    async fn waitlist(
        &self,
        req: &Request,
        state: &AppState,
        id: &str,
        join: bool,
    ) -> poem::Result<WaitlistResponse> {
        let (tenant, me) = match caller(req, state, true).await? {
            Caller::In(t, m) => (t, m),
            Caller::Out => return Ok(WaitlistResponse::Unauthorized(unauthorized())),
            Caller::Csrf => return Ok(WaitlistResponse::Forbidden(csrf())),
        };
        let missing =
            || WaitlistResponse::NotFound(ErrorBody::new("not_found", "no such appointment"));
        let (Some(p), Some(id)) = (me.patient(), AppointmentId::parse(id)) else {
            return Ok(missing());
        };
        let ctx = audit_ctx(req, Some(&me));
        let now = state.clock.now();
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let result = if join {
            waitlist::join(&mut tx, &p, &ctx, id, now).await
        } else {
            waitlist::leave(&mut tx, &p, &ctx, id, now).await
        };
        match result {
            Ok(()) => {
                tx.commit().await.map_err(internal)?;
                Ok(WaitlistResponse::Done)
            }
            Err(AppointmentError::NotFound) => Ok(missing()),
            Err(e) if e.is_internal() => Err(internal(e)),
            Err(e) => Ok(WaitlistResponse::Invalid(body_of(&e))),
        }
    }
}
