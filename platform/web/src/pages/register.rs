//! Patient self sign-up, when the clinic has turned it on.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::accounts::{self, AccountError};

use super::auth::Message;
use super::invite::chrono_tz_of;
use super::patient_form::{self, DateParts, PatientFields};
use super::{Chrome, FormErrors, chrome, db, render, render_status, self_signup_enabled};
use super::{as_too_many, too_many_words, within_limits};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::limits;
use crate::{AppState, internal};

#[derive(Default, serde::Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    dob_day: String,
    #[serde(default)]
    dob_month: String,
    #[serde(default)]
    dob_year: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

#[derive(Template)]
#[template(path = "register.html")]
struct Register {
    chrome: Chrome,
    f: RegisterForm,
    errors: FormErrors,
}

#[handler]
pub async fn page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let chrome = chrome(req, state, "login").await?;
    if !self_signup_enabled(req, state, &chrome.tenant).await? {
        return Err(poem::error::NotFoundError.into());
    }
    Ok(render(&Register {
        chrome,
        f: RegisterForm::default(),
        errors: FormErrors::default(),
    })?
    .into_response())
}

#[handler]
pub async fn submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<RegisterForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let chrome = chrome(req, state, "login").await?;
    if !self_signup_enabled(req, state, &chrome.tenant).await? {
        return Err(poem::error::NotFoundError.into());
    }
    let now = state.clock.now();
    let today = now
        .with_timezone(&chrono_tz_of(&chrome.tenant))
        .date_naive();
    let parsed = patient_form::parse(
        &PatientFields {
            given_name: &f.given_name,
            family_name: &f.family_name,
            dob: DateParts {
                day: &f.dob_day,
                month: &f.dob_month,
                year: &f.dob_year,
            },
            email: &f.email,
            phone: &f.phone,
        },
        today,
        true,
    );
    let new = match parsed {
        Ok(n) => n,
        Err(e) => {
            return render_status(
                &Register {
                    chrome,
                    f,
                    errors: e,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let target = format!(
        "{}:{}",
        chrome.tenant.id(),
        new.email.as_ref().map_or("", |e| e.as_str())
    );
    if let Err(wait) = within_limits(
        req,
        state,
        limits::REGISTER_PER_ADDRESS,
        &[(limits::REGISTER_PER_EMAIL, &target)],
    )
    .await
    {
        let refusal = render_status(
            &Register {
                chrome,
                f,
                errors: FormErrors::one("given_name", too_many_words(wait)),
            },
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        return Ok(as_too_many(refusal, wait));
    }
    let ctx = audit_ctx(req, None);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match accounts::self_register(&mut tx, &new, &ctx, now).await {
        Ok(_) => {}
        // Lost a race with another sign-up for the same address: same answer as success.
        Err(AccountError::EmailTaken) => {}
        Err(e) => return Err(internal(e)),
    }
    tx.commit().await.map_err(db)?;
    let email = new.email.map(|e| e.to_string()).unwrap_or_default();
    Ok(render(&Message {
        chrome,
        heading: "Check your email",
        body: format!("We sent a link to {email}. Open it to confirm your address and choose a password. It works once, for 7 days."),
        action: None,
    })?
    .into_response())
}
