//! Signing in and out, forgotten passwords, and changing a password.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::links::{self, LinkPurpose, LinkState, RedeemError};
use portal_domain::identity::password::NewPassword;
use portal_domain::identity::scope::Stage;
use portal_domain::identity::signin::{self, ChangePasswordError, SignInOutcome};
use portal_domain::values::EmailAddress;

use super::{
    Chrome, Gate, chrome, db, render, render_status, require_user, see_other, self_signup_enabled,
};
use super::{as_too_many, too_many_words, within_limits};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::limits;
use crate::request::cookie;
use crate::{AppState, internal};

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    chrome: Chrome,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
    self_signup: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub body: String,
    pub action: Option<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct Forgot {
    chrome: Chrome,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "set_password.html")]
pub(crate) struct SetPassword {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub intro: &'static str,
    pub action: &'static str,
    pub submit: &'static str,
    pub email: String,
    pub asks_current: bool,
    pub asks_dob: bool,
    /// The date of birth as typed, in its three boxes.
    pub dob: (String, String, String),
    pub error: Option<String>,
    /// The date-of-birth boxes take their error from `error` (the page's only problem).
    pub dob_errors: super::FormErrors,
}

/// Where a person goes after signing in.
pub(crate) fn landing(role: portal_domain::identity::Role) -> &'static str {
    if role.is_staff() {
        super::home::start_page(role)
    } else {
        "/"
    }
}

#[handler]
pub async fn login_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let chrome = chrome(req, state, "login").await?;
    if let Some(u) = &chrome.user {
        return Ok(see_other(landing(u.role)));
    }
    let self_signup = self_signup_enabled(req, state, &chrome.tenant).await?;
    Ok(render(&Login {
        chrome,
        email: String::new(),
        error: None,
        notice: None,
        self_signup,
    })?
    .into_response())
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub async fn login_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<LoginForm>,
) -> poem::Result<Response> {
    check_form(req, &form.csrf)?;
    let chrome = chrome(req, state, "login").await?;
    let ctx = audit_ctx(req, None);
    let outcome = signin::sign_in(
        &state.tenant_db,
        &chrome.tenant,
        &form.email,
        &form.password,
        &ctx,
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    let (status, error, retry_after) = match outcome {
        SignInOutcome::SignedIn(new) => {
            let cookie = state.cookies.set(
                state.cookies.session_name(),
                new.token.expose(),
                Some(portal_domain::identity::SESSION_ABSOLUTE.num_seconds()),
            );
            let next = match new.signed_in.stage {
                Stage::Code => "/login/code",
                Stage::Enrol => "/account/security",
                Stage::Full => landing(new.signed_in.role),
            };
            return Ok(see_other(next)
                .with_header("set-cookie", cookie)
                .into_response());
        }
        SignInOutcome::Failed => (
            StatusCode::UNAUTHORIZED,
            "That email and password do not match an account. Check both, or reset your password."
                .to_owned(),
            None,
        ),
        SignInOutcome::Throttled { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many attempts. Try again in {} — or reset your password by email, which always works.",
                human_wait(retry_after)
            ),
            Some(retry_after.num_seconds().max(1)),
        ),
        SignInOutcome::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            "Many people are signing in right now. Try again in a moment.".to_owned(),
            Some(1),
        ),
    };
    let self_signup = self_signup_enabled(req, state, &chrome.tenant).await?;
    let page = render_status(
        &Login {
            chrome,
            email: form.email.trim().to_owned(),
            error: Some(error),
            notice: None,
            self_signup,
        },
        status,
    )?;
    Ok(match retry_after {
        Some(s) => page
            .with_header("retry-after", s.to_string())
            .into_response(),
        None => page,
    })
}

pub(crate) fn human_wait(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(1);
    if secs < 90 {
        format!("{secs} seconds")
    } else {
        format!("{} minutes", (secs + 59) / 60)
    }
}

#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub async fn logout(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<CsrfOnly>,
) -> poem::Result<Response> {
    check_form(req, &form.csrf)?;
    let mut chrome = chrome(req, state, "login").await?;
    chrome.user = None;
    // Any stage: a sign-in half-way through two-step sign-in is ended too, not just forgotten.
    let who = crate::auth::any_stage(req, state, &chrome.tenant).await?;
    if let Some((me, _)) = who {
        let ctx = audit_ctx(req, Some(&me));
        let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
            .await
            .map_err(db)?;
        signin::sign_out(&mut tx, &me, &ctx, state.clock.now())
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
    }
    let self_signup = self_signup_enabled(req, state, &chrome.tenant).await?;
    Ok(render(&Login {
        chrome,
        email: String::new(),
        error: None,
        notice: Some("You have signed out."),
        self_signup,
    })?
    .with_header(
        "set-cookie",
        state.cookies.clear(state.cookies.session_name()),
    )
    .into_response())
}

#[handler]
pub async fn forgot_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let chrome = chrome(req, state, "login").await?;
    Ok(render(&Forgot {
        chrome,
        email: String::new(),
        error: None,
    })?
    .into_response())
}

#[derive(serde::Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// Always answers the same way, whether or not the account exists.
#[handler]
pub async fn forgot_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<ForgotForm>,
) -> poem::Result<Response> {
    check_form(req, &form.csrf)?;
    let chrome = chrome(req, state, "login").await?;
    let email = match EmailAddress::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return render_status(
                &Forgot {
                    chrome,
                    email: form.email,
                    error: Some(e.to_string()),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let target = format!("{}:{}", chrome.tenant.id(), email.as_str());
    if let Err(wait) = within_limits(
        req,
        state,
        limits::FORGOT_PER_ADDRESS,
        &[(limits::FORGOT_PER_EMAIL, &target)],
    )
    .await
    {
        let refusal = render_status(
            &Forgot {
                chrome,
                email: form.email,
                error: Some(too_many_words(wait)),
            },
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        return Ok(as_too_many(refusal, wait));
    }
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    links::request_reset(&mut tx, &email)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(db)?;
    Ok(render(&Message {
        chrome,
        heading: "Check your email",
        body: format!(
            "If {email} belongs to an account here, a link to choose a new password is on its way. It works once, for 30 minutes."
        ),
        action: Some(("/login", "Back to sign in")),
    })?
    .into_response())
}

/// `/reset/{token}` and `/invite/{token}` (from emails) keep the token out of the address bar,
/// history and logs: it moves into a short-lived cookie, and the browser goes to a clean URL.
pub(crate) fn stash_link(
    state: &AppState,
    kind: &str,
    token: &str,
    to: &str,
    ttl: i64,
) -> Response {
    // Anything that is not token-shaped is kept as a marker, so the next page says "not valid"
    // (and nothing odd ever reaches a header).
    let token = if portal_domain::identity::tokens::looks_like_token(token) {
        token
    } else {
        "invalid"
    };
    let value = format!("{kind}.{token}");
    see_other(to)
        .with_header(
            "set-cookie",
            state
                .cookies
                .set(state.cookies.link_name(), &value, Some(ttl)),
        )
        .into_response()
}

pub(crate) fn stashed_link(req: &Request, state: &AppState, kind: &str) -> Option<String> {
    cookie(req, state.cookies.link_name())
        .and_then(|v| v.strip_prefix(&format!("{kind}.")).map(str::to_owned))
}

#[handler]
pub async fn reset_link(
    req: &Request,
    Data(state): Data<&AppState>,
    poem::web::Path(token): poem::web::Path<String>,
) -> poem::Result<Response> {
    super::clinic_or_404(req)?;
    Ok(stash_link(state, "reset", &token, "/password/reset", 1800))
}

/// The page for a link that cannot be used, saying why.
pub(crate) fn link_problem(
    chrome: Chrome,
    state: &LinkState,
    what: &str,
) -> poem::Result<Response> {
    let body = match state {
        LinkState::Used => format!("This {what} link has already been used. Each link works once."),
        LinkState::Expired => format!("This {what} link has expired."),
        _ => format!(
            "This {what} link is not valid. Check that you opened the whole link from the email."
        ),
    };
    let (heading, action) = if what == "invitation" {
        (
            "This invitation cannot be used",
            ("/login", "Go to sign in"),
        )
    } else {
        (
            "This reset link cannot be used",
            ("/password/forgot", "Request a new link"),
        )
    };
    render_status(
        &Message {
            chrome,
            heading,
            body: if what == "invitation" {
                format!("{body} Ask the clinic to send you a new invitation.")
            } else {
                body
            },
            action: Some(action),
        },
        StatusCode::GONE,
    )
}

#[handler]
pub async fn reset_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let chrome = chrome(req, state, "login").await?;
    let token = stashed_link(req, state, "reset").unwrap_or_default();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let link = links::inspect(
        &mut tx,
        &token,
        LinkPurpose::PasswordReset,
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let LinkState::Valid(info) = link else {
        return link_problem(chrome, &link, "reset");
    };
    Ok(render(&reset_form(chrome, info.email.to_string(), None))?.into_response())
}

fn reset_form(chrome: Chrome, email: String, error: Option<String>) -> SetPassword {
    SetPassword {
        chrome,
        heading: "Choose a new password",
        intro: "Signing in with the new password works at once; every device signed in to this account is signed out.",
        action: "/password/reset",
        submit: "Save the new password",
        email,
        asks_current: false,
        asks_dob: false,
        dob: Default::default(),
        error,
        dob_errors: super::FormErrors::default(),
    }
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub current_password: String,
    /// An ISO date (`YYYY-MM-DD`), or the three boxes below.
    #[serde(default)]
    pub date_of_birth: String,
    #[serde(default)]
    pub dob_day: String,
    #[serde(default)]
    pub dob_month: String,
    #[serde(default)]
    pub dob_year: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub confirm: String,
}

/// Parses a new password and its confirmation.
pub(crate) fn new_password(
    form: &PasswordForm,
    email: &EmailAddress,
) -> Result<NewPassword, String> {
    if form.password != form.confirm {
        return Err("The two passwords are not the same.".into());
    }
    NewPassword::parse(&form.password, Some(email)).map_err(|e| e.to_string())
}

#[handler]
pub async fn reset_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<PasswordForm>,
) -> poem::Result<Response> {
    check_form(req, &form.csrf)?;
    let chrome = chrome(req, state, "login").await?;
    let token = stashed_link(req, state, "reset").unwrap_or_default();
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let link = links::inspect(&mut tx, &token, LinkPurpose::PasswordReset, now)
        .await
        .map_err(db)?;
    let LinkState::Valid(info) = link else {
        return link_problem(chrome, &link, "reset");
    };
    let pw = match new_password(&form, &info.email) {
        Ok(pw) => pw,
        Err(e) => {
            return render_status(
                &reset_form(chrome, info.email.to_string(), Some(e)),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let ctx = audit_ctx(req, None);
    match links::complete_reset(&mut tx, &token, &pw, &ctx, now).await {
        Ok(_) => {}
        Err(RedeemError::NotValid(state)) => return link_problem(chrome, &state, "reset"),
        Err(e) => return Err(internal(e)),
    }
    tx.commit().await.map_err(db)?;
    let self_signup = self_signup_enabled(req, state, &chrome.tenant).await?;
    Ok(render(&Login {
        chrome,
        email: info.email.to_string(),
        error: None,
        notice: Some("Your password is changed. Sign in with the new one."),
        self_signup,
    })?
    .with_header("set-cookie", state.cookies.clear(state.cookies.link_name()))
    .into_response())
}

fn change_form(chrome: Chrome, email: String, error: Option<String>) -> SetPassword {
    SetPassword {
        chrome,
        heading: "Change your password",
        intro: "Other devices signed in to your account will be signed out.",
        action: "/account/password",
        submit: "Change password",
        email,
        asks_current: true,
        asks_dob: false,
        dob: Default::default(),
        error,
        dob_errors: super::FormErrors::default(),
    }
}

#[handler]
pub async fn password_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "account").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    Ok(render(&change_form(chrome, me.email.clone(), None))?.into_response())
}

#[handler]
pub async fn password_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(form): Form<PasswordForm>,
) -> poem::Result<Response> {
    check_form(req, &form.csrf)?;
    let (chrome, me) = match require_user(req, state, "account").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let email = EmailAddress::parse(&me.email).map_err(internal)?;
    let pw = match new_password(&form, &email) {
        Ok(pw) => pw,
        Err(e) => {
            return render_status(
                &change_form(chrome, me.email.clone(), Some(e)),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let ctx = audit_ctx(req, Some(&me));
    // The sign-in service opens its own transactions (hashing between them).
    crate::tx::release(req).await.map_err(crate::internal)?;
    match signin::change_password(
        &state.tenant_db,
        &chrome.tenant,
        &me,
        &form.current_password,
        &pw,
        &ctx,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {}
        Err(e @ ChangePasswordError::WrongCurrent) => {
            return render_status(
                &change_form(chrome, me.email.clone(), Some(e.to_string())),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Err(e @ (ChangePasswordError::Throttled { .. } | ChangePasswordError::Busy)) => {
            let wait = match e {
                ChangePasswordError::Throttled { retry_after } => retry_after.num_seconds().max(1),
                _ => 1,
            };
            return Ok(render_status(
                &change_form(chrome, me.email.clone(), Some(e.to_string())),
                StatusCode::TOO_MANY_REQUESTS,
            )?
            .with_header("retry-after", wait.to_string())
            .into_response());
        }
        Err(e) => return Err(internal(e)),
    }
    Ok(render(&Message {
        chrome,
        heading: "Password changed",
        body: "Your password is changed. Other devices were signed out.".into(),
        action: Some(("/", "Back to the portal")),
    })?
    .into_response())
}
