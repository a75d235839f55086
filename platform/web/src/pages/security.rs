//! Two-step sign-in pages: the code page that completes a sign-in (`/login/code`), setting it
//! up or turning it off (`/account/security`, each behind the password: step-up), and the
//! clinic's requirement (`/admin/security`, administrators).

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::SESSION_ABSOLUTE;
use portal_domain::identity::mfa::{self, Enrolment, MfaError, Requirement, Status};
use portal_domain::identity::scope::{SignedIn, Stage};
use portal_domain::identity::signin::{self, ChangePasswordError, SecondStep};

use super::auth::{human_wait, landing};
use super::{Chrome, db, render_status, see_other};
use crate::auth::{any_stage, audit_ctx, clinic};
use crate::csrf::check_form;
use crate::{AppState, internal};

#[derive(serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
}

#[derive(serde::Deserialize)]
pub struct RequirementForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    required: String,
}

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage {
    chrome: Chrome,
    error: Option<String>,
}

/// What the security page shows.
enum Step {
    /// On or off, with forms to change it.
    Overview,
    /// Scan this, then type a code.
    Scan { qr_svg: String, secret: String },
    /// Just turned on: the recovery codes, shown once.
    Codes(Vec<String>),
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    chrome: Chrome,
    status: Status,
    step: Step,
    /// The clinic requires it of this person and it is not set up yet.
    must_enrol: bool,
    /// For administrators: the clinic's requirement and the choices.
    requirement: Option<(Requirement, [Requirement; 3])>,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// The person behind the session (any stage), and the page frame. The route's guard has
/// already refused anyone else.
async fn person(req: &Request, state: &AppState) -> poem::Result<(Chrome, SignedIn)> {
    let tenant = clinic(req).ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let (me, _) = any_stage(req, state, &tenant)
        .await?
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    Ok((
        Chrome {
            tenant,
            // Half-way sessions get the frame of a visitor (no navigation into the portal).
            user: (me.stage == Stage::Full).then(|| me.clone()),
            csrf: crate::csrf::form_token(req),
            current: "account",
        },
        me,
    ))
}

fn session_cookie(state: &AppState, token: &str) -> String {
    state.cookies.set(
        state.cookies.session_name(),
        token,
        Some(SESSION_ABSOLUTE.num_seconds()),
    )
}

/// `GET /login/code`.
#[handler]
pub async fn code_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, _) = person(req, state).await?;
    render_status(
        &CodePage {
            chrome,
            error: None,
        },
        StatusCode::OK,
    )
}

/// `POST /login/code`.
#[handler]
pub async fn code_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<CodeForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = person(req, state).await?;
    let ctx = audit_ctx(req, Some(&me));
    // The sign-in service opens its own transactions (hashing between them).
    crate::tx::release(req).await.map_err(crate::internal)?;
    let outcome = signin::complete_second_step(
        &state.tenant_db,
        &chrome.tenant,
        &me,
        &f.code,
        &ctx,
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    let (status, error, retry) = match outcome {
        SecondStep::SignedIn(new) => {
            return Ok(see_other(landing(new.signed_in.role))
                .with_header("set-cookie", session_cookie(state, new.token.expose()))
                .into_response());
        }
        SecondStep::WrongCode => (
            StatusCode::UNAUTHORIZED,
            "That code is not right, or it was already used. Type the newest code from your app, or one of your recovery codes.".to_owned(),
            None,
        ),
        SecondStep::Throttled { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong codes. Try again in {}.", human_wait(retry_after)),
            Some(retry_after.num_seconds().max(1)),
        ),
    };
    let page = render_status(
        &CodePage {
            chrome,
            error: Some(error),
        },
        status,
    )?;
    Ok(match retry {
        Some(s) => page
            .with_header("retry-after", s.to_string())
            .into_response(),
        None => page,
    })
}

async fn security(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    step: Step,
    notice: Option<&'static str>,
    error: Option<String>,
) -> poem::Result<SecurityPage> {
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let status = mfa::status(&mut tx, me.user_id).await.map_err(db)?;
    let required = mfa::requirement(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let _ = req;
    Ok(SecurityPage {
        chrome,
        status,
        step,
        must_enrol: me.stage == Stage::Enrol,
        requirement: me.admin().map(|_| (required, Requirement::ALL)),
        notice,
        error,
    })
}

/// The security pages show a secret (the key to type into the app) or the recovery codes:
/// no cache may keep them.
async fn overview_with(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    error: String,
    status: StatusCode,
) -> poem::Result<Response> {
    let page = security(req, state, chrome, me, Step::Overview, None, Some(error)).await?;
    show(page, status)
}

fn show(page: SecurityPage, status: StatusCode) -> poem::Result<Response> {
    Ok(render_status(&page, status)?
        .with_header("cache-control", "no-store")
        .into_response())
}

/// `GET /account/security`.
#[handler]
pub async fn security_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me) = person(req, state).await?;
    let notice = match req.uri().query() {
        Some("done=off") => Some("Two-step sign-in is off."),
        Some("done=requirement") => Some("The clinic's requirement is saved."),
        _ => None,
    };
    let page = security(req, state, chrome, &me, Step::Overview, notice, None).await?;
    show(page, StatusCode::OK)
}

/// Re-checks the password before a change to how the person signs in.
async fn step_up(
    req: &Request,
    state: &AppState,
    chrome: &Chrome,
    me: &SignedIn,
    current: &str,
) -> poem::Result<Result<(), (StatusCode, String)>> {
    let ctx = audit_ctx(req, Some(me));
    // The sign-in service opens its own transactions (hashing between them).
    crate::tx::release(req).await.map_err(crate::internal)?;
    match signin::confirm_password(
        &state.tenant_db,
        &chrome.tenant,
        me,
        current,
        &ctx,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => Ok(Ok(())),
        Err(e @ ChangePasswordError::WrongCurrent) => {
            Ok(Err((StatusCode::UNPROCESSABLE_ENTITY, e.to_string())))
        }
        Err(e @ (ChangePasswordError::Throttled { .. } | ChangePasswordError::Busy)) => {
            Ok(Err((StatusCode::TOO_MANY_REQUESTS, e.to_string())))
        }
        Err(e) => Err(internal(e)),
    }
}

fn qr_svg(e: &Enrolment) -> poem::Result<String> {
    let code = qrcode::QrCode::new(e.otpauth_url.as_bytes()).map_err(internal)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The secret in groups of four, as people type it.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /account/security/start`: password, then a new secret to scan.
#[handler]
pub async fn security_start(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<PasswordForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = person(req, state).await?;
    if let Err((status, e)) = step_up(req, state, &chrome, &me, &f.current_password).await? {
        return overview_with(req, state, chrome, &me, e, status).await;
    }
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let started = mfa::begin(
        &mut tx,
        &me,
        chrome.tenant.display_name(),
        state.clock.now(),
    )
    .await;
    let enrolment = match started {
        Ok(e) => e,
        Err(e @ MfaError::AlreadyOn) => {
            drop(tx);
            return overview_with(req, state, chrome, &me, e.to_string(), StatusCode::CONFLICT)
                .await;
        }
        Err(e) => return Err(internal(e)),
    };
    tx.commit().await.map_err(db)?;
    let step = Step::Scan {
        qr_svg: qr_svg(&enrolment)?,
        secret: grouped(&enrolment.secret_base32),
    };
    let page = security(req, state, chrome, &me, step, None, None).await?;
    show(page, StatusCode::OK)
}

/// `POST /account/security/confirm`: the first code from the app turns it on.
#[handler]
pub async fn security_confirm(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<CodeForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = person(req, state).await?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match mfa::confirm(&mut tx, &me, &f.code, &ctx, now).await {
        Ok(codes) => {
            let upgraded = signin::after_enrolment(&mut tx, &me, &ctx, now)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            let mut chrome = chrome;
            if let Some(new) = &upgraded {
                chrome.user = Some(new.signed_in.clone());
            }
            let who = upgraded
                .as_ref()
                .map_or(me.clone(), |n| n.signed_in.clone());
            let page = security(req, state, chrome, &who, Step::Codes(codes), None, None).await?;
            let resp = show(page, StatusCode::OK)?;
            Ok(match upgraded {
                Some(new) => resp
                    .with_header("set-cookie", session_cookie(state, new.token.expose()))
                    .into_response(),
                None => resp,
            })
        }
        Err(e @ MfaError::WrongCode) => {
            let enrolment = mfa::enrolment_of(&mut tx, &me, chrome.tenant.display_name()).await;
            tx.commit().await.map_err(db)?;
            let step = match enrolment {
                Ok(Some(en)) => Step::Scan {
                    qr_svg: qr_svg(&en)?,
                    secret: grouped(&en.secret_base32),
                },
                _ => Step::Overview,
            };
            let page = security(req, state, chrome, &me, step, None, Some(e.to_string())).await?;
            show(page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e @ MfaError::NotStarted) => {
            drop(tx);
            overview_with(req, state, chrome, &me, e.to_string(), StatusCode::CONFLICT).await
        }
        Err(e) => Err(internal(e)),
    }
}

/// `POST /account/security/remove`: password, then off (unless the clinic requires it).
#[handler]
pub async fn security_remove(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<PasswordForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = person(req, state).await?;
    if let Err((status, e)) = step_up(req, state, &chrome, &me, &f.current_password).await? {
        return overview_with(req, state, chrome, &me, e, status).await;
    }
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match mfa::remove(&mut tx, &me, &ctx, state.clock.now()).await {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other("/account/security?done=off"))
        }
        Err(e @ MfaError::Required) => {
            drop(tx);
            overview_with(req, state, chrome, &me, e.to_string(), StatusCode::CONFLICT).await
        }
        Err(e) => Err(internal(e)),
    }
}

/// `POST /admin/security`: who at the clinic must use two-step sign-in.
#[handler]
pub async fn requirement_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<RequirementForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = person(req, state).await?;
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let Some(to) = Requirement::parse(&f.required) else {
        return overview_with(
            req,
            state,
            chrome,
            &me,
            "Choose who must use two-step sign-in.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    mfa::set_requirement(&mut tx, &admin, &ctx, to, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other("/account/security?done=requirement"))
}
