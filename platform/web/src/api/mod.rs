//! `/api/v1`: the JSON API, documented by poem-openapi (spec at `/api/openapi.json`, docs at
//! `/api/docs`). Every error, including the framework's own, has the shape of [`error::ErrorBody`].

mod appointments;
mod bills;
mod caller;
mod clinic;
mod documents;
pub mod error;
mod fhir;
mod record;
mod reminders;
pub(crate) use reminders::{Resend, after_save, may_change_number, resend as resend_phone_code};
mod sessions;
mod signup;
mod statement_imports;

use poem_openapi::{OpenApiService, Tags};

#[derive(Tags)]
enum ApiTags {
    /// Booking, moving and cancelling visits.
    Appointments,
    /// The patient's bills: balance, statements, payments.
    Bills,
    /// The clinic whose site this is.
    Clinic,
    /// Documents: PDFs of the record prepared by workers, and uploads.
    Documents,
    /// Reminder choices and undelivered messages.
    Reminders,
    /// The health record: FHIR import, and the patient's own record.
    Records,
    /// Signing in and out.
    Sessions,
    /// Clinic sign-up on the platform's site.
    Signup,
}

type Apis = (
    appointments::AppointmentsApi,
    bills::BillsApi,
    clinic::ClinicApi,
    documents::DocumentsApi,
    fhir::FhirApi,
    record::RecordApi,
    reminders::RemindersApi,
    sessions::SessionsApi,
    signup::SignupApi,
    statement_imports::StatementImportApi,
);

pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            appointments::AppointmentsApi,
            bills::BillsApi,
            clinic::ClinicApi,
            documents::DocumentsApi,
            fhir::FhirApi,
            record::RecordApi,
            reminders::RemindersApi,
            sessions::SessionsApi,
            signup::SignupApi,
            statement_imports::StatementImportApi,
        ),
        "Patient portal API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The portal's capabilities as JSON. Every request is answered for the clinic named by \
             the Host header (`<slug>.<base domain>` or the clinic's own domain). Sessions are \
             cookies set by `POST /v1/sessions` (or the same token as `Authorization: Bearer`); \
             state-changing calls authenticated by the cookie must send `X-CSRF-Token`. Errors \
             share one shape: `{\"code\": \"…\", \"message\": \"…\"}` with stable codes.",
    )
    .server("/api")
}
