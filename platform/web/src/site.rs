use std::sync::Arc;

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use portal_tenants::{Site, Tenant};

use crate::AppState;
use crate::pages::errors;

/// The site a request is for, after resolution: the platform's own, or an open clinic's.
/// Handlers read it with `Data<&CurrentSite>`; unknown hosts and closed clinics never get here.
#[derive(Clone, Debug)]
pub enum CurrentSite {
    Platform,
    Clinic(Arc<Tenant>),
}

/// Paths served the same on every host, before any clinic is looked up.
fn is_host_independent(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz") || path.starts_with("/assets/")
}

/// Resolves the Host header to a site. Unknown hosts get a 404 and suspended clinics a clear
/// "not available" page; neither ever falls back to a default clinic.
pub async fn resolve<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if is_host_independent(req.uri().path()) {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let Some(state) = req.data::<AppState>().cloned() else {
        return Err(poem::Error::from_string(
            "application state missing",
            StatusCode::INTERNAL_SERVER_ERROR,
        ));
    };
    let host = req
        .header("host")
        .map(str::to_owned)
        .or_else(|| req.uri().host().map(str::to_owned))
        .unwrap_or_default();
    let wants_json = req.uri().path().starts_with("/api/");
    let site = state
        .resolver
        .resolve(&host)
        .await
        .map_err(|e| poem::Error::new(e, StatusCode::INTERNAL_SERVER_ERROR))?;
    let current = match site {
        Site::Platform => CurrentSite::Platform,
        Site::Unknown => return Ok(errors::unknown_host(wants_json)),
        Site::Clinic(tenant) => {
            tracing::Span::current().record("tenant", tenant.slug());
            if !tenant.is_active() {
                return Ok(errors::clinic_unavailable(&tenant, wants_json));
            }
            CurrentSite::Clinic(tenant)
        }
    };
    req.extensions_mut().insert(current);
    ep.call(req).await.map(IntoResponse::into_response)
}
