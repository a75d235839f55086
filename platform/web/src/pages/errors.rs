use askama::Template;
use poem::http::StatusCode;
use poem::web::Json;
use poem::{IntoResponse, Response};
use portal_tenants::Tenant;
use serde_json::json;

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound;

#[derive(Template)]
#[template(path = "unavailable.html")]
struct Unavailable<'a> {
    clinic_name: &'a str,
}

#[derive(Template)]
#[template(path = "internal.html")]
struct Internal;

fn html_or_plain(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => poem::web::Html(html).with_status(status).into_response(),
        Err(_) => status
            .canonical_reason()
            .unwrap_or("error")
            .with_status(status)
            .into_response(),
    }
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    Json(json!({ "code": code, "message": message }))
        .with_status(status)
        .into_response()
}

/// A host that is neither the platform nor any clinic: a plain 404, never a default clinic.
pub fn unknown_host(json: bool) -> Response {
    if json {
        json_error(
            StatusCode::NOT_FOUND,
            "unknown_site",
            "no clinic portal at this address",
        )
    } else {
        html_or_plain(&NotFound, StatusCode::NOT_FOUND)
    }
}

/// A suspended clinic: says so, shows nothing else.
pub fn clinic_unavailable(tenant: &Tenant, json: bool) -> Response {
    if json {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "clinic_unavailable",
            "this portal is not available",
        )
    } else {
        html_or_plain(
            &Unavailable {
                clinic_name: tenant.display_name(),
            },
            StatusCode::SERVICE_UNAVAILABLE,
        )
    }
}

/// The opaque page for server errors; the cause is in the logs under the request id.
pub fn internal() -> Response {
    html_or_plain(&Internal, StatusCode::INTERNAL_SERVER_ERROR)
}

/// A 404 with no body: [`branded`] gives it the site's page.
pub fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

#[derive(Template)]
#[template(path = "error_page.html")]
struct ErrorPage<'a> {
    site_name: &'a str,
    has_logo: bool,
    title: &'static str,
    what: String,
    next: &'static str,
    request_id: String,
}

/// Paths whose errors are JSON (or plain, for machines), never pages.
fn is_machine_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/fhir/")
        || path.starts_with("/webhooks/")
        || path.starts_with("/assets/")
        || matches!(
            path,
            "/healthz" | "/readyz" | "/branding.css" | "/branding/logo" | "/staff/schedule/stamp"
        )
}

/// The words of a branded error page for `status`, or `None` to leave the response alone.
fn words_for(
    status: StatusCode,
    retry_after: Option<&str>,
) -> Option<(&'static str, String, &'static str)> {
    Some(match status.as_u16() {
        403 => (
            "We could not do that",
            "This page or form cannot be used from here. If a form was open for a long time, go back, reload the page and try again.".to_owned(),
            "",
        ),
        404 => (
            "Page not found",
            "There is no page at this address. If you typed it, check it; if you followed a link, it may be out of date.".to_owned(),
            "",
        ),
        410 => (
            "This link no longer works",
            "The link has expired or has already been used.".to_owned(),
            "Sign in, or ask the clinic to send a new link.",
        ),
        429 => (
            "Too many tries",
            match retry_after.and_then(|s| s.parse::<i64>().ok()) {
                Some(secs) => format!(
                    "You have tried this too many times. Please wait {} and try again.",
                    super::auth::human_wait(chrono::Duration::seconds(secs))
                ),
                None => "You have tried this too many times. Please wait a little and try again.".to_owned(),
            },
            "",
        ),
        500 => (
            "Something went wrong",
            "We could not show this page, and nothing you sent was saved half-way. Please try again in a moment.".to_owned(),
            "If it keeps happening, contact the clinic.",
        ),
        _ => return None,
    })
}

fn branded_page(
    site: Option<&crate::CurrentSite>,
    status: StatusCode,
    retry_after: Option<&str>,
    request_id: String,
) -> Option<Response> {
    let (title, what, next) = words_for(status, retry_after)?;
    let (site_name, has_logo) = match site {
        Some(crate::CurrentSite::Clinic(t)) => (t.display_name(), t.branding().has_logo),
        _ => ("Patient portal platform", false),
    };
    let page = ErrorPage {
        site_name,
        has_logo,
        title,
        what,
        next,
        request_id,
    };
    let mut resp = html_or_plain(&page, status);
    if let Some(r) = retry_after.and_then(|r| poem::http::HeaderValue::from_str(r).ok()) {
        resp.headers_mut().insert("retry-after", r);
    }
    Some(resp)
}

/// Gives every error a page with the site's name and logo that says what happened and where
/// to go: 403, 404, 410, 429 and 500, whether a handler returned the error or a bare
/// response. Pages that are already HTML (forms sent back with their errors, the "not part of
/// your role" page) pass untouched, as do the API and other machine paths. Server errors are
/// logged here, with their cause, before the page replaces them.
pub async fn branded<E: poem::Endpoint>(
    ep: std::sync::Arc<E>,
    req: poem::Request,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    if is_machine_path(&path) {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let site = req.extensions().get::<crate::CurrentSite>().cloned();
    let request_id = req
        .extensions()
        .get::<crate::request::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) if e.status().is_server_error() => {
            tracing::error!(error = ?e, "request failed");
            return Ok(branded_page(
                site.as_ref(),
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                request_id,
            )
            .unwrap_or_else(internal));
        }
        Err(e) => e.into_response(),
    };
    let is_html = resp
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html || !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let rid = if resp.status().is_server_error() {
        request_id
    } else {
        String::new()
    };
    match branded_page(site.as_ref(), resp.status(), retry_after.as_deref(), rid) {
        // Keep what the response already carried (a fresh form-token cookie, Retry-After…).
        Some(mut page) => {
            for (name, value) in resp.headers() {
                if name != poem::http::header::CONTENT_TYPE
                    && name != poem::http::header::CONTENT_LENGTH
                    && !page.headers().contains_key(name)
                {
                    page.headers_mut().append(name.clone(), value.clone());
                }
            }
            Ok(page)
        }
        None => Ok(resp),
    }
}

/// A refused request (e.g. a cross-site form post).
pub fn forbidden(json: bool, message: &str) -> Response {
    if json {
        json_error(StatusCode::FORBIDDEN, "forbidden", message)
    } else {
        message
            .to_owned()
            .with_status(StatusCode::FORBIDDEN)
            .into_response()
    }
}
