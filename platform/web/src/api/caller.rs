//! Who is calling the JSON API: a signed-in user of this clinic, or why not.

use std::sync::Arc;

use poem::Request;
use poem_openapi::payload::Json;
use portal_domain::identity::scope::SignedIn;
use portal_tenants::Tenant;

use super::error::ErrorBody;
use crate::AppState;
use crate::auth::{self, Carrier};
use crate::csrf::constant_eq;

pub(super) fn unauthorized() -> Json<ErrorBody> {
    ErrorBody::new("unauthorized", "sign in first")
}

pub(super) fn csrf() -> Json<ErrorBody> {
    ErrorBody::new(
        "csrf",
        "send the session's csrf_token in the X-CSRF-Token header",
    )
}

/// The caller, or why not. `changing` calls on a cookie session must carry the CSRF token.
pub(super) enum Caller {
    In(Arc<Tenant>, SignedIn),
    Out,
    Csrf,
}

pub(super) async fn caller(
    req: &Request,
    state: &AppState,
    changing: bool,
) -> poem::Result<Caller> {
    let Some(tenant) = auth::clinic(req) else {
        return Ok(Caller::Out);
    };
    let Some((me, carrier)) = auth::signed_in(req, state, &tenant).await? else {
        return Ok(Caller::Out);
    };
    if changing && carrier == Carrier::Cookie {
        let sent = req.header("x-csrf-token").unwrap_or_default();
        if !constant_eq(sent.as_bytes(), me.csrf_token.as_bytes()) {
            return Ok(Caller::Csrf);
        }
    }
    Ok(Caller::In(tenant, me))
}
