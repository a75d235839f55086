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

/// Any 404 from routing on a known site gets the same page.
pub async fn not_found(_: poem::error::NotFoundError) -> Response {
    html_or_plain(&NotFound, StatusCode::NOT_FOUND)
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
