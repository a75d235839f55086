//! The patient's reminder choices (`/account/reminders`): email, text, and the mobile number.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::scheduling::preferences::{
    self, PreferencesError, PreferencesUpdate, ReminderPreferences,
};
use portal_domain::scheduling::reminders::quiet_hours_label;
use portal_domain::values::PhoneE164;

use super::{Chrome, Gate, db, render, render_status, require_user, see_other};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;
use crate::{AppState, texting};
use portal_domain::audit::AuditContext;
use portal_domain::identity::scope::{PatientScope, SignedIn};
use portal_domain::phone;

#[derive(Template)]
#[template(path = "reminder_preferences.html")]
struct PreferencesPage {
    chrome: Chrome,
    prefs: ReminderPreferences,
    /// What the patient typed, kept on an error.
    phone: String,
    notice: Option<&'static str>,
    error: Option<String>,
    quiet: String,
    /// The phone replied STOP to this clinic's number.
    sms_opted_out: bool,
}

/// A signed-in patient (the route's policy already refused anyone else), or where to send
/// the browser instead.
async fn patient_gate(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn, PatientScope), Response>> {
    match require_user(req, state, "account").await? {
        Gate::In(c, u) => match u.patient() {
            Some(p) => Ok(Ok((c, u, p))),
            None => Err(poem::error::NotFoundError.into()),
        },
        Gate::Out(r) => Ok(Err(r)),
    }
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

#[handler]
pub async fn preferences_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let (chrome, me, patient) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let prefs = preferences::get(
        &mut tx,
        &patient,
        &audit_ctx(req, Some(&me)),
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let phone = prefs.phone.clone().unwrap_or_default();
    let sms_opted_out = texting::stopped(state, &chrome.tenant, prefs.phone.as_deref()).await?;
    let notice = match q.done.as_deref() {
        Some("verified") => Some("Your mobile number is confirmed."),
        Some("code") => Some("We texted you a new code."),
        Some(_) => Some("Your reminder choices are saved."),
        None => None,
    };
    Ok(render(&PreferencesPage {
        chrome,
        prefs,
        phone,
        notice,
        error: None,
        quiet: quiet_hours_label(),
        sms_opted_out,
    })?
    .into_response())
}

#[handler]
pub async fn preferences_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, patient) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let raw_phone = field(&f, "phone").trim().to_owned();
    let phone = if raw_phone.is_empty() {
        Ok(None)
    } else {
        PhoneE164::parse(&raw_phone).map(Some).map_err(|e| e.0)
    };
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let error = match phone {
        Err(e) => e,
        Ok(phone) => {
            let update = PreferencesUpdate {
                email: field(&f, "email") == "on",
                sms: field(&f, "sms") == "on",
                phone,
            };
            if let Err(wait) = crate::api::may_change_number(
                state,
                &chrome.tenant,
                &mut tx,
                &patient,
                update.phone.as_ref(),
            )
            .await?
            {
                drop(tx);
                let page = again(
                    req,
                    state,
                    chrome,
                    &patient,
                    &ctx,
                    Some(raw_phone),
                    (
                        super::too_many_words(crate::limits::RetryAfter(wait)),
                        StatusCode::TOO_MANY_REQUESTS,
                    ),
                )
                .await?;
                return Ok(page
                    .with_header("retry-after", wait.to_string())
                    .into_response());
            }
            match preferences::set(&mut tx, &patient, &ctx, &update, now).await {
                Ok(saved) => {
                    tx.commit().await.map_err(db)?;
                    crate::api::after_save(state, &chrome.tenant, &saved).await?;
                    return Ok(see_other("/account/reminders?done=1"));
                }
                Err(PreferencesError::Database(e)) => return Err(db(e)),
                Err(e) => e.to_string(),
            }
        }
    };
    // Show the page again with what is stored and what the patient typed.
    drop(tx);
    again(
        req,
        state,
        chrome,
        &patient,
        &ctx,
        Some(raw_phone),
        (error, StatusCode::UNPROCESSABLE_ENTITY),
    )
    .await
}

/// The page again, with what is stored (and what the patient typed, if given) and a message
/// about what went wrong.
async fn again(
    req: &poem::Request,
    state: &AppState,
    chrome: Chrome,
    patient: &PatientScope,
    ctx: &AuditContext,
    typed: Option<String>,
    (error, status): (String, StatusCode),
) -> poem::Result<Response> {
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let prefs = preferences::get(&mut tx, patient, ctx, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let phone = typed.unwrap_or_else(|| prefs.phone.clone().unwrap_or_default());
    let sms_opted_out = texting::stopped(state, &chrome.tenant, prefs.phone.as_deref()).await?;
    render_status(
        &PreferencesPage {
            chrome,
            prefs,
            phone,
            notice: None,
            error: Some(error),
            quiet: quiet_hours_label(),
            sms_opted_out,
        },
        status,
    )
}

/// `POST /account/reminders/verify`: the code texted to the new number.
#[handler]
pub async fn verify_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, patient) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let done = phone::verify(&mut tx, &patient, field(&f, "code"), &ctx, now).await;
    tx.commit().await.map_err(db)?;
    let error = match done {
        Ok(()) => return Ok(see_other("/account/reminders?done=verified")),
        Err(e @ (phone::PhoneError::Database(_) | phone::PhoneError::Enqueue(_))) => {
            return Err(db(e));
        }
        Err(e) => e.to_string(),
    };
    again(
        req,
        state,
        chrome,
        &patient,
        &ctx,
        None,
        (error, StatusCode::UNPROCESSABLE_ENTITY),
    )
    .await
}

/// `POST /account/reminders/verify/resend`: a new code, at most 3 an hour.
#[handler]
pub async fn resend_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, patient) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (error, status, wait) =
        match crate::api::resend_phone_code(req, state, &chrome.tenant, &patient).await? {
            Ok(()) => return Ok(see_other("/account/reminders?done=code")),
            Err(crate::api::Resend::TooMany(wait)) => (
                super::too_many_words(crate::limits::RetryAfter(wait)),
                StatusCode::TOO_MANY_REQUESTS,
                Some(wait),
            ),
            Err(crate::api::Resend::Refused(e)) => {
                (e.to_string(), StatusCode::UNPROCESSABLE_ENTITY, None)
            }
        };
    let ctx = audit_ctx(req, Some(&me));
    let page = again(req, state, chrome, &patient, &ctx, None, (error, status)).await?;
    Ok(match wait {
        Some(w) => page
            .with_header("retry-after", w.to_string())
            .into_response(),
        None => page,
    })
}
