//! Who is asking: the session behind the request's cookie (or `Authorization: Bearer` token for
//! API clients), looked up in the clinic's own schema — a token from another clinic finds
//! nothing there.

use std::sync::Arc;

use poem::Request;
use portal_domain::audit::AuditContext;
use portal_domain::identity::scope::SignedIn;
use portal_domain::identity::sessions;
use portal_tenants::{Tenant, TenantTx};

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

/// The signed-in person, if the request carries a live session for this clinic.
pub async fn signed_in(
    req: &Request,
    state: &AppState,
    tenant: &Tenant,
) -> poem::Result<Option<(SignedIn, Carrier)>> {
    if presented_token(req, state).is_none() {
        return Ok(None);
    }
    let mut tx = state.tenant_db.begin(tenant).await.map_err(internal)?;
    let who = signed_in_within(req, state, &mut tx).await?;
    tx.commit().await.map_err(internal)?;
    Ok(who)
}

/// The same, inside a clinic transaction the request goes on to use: a request that changes
/// data then pays for one transaction, not two. (A session touch made here commits or rolls
/// back with the request's own work.)
pub async fn signed_in_within(
    req: &Request,
    state: &AppState,
    tx: &mut TenantTx,
) -> poem::Result<Option<(SignedIn, Carrier)>> {
    let Some((token, carrier)) = presented_token(req, state) else {
        return Ok(None);
    };
    let who = sessions::authenticate(tx, &token, state.clock.now())
        .await
        .map_err(internal)?;
    Ok(who.map(|w| (w, carrier)))
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
