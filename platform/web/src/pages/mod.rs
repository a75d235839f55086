//! Server-rendered pages. Templates are compiled in (askama), so a template that refers to a
//! missing field does not build.

pub mod admin;
pub mod api_keys;
pub mod appointments;
pub mod assets;
pub mod auth;
pub mod clinic_details;
pub(crate) mod confirm;
pub mod documents;
pub mod errors;
mod form;
pub mod home;
pub mod invite;
pub mod letters;
pub mod mailbox;
mod patient_form;
pub mod patients;
pub mod platform;
pub mod preferences;
pub mod record;
pub mod record_edit;
pub mod register;
pub mod results;
pub mod schedule;
pub mod scheduling_setup;
pub(crate) mod scheduling_view;
pub mod security;
pub mod setup_items;
mod trend_svg;
pub mod undelivered;
pub(crate) mod words;

use std::sync::Arc;

use askama::Template;
use poem::web::{Html, Redirect};
use poem::{IntoResponse, Request, Response};
use portal_domain::identity::scope::SignedIn;
use portal_tenants::Tenant;

use crate::{AppState, internal};
pub(crate) use form::FormErrors;

/// Renders a template; a rendering failure is a server error (logged by the tracing layer).
pub(crate) fn render(t: &impl Template) -> poem::Result<Html<String>> {
    t.render().map(Html).map_err(|e| {
        poem::Error::from_string(
            format!("template: {e}"),
            poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        )
    })
}

/// Renders with a status (e.g. 422 for a form with errors, so tools see the failure too).
pub(crate) fn render_status(
    t: &impl Template,
    status: poem::http::StatusCode,
) -> poem::Result<Response> {
    Ok(render(t)?.with_status(status).into_response())
}

/// What every clinic page's frame shows: the clinic's brand, who is signed in, the form token.
pub struct Chrome {
    pub tenant: Arc<Tenant>,
    pub user: Option<SignedIn>,
    pub csrf: String,
    /// The navigation entry to mark as current.
    pub current: &'static str,
}

impl Chrome {
    pub fn is_staff(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role.is_staff())
    }
    /// Whether the navigation offers the schedule (roles with the scheduling permission).
    pub fn may_schedule(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.may(portal_domain::identity::access::Permission::Scheduling))
    }
    /// Whether the navigation offers the billing console.
    pub fn may_bill(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.may(portal_domain::identity::access::Permission::Billing))
    }
    pub fn is_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role == portal_domain::identity::Role::ClinicAdmin)
    }
    pub fn is_patient(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.patient().is_some())
    }
}

/// The clinic of this request, or 404 on the platform's own site.
pub(crate) fn clinic_or_404(req: &Request) -> poem::Result<Arc<Tenant>> {
    crate::auth::clinic(req).ok_or_else(|| poem::Error::from(poem::error::NotFoundError))
}

/// The page frame for an anonymous or signed-in visitor.
pub(crate) async fn chrome(
    req: &Request,
    state: &AppState,
    current: &'static str,
) -> poem::Result<Chrome> {
    let tenant = clinic_or_404(req)?;
    let user = crate::auth::signed_in(req, state, &tenant)
        .await?
        .map(|(u, _)| u);
    Ok(Chrome {
        tenant,
        user,
        csrf: crate::csrf::form_token(req),
        current,
    })
}

/// Either a page frame with a signed-in user, or a redirect to the sign-in page.
pub(crate) enum Gate {
    In(Chrome, SignedIn),
    Out(Response),
}

pub(crate) async fn require_user(
    req: &Request,
    state: &AppState,
    current: &'static str,
) -> poem::Result<Gate> {
    let chrome = chrome(req, state, current).await?;
    match chrome.user.clone() {
        Some(u) => Ok(Gate::In(chrome, u)),
        None => Ok(Gate::Out(Redirect::see_other("/login").into_response())),
    }
}

pub(crate) fn see_other(path: &str) -> Response {
    Redirect::see_other(path).into_response()
}

pub(crate) fn db<E: std::error::Error + Send + Sync + 'static>(e: E) -> poem::Error {
    internal(e)
}

/// Whether the clinic lets patients create their own account.
pub(crate) async fn self_signup_enabled(
    req: &poem::Request,
    state: &AppState,
    tenant: &Tenant,
) -> poem::Result<bool> {
    let mut tx = crate::tx::begin(req, &state.tenant_db, tenant)
        .await
        .map_err(db)?;
    let on = portal_domain::clinic::ClinicProfile::self_signup_enabled(&mut tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(on)
}

/// Counts this request against rate limits (`limits.rs`), by client address and the given
/// subjects. `Err` carries the wait, for [`too_many`].
pub(crate) async fn within_limits(
    req: &Request,
    state: &AppState,
    per_address: crate::limits::Limit,
    others: &[(crate::limits::Limit, &str)],
) -> Result<(), crate::limits::RetryAfter> {
    // IPv6 clients count by their /64, as sign-in throttling does: one host has 2^64 addresses.
    let addr = portal_domain::identity::throttle::address_key(
        &crate::request::client_addr(req).unwrap_or_default(),
    );
    let mut hits = vec![(per_address, addr.as_str())];
    hits.extend_from_slice(others);
    state.limiter.check(&hits, state.clock.now()).await
}

/// The words for a tripped limit.
pub(crate) fn too_many_words(wait: crate::limits::RetryAfter) -> String {
    format!(
        "Too many requests like this one. Please try again in {}.",
        auth::human_wait(chrono::Duration::seconds(wait.0))
    )
}

/// A rendered form, as a 429 with `Retry-After`.
pub(crate) fn as_too_many(page: Response, wait: crate::limits::RetryAfter) -> Response {
    let mut page = page;
    page.set_status(poem::http::StatusCode::TOO_MANY_REQUESTS);
    page.with_header("retry-after", wait.0.to_string())
        .into_response()
}
