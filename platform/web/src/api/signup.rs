//! Clinic sign-up helpers on the platform's own site.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use portal_tenants::Slug;

use super::ApiTags;
use crate::{AppState, internal};

#[derive(Debug, Object)]
pub struct SlugAvailability {
    pub slug: String,
    pub available: bool,
    /// Why it is not available, in words.
    pub reason: Option<String>,
}

pub struct SignupApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Signup")]
impl SignupApi {
    /// Is this web address free?
    ///
    /// Checks a clinic slug for the sign-up form: well-formed, not reserved, not taken.
    #[oai(
        path = "/signup/slug-availability",
        method = "get",
        operation_id = "slugAvailability"
    )]
    async fn slug_availability(
        &self,
        state: Data<&AppState>,
        slug: Query<String>,
    ) -> poem::Result<Json<SlugAvailability>> {
        let raw = slug.0.trim().to_lowercase();
        let (available, reason) = match Slug::parse(&raw) {
            Err(e) => (false, Some(e.to_string())),
            Ok(s) => match state.registry.by_slug(s.as_str()).await.map_err(internal)? {
                Some(_) => (false, Some(format!("{raw} is already taken"))),
                None => (true, None),
            },
        };
        Ok(Json(SlugAvailability {
            slug: raw,
            available,
            reason,
        }))
    }
}
