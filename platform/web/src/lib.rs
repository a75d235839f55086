//! The HTTP surface: each clinic's branded, server-rendered site and the `/api/v1` JSON API.
//! Handlers parse, call a store or service, and map the result; no SQL lives here.

mod api;
mod auth;
mod billing;
mod csrf;
mod health;
pub mod limits;
mod observe;
mod pages;
pub mod policy;
mod request;
mod security;
mod site;
mod state;
mod stripe_group_commit;
mod stripe_webhook;
mod texting;
mod tx;
mod webhooks;

use poem::{Endpoint, EndpointExt, IntoEndpoint, get, post};
use policy::{
    ADMINISTRATION, ApiGuard, BILLING, CLINICAL, CLINICAL_CHART, DEMOGRAPHICS, OWN_CARE, OWN_CHART,
    PUBLIC, Pages, Policy, REGISTRATION, SCHEDULING, SECOND_STEP, SECURITY, SIGNED_IN, UPLOAD,
};

pub use limits::Limiter;
pub use site::CurrentSite;
pub use state::{AppState, CookiePolicy, Payments};
pub use stripe_group_commit::GroupCommit;
pub use stripe_webhook::KeptEvents;
pub use webhooks::signature as sms_signature;

/// The whole web application for all clinics. Host → clinic resolution happens first (except
/// for health checks and shared assets), so every handler below sees a resolved site.
pub fn app(state: AppState) -> impl Endpoint {
    let hsts = state.links.scheme == "https";
    let origins = state
        .stripe
        .as_ref()
        .map(|p| p.page_origins.clone())
        .unwrap_or_default();
    // Built from configuration (URL origins only), so it is a valid header; the strict policy
    // without extra origins otherwise.
    let csp = poem::http::HeaderValue::from_str(&security::csp(&origins))
        .unwrap_or_else(|_| poem::http::HeaderValue::from_static(security::STRICT_CSP));
    let api = api::service();
    let docs = api.swagger_ui();
    let (pages, _) = pages(api.spec_endpoint()).into_parts();
    // The FHIR base URL an EHR is given is `/fhir/R4` on the clinic's host; the same operation
    // of the API answers there (the guard finds its policy by the path either way).
    let fhir = api::service()
        .into_endpoint()
        .catch_all_error(api::error::from_poem);
    pages
        .at("/fhir/R4", ApiGuard(fhir))
        .nest("/api/docs", docs)
        .nest(
            "/api",
            ApiGuard(api.into_endpoint().catch_all_error(api::error::from_poem)),
        )
        .around(csrf::guard)
        .around(pages::errors::branded)
        .around(site::resolve)
        .around(request::find_client)
        .data(state)
        // Tracing inside the headers layer: it turns errors into (opaque) responses after
        // logging their cause, and every response, errors included, then gets the headers.
        .around(observe::trace)
        .around(move |ep, req| security::headers(ep, req, hsts, csp.clone()))
}

/// Every page route with its policy (`policy.rs`): a page cannot be added without one. The
/// API's policies are the table `policy::API`; the interactive API docs are public.
fn pages(spec: impl Endpoint + 'static) -> Pages {
    Pages::new()
        .at("/healthz", PUBLIC, get(health::healthz))
        .at("/readyz", PUBLIC, get(health::readyz))
        .at("/assets/portal.css", PUBLIC, get(pages::assets::stylesheet))
        .at(
            "/assets/pico-2.1.1.min.css",
            PUBLIC,
            get(pages::assets::pico),
        )
        .at("/assets/signup.js", PUBLIC, get(pages::assets::signup_js))
        .at("/", PUBLIC, get(pages::home::home))
        .at(
            "/signup",
            PUBLIC,
            get(pages::platform::signup).post(pages::platform::signup_submit),
        )
        .at(
            "/signup/requests/:id",
            PUBLIC,
            get(pages::platform::signup_request),
        )
        .at(
            "/login",
            PUBLIC,
            get(pages::auth::login_page).post(pages::auth::login_submit),
        )
        .at("/logout", PUBLIC, post(pages::auth::logout))
        .at(
            "/password/forgot",
            PUBLIC,
            get(pages::auth::forgot_page).post(pages::auth::forgot_submit),
        )
        .at("/reset/:token", PUBLIC, get(pages::auth::reset_link))
        .at(
            "/password/reset",
            PUBLIC,
            get(pages::auth::reset_page).post(pages::auth::reset_submit),
        )
        .at(
            "/account/password",
            SIGNED_IN,
            get(pages::auth::password_page).post(pages::auth::password_submit),
        )
        .at(
            "/login/code",
            SECOND_STEP,
            get(pages::security::code_page).post(pages::security::code_submit),
        )
        .at(
            "/account/security",
            SECURITY,
            get(pages::security::security_page),
        )
        .at(
            "/account/security/start",
            SECURITY,
            post(pages::security::security_start),
        )
        .at(
            "/account/security/confirm",
            SECURITY,
            post(pages::security::security_confirm),
        )
        .at(
            "/account/security/remove",
            SIGNED_IN,
            post(pages::security::security_remove),
        )
        .at(
            "/admin/security",
            ADMINISTRATION,
            post(pages::security::requirement_submit),
        )
        .at("/account/access", SIGNED_IN, get(pages::home::access))
        .at("/invite/:token", PUBLIC, get(pages::invite::open_link))
        .at(
            "/invite",
            PUBLIC,
            get(pages::invite::page).post(pages::invite::submit),
        )
        .at(
            "/register",
            PUBLIC,
            get(pages::register::page).post(pages::register::submit),
        )
        .at("/admin", ADMINISTRATION, get(pages::admin::index))
        .at(
            "/admin/api-keys",
            ADMINISTRATION,
            get(pages::api_keys::list).post(pages::api_keys::create),
        )
        .at(
            "/admin/letters",
            ADMINISTRATION,
            get(pages::letters::letters_page).post(pages::letters::save_letters),
        )
        .at(
            "/admin/api-keys/:id/revoke",
            ADMINISTRATION,
            post(pages::api_keys::revoke),
        )
        .at(
            "/admin/patients",
            DEMOGRAPHICS,
            get(pages::patients::search),
        )
        .at("/record", OWN_CHART, get(pages::record::own))
        .at("/record/:area", OWN_CHART, get(pages::record::own_area))
        .at(
            "/assets/documents.js",
            PUBLIC,
            get(pages::assets::documents_js),
        )
        .at("/bills", OWN_CARE, get(billing::patient::bills))
        .at("/bills/:id", OWN_CARE, get(billing::patient::bill))
        .at("/bills/:id/pdf", OWN_CARE, post(billing::printing::own_pdf))
        .at(
            "/bills/payments/:id/receipt",
            OWN_CARE,
            post(billing::printing::own_receipt),
        )
        .at(
            "/billing/payments/:id/receipt",
            BILLING,
            post(billing::printing::staff_receipt),
        )
        .at("/bills/insurance", OWN_CARE, get(billing::insurance::list))
        .at(
            "/bills/insurance/:rank",
            OWN_CARE,
            get(billing::insurance::edit).post(billing::insurance::save),
        )
        .at(
            "/billing/patients/:id/insurance/:coverage/verify",
            BILLING,
            post(billing::insurance::verify),
        )
        .at(
            "/billing/statements/:id/pdf",
            BILLING,
            post(billing::printing::staff_pdf),
        )
        .at(
            "/billing/patients/:id/documents/:doc",
            BILLING,
            get(billing::printing::staff_document),
        )
        .at(
            "/billing/patients/:id/documents/:doc/download",
            BILLING,
            get(billing::printing::staff_download),
        )
        .at(
            "/billing/patients/:id/documents/:doc/retry",
            BILLING,
            post(billing::printing::staff_retry),
        )
        .at("/billing", BILLING, get(billing::staff::queue))
        .at(
            "/billing/payments/:id/refund",
            BILLING,
            get(billing::refund::form).post(billing::refund::refund),
        )
        .at(
            "/billing/reconciliation",
            BILLING,
            get(billing::books::reconciliation),
        )
        .at(
            "/billing/reconciliation/check",
            BILLING,
            post(billing::books::check),
        )
        .at("/billing/disputes", BILLING, get(billing::disputes::list))
        .at("/billing/summary", BILLING, get(billing::summary::page))
        .at(
            "/billing/payments",
            BILLING,
            get(billing::books::payments_page),
        )
        .at(
            "/billing/payouts.csv",
            BILLING,
            get(billing::books::payouts_csv),
        )
        .at(
            "/billing/disputes/:id/accept",
            BILLING,
            post(billing::disputes::accept),
        )
        .at(
            "/billing/payouts",
            BILLING,
            get(billing::books::payouts_page),
        )
        .at(
            "/billing/payments.csv",
            BILLING,
            get(billing::books::payments_csv),
        )
        .at("/admin/payments", ADMINISTRATION, get(billing::setup::page))
        .at(
            "/admin/payments/connect",
            ADMINISTRATION,
            post(billing::setup::connect),
        )
        .at(
            "/admin/payments/refresh",
            ADMINISTRATION,
            get(billing::setup::refresh),
        )
        .at(
            "/admin/payments/return",
            ADMINISTRATION,
            get(billing::setup::returned),
        )
        .at(
            "/bills/:id/pay",
            OWN_CARE,
            get(billing::pay::form).post(billing::pay::start),
        )
        .at("/bills/:id/paid", OWN_CARE, get(billing::pay::returned))
        .at(
            "/bills/:id/autopay/off",
            OWN_CARE,
            post(billing::plans::autopay_off),
        )
        .at(
            "/pay",
            PUBLIC,
            get(billing::guest::form).post(billing::guest::open),
        )
        .at("/pay/checkout", PUBLIC, post(billing::guest::start))
        .at("/pay/done", PUBLIC, get(billing::guest::done))
        .at("/pay/code/:code", PUBLIC, get(billing::guest::link))
        .at(
            "/billing/patients/:id",
            BILLING,
            get(billing::staff::account),
        )
        .at(
            "/billing/patients/:id/statements",
            BILLING,
            post(billing::staff::start),
        )
        .at(
            "/billing/statements/:id",
            BILLING,
            get(billing::staff::statement),
        )
        .at(
            "/billing/statements/:id/lines",
            BILLING,
            post(billing::staff::add_line),
        )
        .at(
            "/billing/statements/:id/lines/:line/remove",
            BILLING,
            post(billing::staff::remove_line),
        )
        .at(
            "/billing/statements/:id/issue",
            BILLING,
            post(billing::staff::issue),
        )
        .at(
            "/billing/statements/:id/void",
            BILLING,
            post(billing::staff::void),
        )
        .at(
            "/billing/statements/:id/payments",
            BILLING,
            post(billing::staff::record_payment),
        )
        .at(
            "/billing/statements/:id/plan",
            BILLING,
            post(billing::plans::create),
        )
        .at(
            "/billing/statements/:id/plan/end",
            BILLING,
            post(billing::plans::end),
        )
        .at(
            "/documents",
            OWN_CARE,
            get(pages::documents::list).post(pages::documents::request),
        )
        .at(
            "/documents/upload",
            UPLOAD,
            get(pages::documents::upload_form).post(pages::documents::upload),
        )
        .at("/documents/:id", OWN_CARE, get(pages::documents::own_one))
        .at(
            "/documents/:id/download",
            OWN_CARE,
            get(pages::documents::own_download),
        )
        .at(
            "/documents/:id/retry",
            OWN_CARE,
            post(pages::documents::own_retry),
        )
        .at(
            "/documents/:id/remove",
            OWN_CARE,
            get(pages::documents::remove_ask).post(pages::documents::remove),
        )
        .at(
            "/admin/patients/:id/documents",
            CLINICAL,
            get(pages::documents::staff_list).post(pages::documents::staff_request),
        )
        .at(
            "/admin/patients/:id/documents/:doc",
            CLINICAL,
            get(pages::documents::staff_one),
        )
        .at(
            "/admin/patients/:id/documents/:doc/download",
            CLINICAL,
            get(pages::documents::staff_download),
        )
        .at(
            "/admin/patients/:id/documents/:doc/retry",
            CLINICAL,
            post(pages::documents::staff_retry),
        )
        .at("/results", OWN_CARE, get(pages::results::list))
        .at(
            "/results/preferences",
            OWN_CARE,
            get(pages::results::preferences_page).post(pages::results::save_preferences),
        )
        .at(
            "/results/trend/:loinc",
            OWN_CARE,
            get(pages::results::own_trend),
        )
        .at("/results/:id", OWN_CARE, get(pages::results::own_one))
        .at(
            "/admin/patients/:id/results/:result",
            CLINICAL,
            get(pages::results::staff_one),
        )
        .at(
            "/admin/patients/:id/results/:result/comment",
            CLINICAL,
            post(pages::results::staff_comment),
        )
        .at(
            "/admin/patients/:id/trend/:loinc",
            CLINICAL,
            get(pages::results::staff_trend),
        )
        .at(
            "/admin/patients/:id/record",
            CLINICAL_CHART,
            get(pages::record::of_patient),
        )
        .at(
            "/admin/patients/:id/record/:kind",
            CLINICAL,
            post(pages::record::add),
        )
        .at(
            "/admin/patients/:id/record/:kind/:entry",
            CLINICAL,
            get(pages::record_edit::edit_page).post(pages::record_edit::edit_submit),
        )
        .at(
            "/admin/patients/:id/edit",
            REGISTRATION,
            get(pages::patients::edit_page).post(pages::patients::edit_submit),
        )
        .at(
            "/admin/patients/new",
            REGISTRATION,
            get(pages::patients::new_page).post(pages::patients::create),
        )
        .at(
            "/admin/patients/:id",
            DEMOGRAPHICS,
            get(pages::patients::page),
        )
        .at(
            "/admin/patients/:id/invite",
            REGISTRATION,
            post(pages::patients::invite),
        )
        .at(
            "/admin/staff",
            ADMINISTRATION,
            post(pages::admin::invite_staff),
        )
        .at(
            "/admin/settings",
            ADMINISTRATION,
            post(pages::admin::settings),
        )
        .at(
            "/admin/audit",
            ADMINISTRATION,
            get(pages::admin::audit_trail),
        )
        .at(
            "/admin/scheduling/:kind/:id",
            ADMINISTRATION,
            get(pages::setup_items::edit).post(pages::setup_items::update),
        )
        .at(
            "/admin/scheduling/:kind/:id/delete",
            ADMINISTRATION,
            get(pages::setup_items::remove_ask).post(pages::setup_items::remove),
        )
        .at(
            "/admin/clinic",
            ADMINISTRATION,
            get(pages::clinic_details::page).post(pages::clinic_details::submit),
        )
        .at(
            "/admin/branding",
            ADMINISTRATION,
            get(pages::admin::branding_page_get).post(pages::admin::branding_submit),
        )
        .at(
            "/assets/schedule.js",
            PUBLIC,
            get(pages::assets::schedule_js),
        )
        .at(
            "/appointments",
            OWN_CARE,
            get(pages::appointments::list).post(pages::appointments::create),
        )
        .at("/appointments/new", OWN_CARE, get(pages::appointments::new))
        .at(
            "/appointments/:id/confirm",
            OWN_CARE,
            post(pages::home::confirm_visit),
        )
        .at(
            "/appointments/:id/arrived",
            OWN_CARE,
            post(pages::home::arrived),
        )
        .at(
            "/appointments/:id/reschedule/confirm",
            OWN_CARE,
            get(pages::appointments::move_confirm),
        )
        .at(
            "/appointments/confirm",
            OWN_CARE,
            get(pages::appointments::confirm),
        )
        .at(
            "/appointments/:id",
            OWN_CARE,
            get(pages::appointments::detail),
        )
        .at(
            "/appointments/:id/calendar.ics",
            OWN_CARE,
            get(pages::appointments::calendar_file),
        )
        .at(
            "/appointments/:id/reschedule",
            OWN_CARE,
            get(pages::appointments::move_page).post(pages::appointments::move_submit),
        )
        .at(
            "/appointments/:id/cancel",
            OWN_CARE,
            get(pages::appointments::cancel_page).post(pages::appointments::cancel_submit),
        )
        .at(
            "/appointments/:id/waitlist/:action",
            OWN_CARE,
            post(pages::appointments::waitlist_submit),
        )
        .at(
            "/appointments/offers/:id/accept",
            OWN_CARE,
            post(pages::appointments::accept_offer),
        )
        .at(
            "/staff/schedule",
            SCHEDULING,
            get(pages::schedule::schedule_view),
        )
        .at(
            "/staff/book/confirm",
            SCHEDULING,
            get(pages::schedule::book_confirm),
        )
        .at(
            "/staff/appointments/:id/move/confirm",
            SCHEDULING,
            get(pages::schedule::move_confirm),
        )
        .at(
            "/staff/schedule/stamp",
            SCHEDULING.background(),
            get(pages::schedule::schedule_stamp_json),
        )
        .at(
            "/staff/book",
            SCHEDULING,
            get(pages::schedule::book_page).post(pages::schedule::book_submit),
        )
        .at(
            "/staff/appointments/:id/move",
            SCHEDULING,
            get(pages::schedule::move_page).post(pages::schedule::move_submit),
        )
        .at(
            "/staff/appointments/:id/:action",
            SCHEDULING,
            get(pages::schedule::act_page).post(pages::schedule::act),
        )
        .at(
            "/admin/scheduling",
            ADMINISTRATION,
            get(pages::scheduling_setup::setup_view),
        )
        .at(
            "/admin/scheduling/locations",
            ADMINISTRATION,
            post(pages::scheduling_setup::add_location),
        )
        .at(
            "/admin/scheduling/visit-types",
            ADMINISTRATION,
            post(pages::scheduling_setup::add_visit_type),
        )
        .at(
            "/admin/scheduling/providers",
            ADMINISTRATION,
            post(pages::scheduling_setup::add_provider),
        )
        .at(
            "/admin/scheduling/hours",
            ADMINISTRATION,
            post(pages::scheduling_setup::add_hours),
        )
        .at(
            "/admin/scheduling/hours/:id/delete",
            ADMINISTRATION,
            get(pages::setup_items::remove_hours_ask).post(pages::scheduling_setup::remove_hours),
        )
        .at(
            "/admin/scheduling/time-off",
            ADMINISTRATION,
            post(pages::scheduling_setup::add_time_off),
        )
        .at(
            "/admin/scheduling/rules",
            ADMINISTRATION,
            post(pages::scheduling_setup::set_rules),
        )
        .at(
            "/admin/scheduling/reminders",
            ADMINISTRATION,
            post(pages::scheduling_setup::set_reminders),
        )
        .at(
            "/account/reminders",
            OWN_CARE,
            get(pages::preferences::preferences_page).post(pages::preferences::preferences_submit),
        )
        .at(
            "/account/reminders/verify",
            OWN_CARE,
            post(pages::preferences::verify_submit),
        )
        .at(
            "/account/reminders/verify/resend",
            OWN_CARE,
            post(pages::preferences::resend_submit),
        )
        .at(
            "/staff/undelivered",
            SCHEDULING,
            get(pages::undelivered::undelivered_page),
        )
        .at("/webhooks/sms", PUBLIC, post(webhooks::sms))
        .at("/webhooks/stripe", PUBLIC, post(stripe_webhook::stripe))
        .at("/dev/mailbox", PUBLIC, get(pages::mailbox::mailbox))
        .at("/branding.css", PUBLIC, get(pages::assets::branding_css))
        .at("/branding/logo", PUBLIC, get(pages::assets::logo))
        .at("/api/openapi.json", PUBLIC, spec)
}

/// The page routes and their policies, for the test that walks every route as every role.
pub fn page_policies() -> Vec<(&'static str, Policy)> {
    pages(api::service().spec_endpoint()).into_parts().1
}

/// Wraps an unexpected failure as a 500: the cause is logged by the tracing layer, the client
/// sees an opaque error.
pub(crate) fn internal(e: impl std::error::Error + Send + Sync + 'static) -> poem::Error {
    match database_failure(&e) {
        Some(safe) => poem::Error::new(safe, poem::http::StatusCode::INTERNAL_SERVER_ERROR),
        None => poem::Error::new(e, poem::http::StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// A database error without its row data: PostgreSQL's detail ("Failing row contains (…)")
/// can hold a patient's values, and the cause is logged. Only the code, the constraint and
/// the message (which names tables and constraints, never values) are kept.
#[derive(Debug, thiserror::Error)]
#[error("database error {code}: {message} (constraint {constraint})")]
struct DatabaseFailure {
    code: String,
    constraint: String,
    message: String,
}

fn database_failure(e: &(dyn std::error::Error + 'static)) -> Option<DatabaseFailure> {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(sqlx::Error::Database(d)) = x.downcast_ref::<sqlx::Error>() {
            return Some(DatabaseFailure {
                code: d.code().map(|c| c.into_owned()).unwrap_or_default(),
                constraint: d.constraint().unwrap_or("none").to_owned(),
                message: d.message().to_owned(),
            });
        }
        cur = x.source();
    }
    None
}

/// The OpenAPI document, for contract snapshots and tooling.
pub fn openapi_json() -> String {
    api::service().spec()
}
