use askama::Template;
use poem::handler;
use poem::web::{Data, Html};
use portal_domain::clinic::ClinicProfile;
use portal_tenants::Tenant;

use super::{NAV_AREAS, platform, render};
use crate::{AppState, CurrentSite, internal};

#[derive(Template)]
#[template(path = "clinic_home.html")]
struct ClinicHome<'a> {
    tenant: &'a Tenant,
    profile: ClinicProfile,
    nav: &'a [&'a str],
}

/// `/`: the clinic's branded home page, or the platform's own on the base domain.
#[handler]
pub async fn home(
    Data(state): Data<&AppState>,
    Data(site): Data<&CurrentSite>,
) -> poem::Result<Html<String>> {
    let tenant = match site {
        CurrentSite::Platform => return platform::home(),
        CurrentSite::Clinic(tenant) => tenant,
    };
    let mut tx = state.tenant_db.begin(tenant).await.map_err(internal)?;
    let profile = ClinicProfile::load(&mut tx).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    render(&ClinicHome {
        tenant,
        profile,
        nav: NAV_AREAS,
    })
}
