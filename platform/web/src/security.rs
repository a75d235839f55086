use std::sync::Arc;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};

/// No third-party anything, no inline script or style: the pages need nothing else. Forms post
/// to the site itself, and to nowhere else but Stripe's own pages (`extra_form_origins`): a
/// form that starts a payment or onboarding is answered with a redirect there, and browsers
/// hold a redirect after a form to the form's `form-action`.
pub fn csp(extra_form_origins: &[String]) -> String {
    let mut form = String::from("'self'");
    for o in extra_form_origins {
        form.push(' ');
        form.push_str(o);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; form-action {form}; frame-ancestors 'none'; \
         base-uri 'none'"
    )
}

/// The policy with no origin beyond the site's own.
pub const STRICT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                              img-src 'self' data:; font-src 'self'; connect-src 'self'; \
                              form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Swagger UI ships inline script and style, so its page alone gets them (still no other origin).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; \
                        style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                        connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers every response carries. A response that set its own, stricter
/// CSP (the uploaded logo's sandbox) keeps it. With `hsts` (the public scheme is https),
/// browsers are told to use nothing else for a year.
pub async fn headers<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    hsts: bool,
    csp: HeaderValue,
) -> poem::Result<Response> {
    let docs = req.uri().path().starts_with("/api/docs");
    let mut resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    if !h.contains_key("content-security-policy") {
        let csp = if docs {
            HeaderValue::from_static(DOCS_CSP)
        } else {
            csp
        };
        h.insert("content-security-policy", csp);
    }
    if hsts {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Pages may carry health data (and staff search text in their address): a shared front-desk
    // computer's browser keeps none of them. Assets set their own caching.
    let is_page = h
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // Pages, and the API's answers about people, are never kept by a browser or a proxy.
    let is_json = h
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/fhir+json")
        });
    if (is_page || is_json) && !h.contains_key("cache-control") {
        h.insert("cache-control", HeaderValue::from_static("no-store"));
    }
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    Ok(resp)
}
