//! The HTTP surface: each clinic's branded, server-rendered site and the `/api/v1` JSON API.
//! Handlers parse, call a store or service, and map the result; no SQL lives here.

mod api;
mod health;
mod observe;
mod pages;
mod security;
mod site;
mod state;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route, get};

pub use site::CurrentSite;
pub use state::AppState;

/// The whole web application for all clinics. Host → clinic resolution happens first (except
/// for health checks and shared assets), so every handler below sees a resolved site.
pub fn app(state: AppState) -> impl Endpoint {
    let api = api::service();
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at("/assets/portal.css", get(pages::assets::stylesheet))
        .at("/", get(pages::home::home))
        .at("/signup", get(pages::platform::signup))
        .at("/branding.css", get(pages::assets::branding_css))
        .at("/branding/logo", get(pages::assets::logo))
        .at("/api/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest(
            "/api",
            api.into_endpoint().catch_all_error(api::error::from_poem),
        )
        .catch_error(pages::errors::not_found)
        .around(site::resolve)
        .data(state)
        // Tracing inside the headers layer: it turns errors into (opaque) responses after
        // logging their cause, and every response, errors included, then gets the headers.
        .around(observe::trace)
        .around(security::headers)
}

/// Wraps an unexpected failure as a 500: the cause is logged by the tracing layer, the client
/// sees an opaque error.
pub(crate) fn internal(e: impl std::error::Error + Send + Sync + 'static) -> poem::Error {
    poem::Error::new(e, poem::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// The OpenAPI document, for contract snapshots and tooling.
pub fn openapi_json() -> String {
    api::service().spec()
}
