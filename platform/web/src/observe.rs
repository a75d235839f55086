use std::sync::Arc;
use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

/// Gives each request an id made here (a client's own `x-request-id`, when sane, is only logged
/// beside it: audit rows must not carry an id the client chose), a span carrying it and the
/// clinic slug, and one log line at the end. Only the path is logged, never
/// the query string, headers or body, so no tokens or health data reach the logs. Server errors
/// are logged here with their cause chain and reach the client opaque.
pub async fn trace<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let client_request_id = req
        .header("x-request-id")
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "http",
        request_id = %request_id,
        client_request_id = %client_request_id,
        method = %req.method(),
        path = %redact(req.uri().path()),
        tenant = tracing::field::Empty,
    );
    req.extensions_mut()
        .insert(crate::request::RequestId(request_id.clone()));
    async move {
        let started = Instant::now();
        let mut resp = match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::error!(error = ?e, "request failed");
                    crate::pages::errors::internal()
                } else {
                    e.into_response()
                }
            }
        };
        let status = resp.status().as_u16();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, ms, "request done");
        } else {
            tracing::info!(status, ms, "request done");
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        Ok(resp)
    }
    .instrument(span)
    .await
}

/// Emailed links carry a secret in their path (`/invite/<token>`, `/reset/<token>`), and a
/// trend's path names the test (`/results/trend/<LOINC>`): which test a patient had is health
/// information. The log shows only the route.
fn redact(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/invite/", "/reset/", "/pay/code/"] {
        if path.starts_with(prefix) && path.len() > prefix.len() {
            return format!("{prefix}…").into();
        }
    }
    for marker in ["/trend/", "/trends/"] {
        if let Some(at) = path.find(marker)
            && path.len() > at + marker.len()
        {
            return format!("{}…", &path[..at + marker.len()]).into();
        }
    }
    path.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_tokens_never_reach_the_log() {
        assert_eq!(super::redact("/invite/abcDEF123"), "/invite/…");
        assert_eq!(super::redact("/reset/abc"), "/reset/…");
        assert_eq!(super::redact("/pay/code/K7QFM2X9PA4D"), "/pay/code/…");
        assert_eq!(super::redact("/invite"), "/invite");
        assert_eq!(super::redact("/admin"), "/admin");
        assert_eq!(super::redact("/results/trend/2345-7"), "/results/trend/…");
        assert_eq!(
            super::redact("/admin/patients/pat_1/trend/2345-7"),
            "/admin/patients/pat_1/trend/…"
        );
        assert_eq!(
            super::redact("/api/v1/record/trends/2345-7"),
            "/api/v1/record/trends/…"
        );
    }
}
