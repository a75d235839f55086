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

/// Where a clinic sign-up stands.
#[derive(Debug, Object)]
pub struct SignupProgress {
    /// `in_progress`, `done` or `failed`.
    pub status: String,
    /// Why it failed: `slug_taken` or `internal`.
    pub code: Option<String>,
}

#[derive(poem_openapi::ApiResponse)]
pub enum SignupProgressResponse {
    #[oai(status = 200)]
    Ok(Json<SignupProgress>),
    /// No such request (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<super::error::ErrorBody>),
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

    /// How is my sign-up going?
    ///
    /// The sign-up form hands the clinic to a worker to set up; its page asks here until the
    /// portal is ready (`done`) or could not be made (`failed`).
    #[oai(
        path = "/signup/requests/:id",
        method = "get",
        operation_id = "signupProgress"
    )]
    async fn signup_progress(
        &self,
        state: Data<&AppState>,
        id: poem_openapi::param::Path<String>,
    ) -> poem::Result<SignupProgressResponse> {
        let not_found = || {
            SignupProgressResponse::NotFound(super::error::ErrorBody::new(
                "not_found",
                "no such sign-up",
            ))
        };
        let Ok(id) = uuid::Uuid::parse_str(&id.0) else {
            return Ok(not_found());
        };
        let status = portal_tenants::signups::status(state.registry.pool(), id)
            .await
            .map_err(internal)?;
        use portal_tenants::signups::SignupStatus as S;
        Ok(match status {
            None => not_found(),
            Some(S::InProgress) => SignupProgressResponse::Ok(Json(SignupProgress {
                status: "in_progress".into(),
                code: None,
            })),
            Some(S::Done { .. }) => SignupProgressResponse::Ok(Json(SignupProgress {
                status: "done".into(),
                code: None,
            })),
            Some(S::Failed { code }) => SignupProgressResponse::Ok(Json(SignupProgress {
                status: "failed".into(),
                code: Some(code),
            })),
        })
    }
}
