//! Sessions over JSON: sign in, sign out, and who am I.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use portal_domain::identity::SESSION_ABSOLUTE;
use portal_domain::identity::scope::{SignedIn, Stage};
use portal_domain::identity::signin::{self, SecondStep, SignInOutcome};

use super::ApiTags;
use super::caller::unauthorized;
use super::error::ErrorBody;
use crate::auth::{self, Carrier, audit_ctx};
use crate::csrf::constant_eq;
use crate::{AppState, internal};

#[derive(Debug, Object)]
pub struct SignInRequest {
    pub email: String,
    pub password: String,
    /// The 6-digit code from the authenticator app (or a recovery code), for accounts with
    /// two-step sign-in on. Without it such an account gets 401 `mfa_required`.
    pub code: Option<String>,
}

/// The signed-in person.
#[derive(Debug, Object)]
pub struct Me {
    /// `usr_…`
    pub id: String,
    pub display_name: String,
    pub email: String,
    /// `patient`, `proxy`, `clinician`, `front_desk`, `billing` or `clinic_admin`.
    pub role: String,
    /// Send this in `X-CSRF-Token` on every state-changing call authenticated by the cookie.
    pub csrf_token: String,
}

impl From<&SignedIn> for Me {
    fn from(s: &SignedIn) -> Self {
        Self {
            id: s.user_id.to_string(),
            display_name: s.display_name.clone(),
            email: s.email.clone(),
            role: s.role.as_str().to_owned(),
            csrf_token: s.csrf_token.clone(),
        }
    }
}

#[derive(ApiResponse)]
pub enum SignInResponse {
    /// Signed in. The session is in the `Set-Cookie` header (HttpOnly).
    #[oai(status = 201)]
    Created(Json<Me>, #[oai(header = "Set-Cookie")] String),
    /// Wrong email or password (code `invalid_credentials`); the same answer for an unknown
    /// email. Two-step sign-in is on and `code` is missing (`mfa_required`) or wrong
    /// (`invalid_code`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The clinic requires two-step sign-in for this role and it is not set up yet
    /// (`mfa_enrolment_required`): set it up on the web first.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Too many failed attempts (code `too_many_attempts`); retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooMany(Json<ErrorBody>, #[oai(header = "Retry-After")] String),
    /// Not a clinic's site (code `not_a_clinic_site`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<Me>),
    /// No live session for this clinic (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum SignOutResponse {
    /// Signed out; the cookie is cleared.
    #[oai(status = 204)]
    Done(#[oai(header = "Set-Cookie")] String),
    /// No live session for this clinic (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Missing or wrong `X-CSRF-Token` (code `csrf`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

pub struct SessionsApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Sign in
    ///
    /// Starts a session on this clinic's site. Failed attempts are throttled per account and
    /// per client address.
    #[oai(path = "/sessions", method = "post", operation_id = "signIn")]
    async fn sign_in(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<SignInRequest>,
    ) -> poem::Result<SignInResponse> {
        let Some(tenant) = auth::clinic(req) else {
            return Ok(SignInResponse::NotFound(ErrorBody::new(
                "not_a_clinic_site",
                "sign in on your clinic's site",
            )));
        };
        let ctx = audit_ctx(req, None);
        let outcome = signin::sign_in(
            &state.tenant_db,
            &tenant,
            &body.email,
            &body.password,
            &ctx,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        let now = state.clock.now();
        let outcome = match outcome {
            SignInOutcome::SignedIn(pending) if pending.signed_in.stage == Stage::Enrol => {
                signin::abandon(&state.tenant_db, &tenant, &pending.signed_in, now)
                    .await
                    .map_err(internal)?;
                return Ok(SignInResponse::Forbidden(ErrorBody::new(
                    "mfa_enrolment_required",
                    "your clinic requires two-step sign-in; set it up on the web first",
                )));
            }
            SignInOutcome::SignedIn(pending) if pending.signed_in.stage == Stage::Code => {
                let Some(code) = body.code.as_deref() else {
                    signin::abandon(&state.tenant_db, &tenant, &pending.signed_in, now)
                        .await
                        .map_err(internal)?;
                    return Ok(SignInResponse::Unauthorized(ErrorBody::new(
                        "mfa_required",
                        "send the code from the authenticator app as `code`",
                    )));
                };
                let step = signin::complete_second_step(
                    &state.tenant_db,
                    &tenant,
                    &pending.signed_in,
                    code,
                    &ctx,
                    now,
                )
                .await
                .map_err(internal)?;
                match step {
                    SecondStep::SignedIn(new) => SignInOutcome::SignedIn(new),
                    SecondStep::Throttled { retry_after } => {
                        signin::abandon(&state.tenant_db, &tenant, &pending.signed_in, now)
                            .await
                            .map_err(internal)?;
                        SignInOutcome::Throttled { retry_after }
                    }
                    SecondStep::WrongCode => {
                        signin::abandon(&state.tenant_db, &tenant, &pending.signed_in, now)
                            .await
                            .map_err(internal)?;
                        return Ok(SignInResponse::Unauthorized(ErrorBody::new(
                            "invalid_code",
                            "the code is not right or was already used",
                        )));
                    }
                }
            }
            other => other,
        };
        Ok(match outcome {
            SignInOutcome::SignedIn(new) => {
                let cookie = state.cookies.set(
                    state.cookies.session_name(),
                    new.token.expose(),
                    Some(SESSION_ABSOLUTE.num_seconds()),
                );
                SignInResponse::Created(Json(Me::from(&new.signed_in)), cookie)
            }
            SignInOutcome::Failed => SignInResponse::Unauthorized(ErrorBody::new(
                "invalid_credentials",
                "email or password is not correct",
            )),
            SignInOutcome::Throttled { retry_after } => SignInResponse::TooMany(
                ErrorBody::new(
                    "too_many_attempts",
                    "too many failed sign-ins; wait, or reset the password by email",
                ),
                retry_after.num_seconds().max(1).to_string(),
            ),
            SignInOutcome::Busy => SignInResponse::TooMany(
                ErrorBody::new("busy", "too many sign-ins at once; try again in a moment"),
                "1".to_owned(),
            ),
        })
    }

    /// Sign out
    #[oai(
        path = "/sessions/current",
        method = "delete",
        operation_id = "signOut"
    )]
    async fn sign_out(
        &self,
        req: &Request,
        state: Data<&AppState>,
    ) -> poem::Result<SignOutResponse> {
        let Some(tenant) = auth::clinic(req) else {
            return Ok(SignOutResponse::Unauthorized(unauthorized()));
        };
        let Some((me, carrier)) = auth::signed_in(req, &state, &tenant).await? else {
            return Ok(SignOutResponse::Unauthorized(unauthorized()));
        };
        if carrier == Carrier::Cookie {
            let sent = req.header("x-csrf-token").unwrap_or_default();
            if !constant_eq(sent.as_bytes(), me.csrf_token.as_bytes()) {
                return Ok(SignOutResponse::Forbidden(ErrorBody::new(
                    "csrf",
                    "send the session's csrf_token in the X-CSRF-Token header",
                )));
            }
        }
        let ctx = audit_ctx(req, Some(&me));
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        signin::sign_out(&mut tx, &me, &ctx, state.clock.now())
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(SignOutResponse::Done(
            state.cookies.clear(state.cookies.session_name()),
        ))
    }

    /// Who am I
    ///
    /// The signed-in person on this clinic's site.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, req: &Request, state: Data<&AppState>) -> poem::Result<MeResponse> {
        let Some(tenant) = auth::clinic(req) else {
            return Ok(MeResponse::Unauthorized(unauthorized()));
        };
        Ok(match auth::signed_in(req, &state, &tenant).await? {
            Some((me, _)) => MeResponse::Ok(Json(Me::from(&me))),
            None => MeResponse::Unauthorized(unauthorized()),
        })
    }
}
