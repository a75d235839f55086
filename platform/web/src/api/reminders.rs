//! Reminders over JSON: a patient's own channel choices, and, for staff, the messages that
//! could not be delivered.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use portal_domain::scheduling::preferences::{self, PreferencesUpdate, ReminderPreferences};
use portal_domain::undelivered;
use portal_domain::values::PhoneE164;

use super::ApiTags;
use super::caller::{Caller, caller, csrf, unauthorized};
use super::error::ErrorBody;
use crate::auth::audit_ctx;
use crate::texting;
use crate::{AppState, internal};
use portal_domain::phone;

/// Why a new code was not sent.
pub(crate) enum Resend {
    TooMany(i64),
    Refused(phone::PhoneError),
}

/// Whether a save may change the number: a new number is texted a code, and codes go at most
/// 3 an hour per patient (`Err(wait)` in seconds), whether asked for again or by changing the
/// number — or anyone could text codes to strangers by changing numbers.
pub(crate) async fn may_change_number(
    state: &AppState,
    tenant: &portal_tenants::Tenant,
    tx: &mut portal_tenants::TenantTx,
    p: &portal_domain::identity::scope::PatientScope,
    new: Option<&PhoneE164>,
) -> poem::Result<Result<(), i64>> {
    let Some(new) = new else { return Ok(Ok(())) };
    let on_file = preferences::phone_on_file(tx, p).await.map_err(internal)?;
    if on_file.as_deref() == Some(new.as_str()) {
        return Ok(Ok(()));
    }
    let subject = format!("{}:{}", tenant.id(), p.patient_id());
    Ok(state
        .limiter
        .check(
            &[(crate::limits::PHONE_CODE_PER_PATIENT, &subject)],
            state.clock.now(),
        )
        .await
        .map_err(|w| w.0))
}

/// After a save: the patient's explicit "texts on" undoes an earlier STOP to this clinic's
/// number — but only for a number they have confirmed is theirs, so nobody can lift a
/// stranger's STOP by typing their number.
pub(crate) async fn after_save(
    state: &AppState,
    tenant: &portal_tenants::Tenant,
    saved: &ReminderPreferences,
) -> poem::Result<()> {
    if saved.sms && saved.phone_verified {
        texting::resume(state, tenant, saved.phone.as_deref()).await?;
    }
    Ok(())
}

/// Queues a new code for the patient's unconfirmed number, at most 3 an hour per patient.
pub(crate) async fn resend(
    req: &poem::Request,
    state: &AppState,
    tenant: &portal_tenants::Tenant,
    p: &portal_domain::identity::scope::PatientScope,
) -> poem::Result<Result<(), Resend>> {
    let subject = format!("{}:{}", tenant.id(), p.patient_id());
    if let Err(wait) = state
        .limiter
        .check(
            &[(crate::limits::PHONE_CODE_PER_PATIENT, &subject)],
            state.clock.now(),
        )
        .await
    {
        return Ok(Err(Resend::TooMany(wait.0)));
    }
    let mut tx = crate::tx::begin(req, &state.tenant_db, tenant)
        .await
        .map_err(internal)?;
    match phone::request_code(&mut tx, p).await {
        Ok(()) => {
            tx.commit().await.map_err(internal)?;
            Ok(Ok(()))
        }
        Err(e @ (phone::PhoneError::Database(_) | phone::PhoneError::Enqueue(_))) => {
            Err(internal(e))
        }
        Err(e) => Ok(Err(Resend::Refused(e))),
    }
}

/// How the signed-in patient wants to be reminded of visits.
#[derive(Debug, Object)]
pub struct PreferencesOut {
    pub email: bool,
    pub sms: bool,
    /// Where email reminders go; the clinic keeps it.
    pub email_address: Option<String>,
    /// Mobile number for texts, E.164 (`+15551234567`).
    pub phone: Option<String>,
    /// The number is confirmed (texts go only to a confirmed number). A new number gets a
    /// code by text; send it to `POST /v1/me/phone-verification`.
    pub phone_verified: bool,
    /// The patient replied STOP; setting `sms` to true again resumes texts.
    pub sms_opted_out: bool,
}

impl PreferencesOut {
    fn of(p: ReminderPreferences, sms_opted_out: bool) -> Self {
        Self {
            email: p.email,
            sms: p.sms,
            email_address: p.email_address,
            phone: p.phone,
            phone_verified: p.phone_verified,
            sms_opted_out,
        }
    }
}

#[derive(Debug, Object)]
pub struct PhoneCode {
    /// The 6-digit code from the text message.
    pub code: String,
}

#[derive(ApiResponse)]
pub enum PhoneVerificationResponse {
    /// The number is confirmed.
    #[oai(status = 204)]
    Confirmed,
    /// A new code is on its way.
    #[oai(status = 202)]
    Sent,
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Codes `wrong_code`, `code_expired`, `no_code`, `no_number`.
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
    /// Codes are sent at most 3 times an hour (code `too_many_requests`).
    #[oai(status = 429)]
    TooMany(Json<ErrorBody>, #[oai(header = "Retry-After")] String),
}

#[derive(Debug, Object)]
pub struct PreferencesBody {
    pub email: bool,
    pub sms: bool,
    /// Mobile number; omitted or empty removes it (then `sms` must be false).
    pub phone: Option<String>,
}

#[derive(Debug, Object)]
pub struct UndeliveredOut {
    pub job_id: String,
    /// What the message was, in words.
    pub what: String,
    pub patient_id: Option<String>,
    pub who: Option<String>,
    pub appointment_id: Option<String>,
    pub visit_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    /// Why it failed: a category and code, never message content.
    pub reason: Option<String>,
    pub failed_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum PreferencesResponse {
    #[oai(status = 200)]
    Ok(Json<PreferencesOut>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Missing `X-CSRF-Token` for a cookie session (code `csrf`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Codes `invalid_phone`, `sms_needs_phone`, `email_needs_address`.
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
    /// A new number is texted a code, at most 3 an hour (code `too_many_requests`).
    #[oai(status = 429)]
    TooMany(Json<ErrorBody>, #[oai(header = "Retry-After")] String),
}

#[derive(ApiResponse)]
pub enum UndeliveredResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<UndeliveredOut>>),
    /// Not signed in as staff (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

pub struct RemindersApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Reminders")]
impl RemindersApi {
    /// My reminder choices
    ///
    /// The signed-in patient's reminder channels and mobile number.
    #[oai(
        path = "/me/reminder-preferences",
        method = "get",
        operation_id = "getReminderPreferences"
    )]
    async fn get_preferences(
        &self,
        req: &Request,
        state: Data<&AppState>,
    ) -> poem::Result<PreferencesResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(PreferencesResponse::Unauthorized(unauthorized()));
        };
        let Some(p) = me.patient() else {
            return Ok(PreferencesResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let prefs = preferences::get(&mut tx, &p, &audit_ctx(req, Some(&me)), state.clock.now())
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        let stopped = texting::stopped(&state, &tenant, prefs.phone.as_deref()).await?;
        Ok(PreferencesResponse::Ok(Json(PreferencesOut::of(
            prefs, stopped,
        ))))
    }

    /// Change my reminder choices
    ///
    /// Applies to every reminder sent from now on, including those already scheduled. Turning
    /// `sms` on after a STOP reply resumes texts.
    #[oai(
        path = "/me/reminder-preferences",
        method = "put",
        operation_id = "setReminderPreferences"
    )]
    async fn set_preferences(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<PreferencesBody>,
    ) -> poem::Result<PreferencesResponse> {
        let (tenant, me) = match caller(req, &state, true).await? {
            Caller::In(t, m) => (t, m),
            Caller::Out => return Ok(PreferencesResponse::Unauthorized(unauthorized())),
            Caller::Csrf => return Ok(PreferencesResponse::Forbidden(csrf())),
        };
        let Some(p) = me.patient() else {
            return Ok(PreferencesResponse::Unauthorized(unauthorized()));
        };
        let phone = match body.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => match PhoneE164::parse(raw) {
                Ok(p) => Some(p),
                Err(e) => {
                    return Ok(PreferencesResponse::Invalid(ErrorBody::new(
                        "invalid_phone",
                        e.0,
                    )));
                }
            },
        };
        let update = PreferencesUpdate {
            email: body.email,
            sms: body.sms,
            phone,
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        if let Err(wait) =
            may_change_number(&state, &tenant, &mut tx, &p, update.phone.as_ref()).await?
        {
            return Ok(PreferencesResponse::TooMany(
                ErrorBody::new(
                    "too_many_requests",
                    "codes are sent at most 3 times an hour; try the new number later",
                ),
                wait.to_string(),
            ));
        }
        match preferences::set(
            &mut tx,
            &p,
            &audit_ctx(req, Some(&me)),
            &update,
            state.clock.now(),
        )
        .await
        {
            Ok(prefs) => {
                tx.commit().await.map_err(internal)?;
                after_save(&state, &tenant, &prefs).await?;
                let stopped = texting::stopped(&state, &tenant, prefs.phone.as_deref()).await?;
                Ok(PreferencesResponse::Ok(Json(PreferencesOut::of(
                    prefs, stopped,
                ))))
            }
            Err(preferences::PreferencesError::Database(e)) => Err(internal(e)),
            Err(e) => Ok(PreferencesResponse::Invalid(ErrorBody::new(
                e.code(),
                e.to_string(),
            ))),
        }
    }

    /// Confirm my mobile number
    ///
    /// Send the 6-digit code texted to the number. Five wrong tries or 15 minutes spend it.
    #[oai(
        path = "/me/phone-verification",
        method = "post",
        operation_id = "verifyPhone"
    )]
    async fn verify_phone(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<PhoneCode>,
    ) -> poem::Result<PhoneVerificationResponse> {
        let (tenant, me) = match caller(req, &state, true).await? {
            Caller::In(t, m) => (t, m),
            Caller::Out => return Ok(PhoneVerificationResponse::Unauthorized(unauthorized())),
            Caller::Csrf => return Ok(PhoneVerificationResponse::Forbidden(csrf())),
        };
        let Some(p) = me.patient() else {
            return Ok(PhoneVerificationResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let done = phone::verify(
            &mut tx,
            &p,
            &body.code,
            &audit_ctx(req, Some(&me)),
            state.clock.now(),
        )
        .await;
        // A wrong try is counted even though the answer is an error.
        tx.commit().await.map_err(internal)?;
        match done {
            Ok(()) => Ok(PhoneVerificationResponse::Confirmed),
            Err(e @ (phone::PhoneError::Database(_) | phone::PhoneError::Enqueue(_))) => {
                Err(internal(e))
            }
            Err(e) => Ok(PhoneVerificationResponse::Invalid(ErrorBody::new(
                e.code(),
                e.to_string(),
            ))),
        }
    }

    /// Text me a new code
    ///
    /// Sends a new code to the patient's unconfirmed number (at most 3 an hour).
    #[oai(
        path = "/me/phone-verification/resend",
        method = "post",
        operation_id = "resendPhoneCode"
    )]
    async fn resend_code(
        &self,
        req: &Request,
        state: Data<&AppState>,
    ) -> poem::Result<PhoneVerificationResponse> {
        let (tenant, me) = match caller(req, &state, true).await? {
            Caller::In(t, m) => (t, m),
            Caller::Out => return Ok(PhoneVerificationResponse::Unauthorized(unauthorized())),
            Caller::Csrf => return Ok(PhoneVerificationResponse::Forbidden(csrf())),
        };
        let Some(p) = me.patient() else {
            return Ok(PhoneVerificationResponse::Unauthorized(unauthorized()));
        };
        match resend(req, &state, &tenant, &p).await? {
            Ok(()) => Ok(PhoneVerificationResponse::Sent),
            Err(Resend::TooMany(wait)) => Ok(PhoneVerificationResponse::TooMany(
                ErrorBody::new(
                    "too_many_requests",
                    "codes are sent at most 3 times an hour",
                ),
                wait.to_string(),
            )),
            Err(Resend::Refused(e)) => Ok(PhoneVerificationResponse::Invalid(ErrorBody::new(
                e.code(),
                e.to_string(),
            ))),
        }
    }

    /// Messages that could not be sent
    ///
    /// Staff only: reminders, notices and offers of the last 30 days that ran out of attempts
    /// or were refused for good, newest first, so someone can reach the patient another way.
    #[oai(
        path = "/undelivered-messages",
        method = "get",
        operation_id = "listUndeliveredMessages"
    )]
    async fn undelivered(
        &self,
        req: &Request,
        state: Data<&AppState>,
    ) -> poem::Result<UndeliveredResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(UndeliveredResponse::Unauthorized(unauthorized()));
        };
        let Some(staff) = me.scheduling() else {
            return Ok(UndeliveredResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let list = undelivered::list(
            &mut tx,
            &staff,
            &audit_ctx(req, Some(&me)),
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(UndeliveredResponse::Ok(Json(
            list.into_iter()
                .map(|u| UndeliveredOut {
                    job_id: u.job_id.to_string(),
                    what: u.what,
                    patient_id: u.patient_id.map(|p| p.to_string()),
                    who: u.who,
                    appointment_id: u.appointment_id.map(|a| a.to_string()),
                    visit_at: u.visit_at,
                    attempts: u.attempts,
                    reason: u.reason,
                    failed_at: u.failed_at,
                })
                .collect(),
        )))
    }
}
