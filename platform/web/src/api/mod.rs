//! `/api/v1`: the JSON API, documented by poem-openapi (spec at `/api/openapi.json`, docs at
//! `/api/docs`). Every error, including the framework's own, has the shape of [`error::ErrorBody`].

mod clinic;
pub mod error;

use poem_openapi::{OpenApiService, Tags};

#[derive(Tags)]
enum ApiTags {
    /// The clinic whose site this is.
    Clinic,
}

pub fn service() -> OpenApiService<clinic::ClinicApi, ()> {
    OpenApiService::new(
        clinic::ClinicApi,
        "Patient portal API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The portal's capabilities as JSON. Every request is answered for the clinic named by \
             the Host header (`<slug>.<base domain>` or the clinic's own domain). Errors share one \
             shape: `{\"code\": \"…\", \"message\": \"…\"}` with stable codes.",
    )
    .server("/api")
}
