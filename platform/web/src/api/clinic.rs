use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use portal_domain::clinic::ClinicProfile;

use super::ApiTags;
use super::error::ErrorBody;
use crate::{AppState, CurrentSite, internal};

/// A clinic's public details and branding.
#[derive(Debug, Object)]
pub struct ClinicInfo {
    /// The clinic's subdomain label.
    pub slug: String,
    /// The clinic's name as patients see it.
    pub name: String,
    /// IANA time zone in which the clinic's times are shown.
    pub time_zone: String,
    /// `#rrggbb`.
    pub primary_color: String,
    /// `#rrggbb`.
    pub accent_color: String,
    /// Path of the clinic's logo on this host, when it has one.
    pub logo_url: Option<String>,
    pub welcome_message: String,
    pub phone: Option<String>,
    pub address: Option<String>,
}

#[derive(ApiResponse)]
pub enum ClinicResponse {
    /// The clinic this host belongs to.
    #[oai(status = 200)]
    Ok(Json<ClinicInfo>),
    /// This host is the platform's own site, not a clinic's (code `not_a_clinic_site`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

pub struct ClinicApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Clinic")]
impl ClinicApi {
    /// The clinic whose site this is
    ///
    /// Public: what a visitor to the clinic's site sees before signing in.
    #[oai(path = "/clinic", method = "get", operation_id = "getClinic")]
    async fn clinic(
        &self,
        req: &Request,
        state: Data<&AppState>,
        site: Data<&CurrentSite>,
    ) -> poem::Result<ClinicResponse> {
        let CurrentSite::Clinic(tenant) = *site else {
            return Ok(ClinicResponse::NotFound(ErrorBody::new(
                "not_a_clinic_site",
                "this address is the platform's site, not a clinic's",
            )));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, tenant)
            .await
            .map_err(internal)?;
        let profile = ClinicProfile::load(&mut tx).await.map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        let b = tenant.branding();
        Ok(ClinicResponse::Ok(Json(ClinicInfo {
            slug: tenant.slug().to_owned(),
            name: tenant.display_name().to_owned(),
            time_zone: tenant.time_zone().to_owned(),
            primary_color: b.primary_color.clone(),
            accent_color: b.accent_color.clone(),
            logo_url: b.has_logo.then(|| "/branding/logo".to_owned()),
            welcome_message: profile.welcome_message,
            phone: profile.phone,
            address: profile.address,
        })))
    }
}
