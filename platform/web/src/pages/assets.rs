use poem::error::NotFoundError;
use poem::web::Data;
use poem::{IntoResponse, Response, handler};

use crate::{AppState, CurrentSite};

const STYLESHEET: &str = include_str!("../../assets/portal.css");

/// Platform colours, used on the base domain.
const PLATFORM_PRIMARY: &str = "#1f3a5f";
const PLATFORM_ACCENT: &str = "#2a7f62";

/// `/assets/portal.css`: the one stylesheet, the same on every host.
#[handler]
pub fn stylesheet() -> Response {
    STYLESHEET
        .with_content_type("text/css; charset=utf-8")
        .with_header("cache-control", "public, max-age=300")
        .into_response()
}

const PICO: &str = include_str!("../../assets/vendor/pico-2.1.1.min.css");
const PICO_GZ: &[u8] = include_bytes!("../../assets/vendor/pico-2.1.1.min.css.gz");

/// `/assets/pico-2.1.1.min.css`: the CSS library the design system builds on (vendored by
/// `infra/vendor-assets`, with a gzip copy: 12 KB instead of 83 KB on a phone). Its address
/// names its version, so browsers may keep it for a year.
#[handler]
pub fn pico(req: &poem::Request) -> Response {
    let gzip = req
        .header("accept-encoding")
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let resp = if gzip {
        PICO_GZ
            .with_header("content-encoding", "gzip")
            .into_response()
    } else {
        PICO.into_response()
    };
    resp.with_content_type("text/css; charset=utf-8")
        .with_header("cache-control", "public, max-age=31536000, immutable")
        .with_header("vary", "accept-encoding")
        .into_response()
}

const SIGNUP_JS: &str = include_str!("../../assets/signup.js");

/// `/assets/signup.js`: the sign-up form's live availability check.
#[handler]
pub fn signup_js() -> Response {
    SIGNUP_JS
        .with_content_type("text/javascript; charset=utf-8")
        .with_header("cache-control", "public, max-age=300")
        .into_response()
}

const SCHEDULE_JS: &str = include_str!("../../assets/schedule.js");

/// `/assets/schedule.js`: keeps the staff schedule current while it is open.
#[handler]
pub fn schedule_js() -> Response {
    SCHEDULE_JS
        .with_content_type("text/javascript; charset=utf-8")
        .with_header("cache-control", "public, max-age=300")
        .into_response()
}

const DOCUMENTS_JS: &str = include_str!("../../assets/documents.js");

/// `/assets/documents.js`: a document's page following its progress until it is ready.
#[handler]
pub fn documents_js() -> Response {
    DOCUMENTS_JS
        .with_content_type("text/javascript; charset=utf-8")
        .with_header("cache-control", "public, max-age=300")
        .into_response()
}

/// `/branding.css`: the site's colours as CSS variables. A stylesheet rather than an inline
/// style keeps the Content-Security-Policy strict.
#[handler]
pub fn branding_css(Data(site): Data<&CurrentSite>) -> Response {
    let (primary, accent) = match site {
        CurrentSite::Platform => (PLATFORM_PRIMARY, PLATFORM_ACCENT),
        CurrentSite::Clinic(t) => (
            t.branding().primary_color.as_str(),
            t.branding().accent_color.as_str(),
        ),
    };
    // Colours are validated #rrggbb values (database CHECK), safe to place in CSS.
    format!(":root{{--brand-primary:{primary};--brand-accent:{accent};}}\n")
        .with_content_type("text/css; charset=utf-8")
        .with_header("cache-control", "no-cache")
        .into_response()
}

/// `/branding/logo`: the clinic's logo, or 404 when it has none.
#[handler]
pub async fn logo(
    Data(state): Data<&AppState>,
    Data(site): Data<&CurrentSite>,
) -> poem::Result<Response> {
    let CurrentSite::Clinic(tenant) = site else {
        return Err(poem::Error::from(NotFoundError));
    };
    let logo = state
        .registry
        .logo(tenant.id())
        .await
        .map_err(crate::internal)?
        .ok_or_else(|| poem::Error::from(NotFoundError))?;
    Ok(logo
        .bytes
        .with_content_type(logo.content_type)
        // An SVG opened directly must not run script.
        .with_header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        )
        .with_header("cache-control", "no-cache")
        .into_response())
}
