//! Who is calling the JSON API: a signed-in user of this clinic, or why not.

use std::sync::Arc;

use poem::Request;
use poem_openapi::payload::Json;
use portal_domain::identity::scope::SignedIn;
use portal_tenants::{Tenant, TenantTx};

use super::error::ErrorBody;
use crate::auth::{self, Carrier};
use crate::csrf::constant_eq;
use crate::{AppState, internal};

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
    if !csrf_ok(req, &me, carrier, changing) {
        return Ok(Caller::Csrf);
    }
    Ok(Caller::In(tenant, me))
}

/// The caller of a change (as the route's guard found them) with the clinic transaction the
/// change runs in.
pub(super) enum ChangingCaller {
    In(Arc<Tenant>, SignedIn, TenantTx),
    Out,
    Csrf,
}

pub(super) async fn changing_caller(
    req: &Request,
    state: &AppState,
) -> poem::Result<ChangingCaller> {
    let Some(tenant) = auth::clinic(req) else {
        return Ok(ChangingCaller::Out);
    };
    let Some((me, carrier)) = auth::signed_in(req, state, &tenant).await? else {
        return Ok(ChangingCaller::Out);
    };
    if !csrf_ok(req, &me, carrier, true) {
        return Ok(ChangingCaller::Csrf);
    }
    let tx = crate::tx::begin(req, &state.tenant_db, &tenant)
        .await
        .map_err(internal)?;
    Ok(ChangingCaller::In(tenant, me, tx))
}

/// `changing` calls on a cookie session must carry the session's CSRF token.
fn csrf_ok(req: &Request, me: &SignedIn, carrier: Carrier, changing: bool) -> bool {
    if changing && carrier == Carrier::Cookie {
        let sent = req.header("x-csrf-token").unwrap_or_default();
        return constant_eq(sent.as_bytes(), me.csrf_token.as_bytes());
    }
    true
}
