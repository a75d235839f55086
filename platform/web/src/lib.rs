//! The HTTP surface: each clinic's branded, server-rendered site and the `/api/v1` JSON API.
//! Handlers parse, call a store or service, and map the result; no SQL lives here.

mod api;
mod auth;
mod csrf;
mod health;
mod observe;
mod pages;
mod request;
mod security;
mod site;
mod state;
mod webhooks;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route, get, post};

pub use site::CurrentSite;
pub use state::{AppState, CookiePolicy};
pub use webhooks::signature as sms_signature;

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
        .at("/assets/signup.js", get(pages::assets::signup_js))
        .at("/", get(pages::home::home))
        .at(
            "/signup",
            get(pages::platform::signup).post(pages::platform::signup_submit),
        )
        .at(
            "/login",
            get(pages::auth::login_page).post(pages::auth::login_submit),
        )
        .at("/logout", post(pages::auth::logout))
        .at(
            "/password/forgot",
            get(pages::auth::forgot_page).post(pages::auth::forgot_submit),
        )
        .at("/reset/:token", get(pages::auth::reset_link))
        .at(
            "/password/reset",
            get(pages::auth::reset_page).post(pages::auth::reset_submit),
        )
        .at(
            "/account/password",
            get(pages::auth::password_page).post(pages::auth::password_submit),
        )
        .at("/account/access", get(pages::home::access))
        .at("/invite/:token", get(pages::invite::open_link))
        .at(
            "/invite",
            get(pages::invite::page).post(pages::invite::submit),
        )
        .at(
            "/register",
            get(pages::register::page).post(pages::register::submit),
        )
        .at("/admin", get(pages::admin::index))
        .at("/admin/patients", post(pages::admin::create_patient))
        .at("/admin/patients/:id", get(pages::admin::patient_page))
        .at(
            "/admin/patients/:id/invite",
            post(pages::admin::invite_patient),
        )
        .at("/admin/staff", post(pages::admin::invite_staff))
        .at("/admin/settings", post(pages::admin::settings))
        .at("/admin/audit", get(pages::admin::audit_trail))
        .at(
            "/admin/branding",
            get(pages::admin::branding_page_get).post(pages::admin::branding_submit),
        )
        .at("/assets/schedule.js", get(pages::assets::schedule_js))
        .at(
            "/appointments",
            get(pages::appointments::list).post(pages::appointments::create),
        )
        .at("/appointments/new", get(pages::appointments::new))
        .at("/appointments/confirm", get(pages::appointments::confirm))
        .at("/appointments/:id", get(pages::appointments::detail))
        .at(
            "/appointments/:id/calendar.ics",
            get(pages::appointments::calendar_file),
        )
        .at(
            "/appointments/:id/reschedule",
            get(pages::appointments::move_page).post(pages::appointments::move_submit),
        )
        .at(
            "/appointments/:id/cancel",
            post(pages::appointments::cancel_submit),
        )
        .at(
            "/appointments/:id/waitlist/:action",
            post(pages::appointments::waitlist_submit),
        )
        .at(
            "/appointments/offers/:id/accept",
            post(pages::appointments::accept_offer),
        )
        .at("/staff/schedule", get(pages::schedule::schedule_view))
        .at(
            "/staff/schedule/stamp",
            get(pages::schedule::schedule_stamp_json),
        )
        .at(
            "/staff/book",
            get(pages::schedule::book_page).post(pages::schedule::book_submit),
        )
        .at(
            "/staff/appointments/:id/move",
            get(pages::schedule::move_page).post(pages::schedule::move_submit),
        )
        .at(
            "/staff/appointments/:id/:action",
            post(pages::schedule::act),
        )
        .at(
            "/admin/scheduling",
            get(pages::scheduling_setup::setup_view),
        )
        .at(
            "/admin/scheduling/locations",
            post(pages::scheduling_setup::add_location),
        )
        .at(
            "/admin/scheduling/visit-types",
            post(pages::scheduling_setup::add_visit_type),
        )
        .at(
            "/admin/scheduling/providers",
            post(pages::scheduling_setup::add_provider),
        )
        .at(
            "/admin/scheduling/hours",
            post(pages::scheduling_setup::add_hours),
        )
        .at(
            "/admin/scheduling/hours/:id/delete",
            post(pages::scheduling_setup::remove_hours),
        )
        .at(
            "/admin/scheduling/time-off",
            post(pages::scheduling_setup::add_time_off),
        )
        .at(
            "/admin/scheduling/rules",
            post(pages::scheduling_setup::set_rules),
        )
        .at(
            "/admin/scheduling/reminders",
            post(pages::scheduling_setup::set_reminders),
        )
        .at(
            "/account/reminders",
            get(pages::preferences::preferences_page).post(pages::preferences::preferences_submit),
        )
        .at(
            "/staff/undelivered",
            get(pages::undelivered::undelivered_page),
        )
        .at("/webhooks/sms", post(webhooks::sms))
        .at("/dev/mailbox", get(pages::mailbox::mailbox))
        .at("/branding.css", get(pages::assets::branding_css))
        .at("/branding/logo", get(pages::assets::logo))
        .at("/api/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest(
            "/api",
            api.into_endpoint().catch_all_error(api::error::from_poem),
        )
        .catch_error(pages::errors::not_found)
        .around(csrf::guard)
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
