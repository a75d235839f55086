//! Who is asking: the session behind the request's cookie (or `Authorization: Bearer` token for
//! API clients), looked up in the clinic's own schema — a token from another clinic finds
//! nothing there.

use std::sync::Arc;

use poem::Request;
use portal_domain::audit::AuditContext;
use portal_domain::identity::scope::{SignedIn, Stage};
use portal_domain::identity::sessions;
use portal_tenants::Tenant;

use crate::policy::Authenticated;
use crate::request::{client_addr, cookie, request_id};
use crate::{AppState, CurrentSite, internal};

/// How the session token arrived; cookie-borne sessions need CSRF proof on changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Cookie,
    Bearer,
}

pub fn presented_token(req: &Request, state: &AppState) -> Option<(String, Carrier)> {
    if let Some(bearer) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    {
        return Some((bearer.trim().to_owned(), Carrier::Bearer));
    }
    cookie(req, state.cookies.session_name()).map(|t| (t, Carrier::Cookie))
}

/// The clinic this request is for, or `None` on the platform's own site.
pub fn clinic(req: &Request) -> Option<Arc<Tenant>> {
    match req.extensions().get::<CurrentSite>() {
        Some(CurrentSite::Clinic(t)) => Some(t.clone()),
        _ => None,
    }
}

/// Looks the presented session up (in its own short clinic transaction). `activity` says
/// whether this request is the person's own doing; a page's background refresh is not, and
/// does not keep an idle session alive.
pub async fn authenticate(
    req: &Request,
    state: &AppState,
    tenant: &Tenant,
    activity: bool,
) -> poem::Result<Option<(SignedIn, Carrier)>> {
    let Some((token, carrier)) = presented_token(req, state) else {
        return Ok(None);
    };
    let mut tx = state.tenant_db.begin(tenant).await.map_err(internal)?;
    let found = authenticate_in(&mut tx, &token, state, activity).await?;
    tx.commit().await.map_err(internal)?;
    Ok(found.map(|f| (f.who, carrier)))
}

/// The session behind `token`, looked up in the caller's clinic transaction (the route
/// guard's, which it then hands to the handler).
pub async fn authenticate_in(
    tx: &mut portal_tenants::TenantTx,
    token: &str,
    state: &AppState,
    activity: bool,
) -> poem::Result<Option<sessions::Found>> {
    sessions::look_up(tx, token, state.clock.now(), activity)
        .await
        .map_err(internal)
}

/// The signed-in person, if the request carries a live, fully signed-in session for this
/// clinic (a session half-way through two-step sign-in is nobody here). The route's guard has
/// usually looked it up already; this reads what it found.
pub async fn signed_in(
    req: &Request,
    state: &AppState,
    tenant: &Tenant,
) -> poem::Result<Option<(SignedIn, Carrier)>> {
    Ok(any_stage(req, state, tenant)
        .await?
        .filter(|(w, _)| w.stage == Stage::Full))
}

/// The session whatever its stage: for the pages that complete a sign-in (the code page, and
/// setting up two-step sign-in when the clinic requires it).
pub async fn any_stage(
    req: &Request,
    state: &AppState,
    tenant: &Tenant,
) -> poem::Result<Option<(SignedIn, Carrier)>> {
    match req.extensions().get::<Authenticated>() {
        Some(Authenticated(who)) => Ok(who.clone()),
        None => authenticate(req, state, tenant, true).await,
    }
}

/// The audit context of a request, for a signed-in person or an anonymous visitor.
pub fn audit_ctx(req: &Request, who: Option<&SignedIn>) -> AuditContext {
    match who {
        Some(w) => w.audit(client_addr(req), request_id(req)),
        None => AuditContext {
            actor: None,
            client_addr: client_addr(req),
            request_id: request_id(req),
        },
    }
}
