//! Who may use which route: one table for the pages (built into the router, so a page cannot
//! be added without a policy) and one for the API (checked against the OpenAPI document by a
//! test, and deny-by-default at run time). The guard in front of every route authenticates the
//! session once, keeps it in the request for the handler, and refuses a role the route's
//! permission does not include — before any body is read or any store is reached.

use askama::Template;
use poem::http::{Method, StatusCode};
use poem::web::{Html, Redirect};
use poem::{Endpoint, IntoResponse, Request, Response};
use portal_domain::identity::access::Permission;
use portal_domain::identity::scope::{SignedIn, Stage};

use crate::auth::{self, Carrier};
use crate::pages::Chrome;
use crate::{AppState, internal};

/// What a route asks of the person using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in, public pages, webhooks that verify themselves).
    Public,
    /// A machine client with a clinic API key, which the handler checks (the FHIR import);
    /// sessions are never keys, so every person's request is answered 401.
    Key,
    /// Anyone signed in to this clinic (their own account pages).
    SignedIn,
    /// A signed-in person whose role has at least one of these permissions.
    AnyOf(&'static [Permission]),
    /// A session whose password was right and whose two-step code is still to come.
    SecondStep,
    /// Two-step sign-in set-up: anyone signed in, and also a session that must set it up
    /// before it may do anything else.
    Security,
}

/// A route's policy: its access, and whether requests to it are the person's own activity.
/// Background requests (the schedule's live refresh) never extend an idle session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub access: Access,
    pub background: bool,
    /// The largest request body the route takes, enforced before any of it is read.
    pub max_body: usize,
    /// The request's transaction plans its statements generically (see
    /// `TenantDb::begin_generic_plans`): for pages whose one large statement has one good
    /// plan whatever the patient.
    pub generic_plans: bool,
}

/// Request bodies are limited to this unless a route says otherwise (uploads will).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

pub const PUBLIC: Policy = Policy::of(Access::Public);
pub const SECOND_STEP: Policy = Policy::of(Access::SecondStep);
pub const SECURITY: Policy = Policy::of(Access::Security);
pub const SIGNED_IN: Policy = Policy::of(Access::SignedIn);
pub const OWN_CARE: Policy = Policy::of(Access::AnyOf(&[Permission::OwnCare]));
pub const DEMOGRAPHICS: Policy = Policy::of(Access::AnyOf(&[Permission::Demographics]));
pub const SCHEDULING: Policy = Policy::of(Access::AnyOf(&[Permission::Scheduling]));
pub const REGISTRATION: Policy = Policy::of(Access::AnyOf(&[Permission::Registration]));
pub const ADMINISTRATION: Policy = Policy::of(Access::AnyOf(&[Permission::Administration]));
/// The health record, for staff: clinicians and administrators.
pub const CLINICAL: Policy = Policy::of(Access::AnyOf(&[Permission::Clinical]));
/// Bills and payments, for staff: billing and administrators.
pub const BILLING: Policy = Policy::of(Access::AnyOf(&[Permission::Billing]));
/// Visits, from either side: a patient's own, or the clinic's schedule.
pub const VISITS: Policy = Policy::of(Access::AnyOf(&[
    Permission::OwnCare,
    Permission::Scheduling,
]));

/// A patient's own chart (summary and areas): one large statement, planned once.
pub const OWN_CHART: Policy = OWN_CARE.with_generic_plans();
/// A patient's chart for clinical staff.
pub const CLINICAL_CHART: Policy = CLINICAL.with_generic_plans();

/// FHIR import: public to the guard (the handler checks the clinic API key), with room for a
/// bundle of several thousand entries.
pub const FHIR_IMPORT: Policy = Policy {
    max_body: 32 * 1024 * 1024,
    ..Policy::of(Access::Key)
};

/// A call from a clinic's own system: public to the guard, the handler checks the clinic API
/// key.
pub const KEY: Policy = Policy::of(Access::Key);

/// A patient's upload: their own care, with room for a 10 MB file and the form around it.
pub const UPLOAD: Policy = Policy {
    max_body: crate::pages::documents::UPLOAD_BODY,
    ..OWN_CARE
};

impl Policy {
    pub const fn of(access: Access) -> Self {
        Policy {
            access,
            background: false,
            max_body: DEFAULT_MAX_BODY,
            generic_plans: false,
        }
    }

    /// The same access, in a transaction with generic plans.
    pub const fn with_generic_plans(self) -> Self {
        Policy {
            generic_plans: true,
            ..self
        }
    }

    /// The same access, for requests a page makes by itself.
    pub const fn background(self) -> Self {
        Policy {
            background: true,
            ..self
        }
    }

    /// Whether `who` (or nobody) passes.
    pub fn admits(&self, who: Option<&SignedIn>) -> bool {
        let stage = who.map(|w| w.stage);
        match (self.access, stage) {
            (Access::Public | Access::Key, _) => true,
            (Access::SecondStep, s) => s == Some(Stage::Code),
            (_, None | Some(Stage::Code)) => false,
            (Access::Security, Some(_)) => true,
            (_, Some(Stage::Enrol)) => false,
            (Access::SignedIn, Some(Stage::Full)) => true,
            (Access::AnyOf(perms), Some(Stage::Full)) => {
                who.is_some_and(|me| perms.iter().any(|p| me.may(*p)))
            }
        }
    }
}

/// The API's routes (method, path as in the OpenAPI document under `/api`). A path missing
/// here answers 404 whatever the handler says; `tests/tests/roles.rs` fails when an operation
/// of the document has no row, or a row no operation.
pub const API: &[(Method, &str, Policy)] = &[
    (Method::GET, "/v1/clinic", PUBLIC),
    (Method::GET, "/v1/signup/slug-availability", PUBLIC),
    (Method::GET, "/v1/signup/requests/{id}", PUBLIC),
    (Method::POST, "/v1/sessions", PUBLIC),
    (Method::DELETE, "/v1/sessions/current", SIGNED_IN),
    (Method::GET, "/v1/me", SIGNED_IN),
    (Method::GET, "/v1/booking-options", VISITS),
    (Method::GET, "/v1/slots", VISITS),
    (Method::GET, "/v1/appointments", VISITS),
    (Method::POST, "/v1/appointments", VISITS),
    (Method::GET, "/v1/appointments/{id}", VISITS),
    (Method::POST, "/v1/appointments/{id}/reschedule", VISITS),
    (Method::POST, "/v1/appointments/{id}/cancel", VISITS),
    (Method::POST, "/v1/appointments/{id}/waitlist", OWN_CARE),
    (Method::DELETE, "/v1/appointments/{id}/waitlist", OWN_CARE),
    (Method::GET, "/v1/waitlist-offers", OWN_CARE),
    (Method::POST, "/v1/waitlist-offers/{id}/accept", OWN_CARE),
    (Method::GET, "/v1/me/reminder-preferences", OWN_CARE),
    (Method::PUT, "/v1/me/reminder-preferences", OWN_CARE),
    (Method::POST, "/v1/me/phone-verification", OWN_CARE),
    (Method::POST, "/v1/me/phone-verification/resend", OWN_CARE),
    (Method::GET, "/v1/undelivered-messages", SCHEDULING),
    (Method::GET, "/v1/record", OWN_CHART),
    (Method::GET, "/v1/bills", OWN_CARE),
    (Method::GET, "/v1/bills/{id}", OWN_CARE),
    (Method::POST, "/v1/bills/payments/{id}/receipt", OWN_CARE),
    (Method::GET, "/v1/documents", OWN_CARE),
    (Method::POST, "/v1/documents", OWN_CARE),
    (Method::POST, "/v1/documents/uploads", UPLOAD),
    (Method::GET, "/v1/documents/{id}", OWN_CARE),
    (Method::DELETE, "/v1/documents/{id}", OWN_CARE),
    (Method::GET, "/v1/documents/{id}/content", OWN_CARE),
    (Method::GET, "/v1/record/results", OWN_CARE),
    (Method::GET, "/v1/record/results/{id}", OWN_CARE),
    (Method::GET, "/v1/record/trends/{loinc}", OWN_CARE),
    (Method::GET, "/v1/record/visits", OWN_CHART),
    // The key is checked by the handler (a clinic API key, not a session).
    (Method::POST, "/fhir/R4", FHIR_IMPORT),
    (Method::POST, "/v1/billing/statements", KEY),
];

/// Whether a concrete path matches a template whose `{name}` or `:name` segments stand for
/// any one segment.
pub fn path_matches(template: &str, path: &str) -> bool {
    let mut t = template.trim_end_matches('/').split('/');
    let mut p = path.trim_end_matches('/').split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                let wild = ts.starts_with(':') || (ts.starts_with('{') && ts.ends_with('}'));
                if !(ts == ps || (wild && !ps.is_empty())) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The API policy of a request (`path` is the one after `/api`), if the table has one.
pub fn api_policy(method: &Method, path: &str) -> Option<Policy> {
    API.iter()
        .find(|(m, t, _)| m == method && path_matches(t, path))
        .map(|(_, _, p)| *p)
}

/// The signed-in person as the guard found them, for handlers to reuse (one session lookup
/// per request).
#[derive(Clone)]
pub struct Authenticated(pub Option<(SignedIn, Carrier)>);

/// Guards one page route with its policy.
pub struct PageGuard<E> {
    pub(crate) inner: E,
    pub(crate) policy: Policy,
}

impl<E: Endpoint> Endpoint for PageGuard<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        guarded(&self.inner, self.policy, req, false).await
    }
}

/// Guards the whole API: the policy comes from [`API`] by method and path.
pub struct ApiGuard<E>(pub(crate) E);

impl<E: Endpoint> Endpoint for ApiGuard<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.original_uri().path();
        let path = path.strip_prefix("/api").unwrap_or(path).to_owned();
        match api_policy(req.method(), &path) {
            Some(policy) => guarded(&self.0, policy, req, true).await,
            None if API.iter().any(|(_, t, _)| path_matches(t, &path)) => {
                Ok(crate::api::error::method_not_allowed_response())
            }
            None => Ok(crate::api::error::not_found_response()),
        }
    }
}

async fn guarded<E: Endpoint>(
    inner: &E,
    policy: Policy,
    mut req: Request,
    json: bool,
) -> poem::Result<Response> {
    if let Err(refused) = limit_body(&mut req, policy.max_body, json).await {
        return Ok(refused);
    }
    // Public routes look the session up only if their handler asks (branding.css, the logo
    // and the sign-in page need no session lookup per request).
    if matches!(policy.access, Access::Public | Access::Key) {
        return inner.call(req).await.map(IntoResponse::into_response);
    }
    let state = req
        .data::<AppState>()
        .cloned()
        .ok_or_else(|| internal(std::io::Error::other("application state missing")))?;
    // Everything else belongs to a clinic's site: there is nobody to admit on the platform's.
    let Some(tenant) = auth::clinic(&req) else {
        return Ok(if json {
            crate::api::error::not_found_response()
        } else {
            crate::pages::errors::not_found()
        });
    };
    // A page's own script refreshing it (the schedule's live update) says so, and does not keep
    // an unattended session alive: only a person's requests do. (The header can only make a
    // client's own session end sooner.)
    let refresh = req.header("x-portal-refresh") == Some("1");
    let activity = !policy.background && !refresh;
    // The session is looked up in the clinic transaction the handler will use (`tx.rs`).
    let Some((token, carrier)) = auth::presented_token(&req, &state) else {
        if !policy.admits(None) {
            return Ok(refuse(&req, None, json));
        }
        req.extensions_mut().insert(Authenticated(None));
        return inner.call(req).await.map(IntoResponse::into_response);
    };
    // A body is read whole before a connection is taken: a slow sender must not pin one.
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        match req.take_body().into_bytes().await {
            Ok(body) => req.set_body(body),
            Err(_) => return Ok(StatusCode::BAD_REQUEST.into_response()),
        }
    }
    let begin = || async {
        if policy.generic_plans {
            state.tenant_db.begin_generic_plans(&tenant).await
        } else {
            state.tenant_db.begin(&tenant).await
        }
        .map_err(internal)
    };
    let mut tx = begin().await?;
    let found = auth::authenticate_in(&mut tx, &token, &state, activity).await?;
    if found.as_ref().is_some_and(|f| f.touched) {
        // The session's row is locked by its last-seen mark: commit that now, or the
        // request would hold the lock (and block any change to the session) to its end.
        tx.commit().await.map_err(internal)?;
        tx = begin().await?;
    }
    let who = found.map(|f| (f.who, carrier));
    if !policy.admits(who.as_ref().map(|(w, _)| w)) {
        tx.commit().await.map_err(internal)?;
        return Ok(refuse(&req, who.map(|(w, _)| w), json));
    }
    let handed = crate::tx::Handed::new(tx);
    req.extensions_mut().insert(handed.clone());
    req.extensions_mut().insert(Authenticated(who));
    let out = inner.call(req).await;
    if let Some(left) = handed.take() {
        left.commit().await.map_err(internal)?;
    }
    out.map(IntoResponse::into_response)
}

/// Refuses a body over `max` with 413 before reading it when its length is declared; a body
/// without a declared length is read up to the limit and refused the moment it passes it.
async fn limit_body(req: &mut Request, max: usize, json: bool) -> Result<(), Response> {
    let too_large = || {
        let message = format!(
            "the request body is larger than this address accepts ({} KiB)",
            max / 1024
        );
        if json {
            crate::api::error::shaped(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message)
        } else {
            format!("Too large: {message}.")
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
                .into_response()
        }
    };
    let declared = req
        .header("content-length")
        .map(|v| v.trim().parse::<u64>());
    match declared {
        Some(Ok(n)) if n > max as u64 => Err(too_large()),
        Some(Ok(_)) => Ok(()),
        Some(Err(_)) if json => Err(crate::api::error::shaped(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Content-Length is not a number",
        )),
        Some(Err(_)) => Err(StatusCode::BAD_REQUEST.into_response()),
        // No declared length: chunked, or HTTP/2 (which has no Transfer-Encoding). Requests
        // without a body by their method are left alone; the rest are read up to the limit.
        None if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) => Ok(()),
        None => {
            use tokio::io::AsyncReadExt;
            let mut buf = Vec::new();
            let reader = req.take_body().into_async_read();
            let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
            if reader.take(limit).read_to_end(&mut buf).await.is_err() {
                return Err(StatusCode::BAD_REQUEST.into_response());
            }
            if buf.len() > max {
                return Err(too_large());
            }
            req.set_body(buf);
            Ok(())
        }
    }
}

#[derive(Template)]
#[template(path = "forbidden.html")]
struct NotForYourRole {
    chrome: Chrome,
    role: &'static str,
}

/// Nobody signed in: to the sign-in page (401 for the API). Signed in with the wrong role: a
/// page that says so and leads to the role's own start page (403 `forbidden` for the API).
fn refuse(req: &Request, who: Option<SignedIn>, json: bool) -> Response {
    // Half-way through signing in: back to the step that is missing.
    let who = match who.map(|w| (w.stage, w)) {
        Some((Stage::Code, _)) if !json => {
            return Redirect::see_other("/login/code").into_response();
        }
        Some((Stage::Enrol, _)) if !json => {
            return Redirect::see_other("/account/security").into_response();
        }
        Some((Stage::Full, w)) => Some(w),
        _ => None,
    };
    match (who, json) {
        (None, true) => crate::api::error::unauthorized_response(),
        (None, false) => Redirect::see_other("/login").into_response(),
        (Some(_), true) => crate::pages::errors::forbidden(true, "your role does not include this"),
        (Some(me), false) => {
            let Some(tenant) = auth::clinic(req) else {
                return crate::pages::errors::forbidden(false, "not for your role");
            };
            let role = me.role.label();
            let page = NotForYourRole {
                chrome: Chrome {
                    tenant,
                    user: Some(me),
                    csrf: crate::csrf::form_token(req),
                    current: "",
                },
                role,
            };
            match page.render() {
                Ok(html) => Html(html)
                    .with_status(StatusCode::FORBIDDEN)
                    .into_response(),
                Err(_) => crate::pages::errors::forbidden(false, "not for your role"),
            }
        }
    }
}

/// The page routes and their policies, built together so neither exists without the other.
pub struct Pages {
    route: poem::Route,
    table: Vec<(&'static str, Policy)>,
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

impl Pages {
    pub fn new() -> Self {
        Pages {
            route: poem::Route::new(),
            table: Vec::new(),
        }
    }

    pub fn at<E>(mut self, path: &'static str, policy: Policy, ep: E) -> Self
    where
        E: poem::IntoEndpoint,
        E::Endpoint: 'static,
    {
        self.table.push((path, policy));
        self.route = self.route.at(
            path,
            PageGuard {
                inner: ep.into_endpoint(),
                policy,
            },
        );
        self
    }

    pub fn into_parts(self) -> (poem::Route, Vec<(&'static str, Policy)>) {
        (self.route, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_parameter() {
        assert!(path_matches(
            "/v1/appointments/{id}",
            "/v1/appointments/apt_1"
        ));
        assert!(path_matches(
            "/appointments/:id/cancel",
            "/appointments/x/cancel"
        ));
        assert!(!path_matches("/v1/appointments/{id}", "/v1/appointments"));
        assert!(!path_matches(
            "/v1/appointments/{id}",
            "/v1/appointments/a/b"
        ));
        assert!(!path_matches("/v1/appointments/{id}", "/v1/appointments/"));
        assert!(path_matches("/v1/me", "/v1/me/"));
    }
}
