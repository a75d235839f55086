//! Cross-site request forgery defence, in two layers:
//! 1. every state-changing request from a browser must come from this very origin: a
//!    `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` naming another host, is
//!    refused (another clinic's subdomain counts as another origin);
//! 2. every form carries a token that must match the site's CSRF cookie (double submit), and
//!    every cookie-authenticated API change carries the session's token in `X-CSRF-Token`.

use std::sync::Arc;

use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use portal_domain::identity::tokens::SecretToken;

use crate::AppState;
use crate::request::cookie;

/// The form token of this request (from the cookie, or freshly made and set on the response).
#[derive(Clone, Debug)]
pub struct FormToken(pub String);

/// Whether a state-changing request comes from this very origin. Browsers say so in
/// `Sec-Fetch-Site` (a sibling clinic's subdomain is `same-site`, which is refused too); without
/// it, the `Origin` header must name this host. (With `Referrer-Policy: no-referrer`, browsers
/// send `Origin: null` on form posts, so `Sec-Fetch-Site` is what modern browsers are judged by.)
fn same_origin(req: &Request) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match req.header("origin") {
        None => true,
        Some(origin) => {
            let host = req.header("host").unwrap_or_default();
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
        }
    }
}

/// Refuses cross-site changes, and gives every request a form token.
pub async fn guard<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && !same_origin(&req) {
        return Ok(crate::pages::errors::forbidden(
            req.uri().path().starts_with("/api/"),
            "This request came from another site and was refused.",
        ));
    }
    let Some(policy) = req.data::<AppState>().map(|s| s.cookies) else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let existing = cookie(&req, policy.csrf_name()).filter(|t| t.len() == 43);
    let (token, fresh) = match existing {
        Some(t) => (t, false),
        None => (SecretToken::generate().expose().to_owned(), true),
    };
    req.extensions_mut().insert(FormToken(token.clone()));
    // A refusal (404, 403…) still gets the cookie: the branded error page's links and a
    // browser's next form need it. Server errors go on up to be logged.
    let mut resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) if !e.status().is_server_error() => e.into_response(),
        Err(e) => return Err(e),
    };
    if fresh && let Ok(v) = policy.set(policy.csrf_name(), &token, None).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The token to put in a form.
pub fn form_token(req: &Request) -> String {
    req.extensions()
        .get::<FormToken>()
        .map(|t| t.0.clone())
        .unwrap_or_default()
}

/// Checks a submitted form's token against the cookie.
pub fn check_form(req: &Request, submitted: &str) -> poem::Result<()> {
    let Some(state) = req.data::<AppState>() else {
        return Err(StatusCode::FORBIDDEN.into());
    };
    match cookie(req, state.cookies.csrf_name()) {
        Some(c) if !submitted.is_empty() && constant_eq(c.as_bytes(), submitted.as_bytes()) => {
            Ok(())
        }
        _ => Err(poem::Error::from_string(
            "Your form expired. Go back, reload the page and try again.",
            StatusCode::FORBIDDEN,
        )),
    }
}

/// Compares secrets without an early exit.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
