//! Server-rendered pages. Templates are compiled in (askama), so a template that refers to a
//! missing field does not build.

pub mod assets;
pub mod errors;
pub mod home;
pub mod platform;

use askama::Template;
use poem::web::Html;

/// Renders a template; a rendering failure is a server error (logged by the tracing layer).
fn render(t: &impl Template) -> poem::Result<Html<String>> {
    t.render().map(Html).map_err(|e| {
        poem::Error::from_string(
            format!("template: {e}"),
            poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        )
    })
}

/// The areas of a clinic's portal, in navigation order. Those not yet open show as such.
pub(crate) const NAV_AREAS: &[&str] = &[
    "Appointments",
    "Messages",
    "Health record",
    "Results",
    "Medications",
    "Billing",
    "Documents",
];
