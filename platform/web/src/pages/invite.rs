//! Accepting an invitation: the emailed link, then a form to set a password (and, for
//! patients, confirm their date of birth). The new account lands signed in.

use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::links::{self, LinkInfo, LinkPurpose, LinkState, RedeemError};
use portal_domain::identity::signin;
use portal_domain::values::DateOfBirth;

use super::auth::{
    PasswordForm, SetPassword, landing, link_problem, new_password, stash_link, stashed_link,
};
use super::patient_form::DateParts;
use super::{Chrome, FormErrors, chrome, clinic_or_404, db, render, render_status, see_other};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::{AppState, internal};

#[handler]
pub async fn open_link(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(token): Path<String>,
) -> poem::Result<Response> {
    clinic_or_404(req)?;
    Ok(stash_link(
        state,
        "invite",
        &token,
        "/invite",
        7 * 24 * 3600,
    ))
}

/// The date of birth as typed: the three boxes, or an ISO date split into them.
fn typed_dob(f: &PasswordForm) -> (String, String, String) {
    if f.dob_day.is_empty() && f.dob_month.is_empty() && f.dob_year.is_empty() {
        let mut parts = f.date_of_birth.trim().splitn(3, '-');
        let (y, m, d) = (parts.next(), parts.next(), parts.next());
        return (
            d.unwrap_or_default().to_owned(),
            m.unwrap_or_default().to_owned(),
            y.unwrap_or_default().to_owned(),
        );
    }
    (f.dob_day.clone(), f.dob_month.clone(), f.dob_year.clone())
}

fn form(
    chrome: Chrome,
    info: &LinkInfo,
    dob: (String, String, String),
    error: Option<String>,
) -> SetPassword {
    let dob_errors = match (&error, info.asks_date_of_birth) {
        (Some(e), true) if e.contains("date of birth") => FormErrors::one("dob_day", e.clone()),
        _ => FormErrors::default(),
    };
    SetPassword {
        chrome,
        heading: "Set up your account",
        intro: if info.asks_date_of_birth {
            "Confirm your date of birth and choose a password."
        } else {
            "Choose a password for your account."
        },
        action: "/invite",
        submit: "Create my account",
        email: info.email.to_string(),
        asks_current: false,
        asks_dob: info.asks_date_of_birth,
        dob,
        error,
        dob_errors,
    }
}

#[handler]
pub async fn page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let chrome = chrome(req, state, "login").await?;
    let token = stashed_link(req, state, "invite").unwrap_or_default();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let link = links::inspect(&mut tx, &token, LinkPurpose::Invitation, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    match link {
        LinkState::Valid(info) => {
            Ok(render(&form(chrome, &info, Default::default(), None))?.into_response())
        }
        other => link_problem(chrome, &other, "invitation"),
    }
}

#[handler]
pub async fn submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<PasswordForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let chrome = chrome(req, state, "login").await?;
    let token = stashed_link(req, state, "invite").unwrap_or_default();
    let now = state.clock.now();
    let tenant = chrome.tenant.clone();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
        .await
        .map_err(db)?;
    let info = match links::inspect(&mut tx, &token, LinkPurpose::Invitation, now)
        .await
        .map_err(db)?
    {
        LinkState::Valid(info) => info,
        other => return link_problem(chrome, &other, "invitation"),
    };
    let today = now.with_timezone(&chrono_tz_of(&tenant)).date_naive();
    let dob = if info.asks_date_of_birth {
        let typed = typed_dob(&f);
        let parsed = DateParts {
            day: &typed.0,
            month: &typed.1,
            year: &typed.2,
        }
        .parse()
        .map_err(str::to_owned)
        .and_then(|d| DateOfBirth::parse(&d.to_string(), today).map_err(|e| e.to_string()));
        match parsed {
            Ok(d) => Some(d),
            Err(e) => {
                return render_status(
                    &form(chrome, &info, typed, Some(e)),
                    StatusCode::UNPROCESSABLE_ENTITY,
                );
            }
        }
    } else {
        None
    };
    let pw = match new_password(&f, &info.email) {
        Ok(pw) => pw,
        Err(e) => {
            return render_status(
                &form(chrome, &info, typed_dob(&f), Some(e)),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let ctx = audit_ctx(req, None);
    match links::accept_invitation(&mut tx, &token, dob, &pw, &ctx, now).await {
        Ok(user) => {
            let new = signin::start_for(&mut tx, user, &ctx, now)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            let mut resp = see_other(new.as_ref().map_or("/login", |n| landing(n.signed_in.role)));
            if let Some(n) = new {
                let c = state.cookies.set(
                    state.cookies.session_name(),
                    n.token.expose(),
                    Some(portal_domain::identity::SESSION_ABSOLUTE.num_seconds()),
                );
                resp.headers_mut()
                    .append("set-cookie", c.parse().map_err(internal)?);
            }
            let clear = state.cookies.clear(state.cookies.link_name());
            resp.headers_mut()
                .append("set-cookie", clear.parse().map_err(internal)?);
            Ok(resp)
        }
        Err(RedeemError::DateOfBirthMismatch { attempts_left }) => {
            // The failed check must count, so this transaction commits.
            tx.commit().await.map_err(db)?;
            let msg = if attempts_left == 0 {
                "The date of birth does not match our records. This invitation can no longer be used; ask the clinic for a new one.".to_owned()
            } else {
                format!(
                    "The date of birth does not match our records. {attempts_left} attempt(s) left."
                )
            };
            render_status(
                &form(chrome, &info, typed_dob(&f), Some(msg)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(RedeemError::NotValid(s)) => link_problem(chrome, &s, "invitation"),
        Err(e) => Err(internal(e)),
    }
}

/// The clinic's time zone (for "today" when checking a date of birth).
pub(crate) fn chrono_tz_of(tenant: &portal_tenants::Tenant) -> chrono_tz::Tz {
    tenant.time_zone().parse().unwrap_or(chrono_tz::UTC)
}
