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
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;

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
    let (chrome, me) = match require_user(req, state, "account").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let Some(patient) = me.patient() else {
        return Err(poem::error::NotFoundError.into());
    };
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
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
    Ok(render(&PreferencesPage {
        chrome,
        prefs,
        phone,
        notice: q.done.map(|_| "Your reminder choices are saved."),
        error: None,
        quiet: quiet_hours_label(),
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
    let (chrome, me) = match require_user(req, state, "account").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let Some(patient) = me.patient() else {
        return Err(poem::error::NotFoundError.into());
    };
    let raw_phone = field(&f, "phone").trim().to_owned();
    let phone = if raw_phone.is_empty() {
        Ok(None)
    } else {
        PhoneE164::parse(&raw_phone).map(Some).map_err(|e| e.0)
    };
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let error = match phone {
        Err(e) => e,
        Ok(phone) => {
            let update = PreferencesUpdate {
                email: field(&f, "email") == "on",
                sms: field(&f, "sms") == "on",
                phone,
            };
            match preferences::set(&mut tx, &patient, &ctx, &update, now).await {
                Ok(_) => {
                    tx.commit().await.map_err(db)?;
                    return Ok(see_other("/account/reminders?done=1"));
                }
                Err(PreferencesError::Database(e)) => return Err(db(e)),
                Err(e) => e.to_string(),
            }
        }
    };
    // Show the page again with what is stored and what the patient typed.
    drop(tx);
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let prefs = preferences::get(&mut tx, &patient, &ctx, now)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    render_status(
        &PreferencesPage {
            chrome,
            prefs,
            phone: raw_phone,
            notice: None,
            error: Some(error),
            quiet: quiet_hours_label(),
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}
