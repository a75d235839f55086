//! `portal demo`: two clinics with distinct branding, ready to click through. Idempotent: a
//! second run updates what the first created and creates nothing twice.

use portal_domain::clinic::ClinicProfile;
use portal_tenants::{Logo, Provisioner, Slug, TenantDb, TenantError};
use serde::Serialize;

use crate::tenants::CreateArgs;
use crate::{Config, pools};

struct DemoClinic {
    args: fn() -> CreateArgs,
    logo_svg: &'static str,
    welcome: &'static str,
    phone: &'static str,
    address: &'static str,
}

const SUNRISE_LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#fff7ed"/><circle cx="32" cy="40" r="16" fill="#ea580c"/><rect x="4" y="40" width="56" height="20" fill="#fff7ed"/><path d="M8 44h48" stroke="#9a3412" stroke-width="4" stroke-linecap="round"/></svg>"##;
const HARBOR_LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#eff6ff"/><path d="M6 38c6-6 10-6 16 0s10 6 16 0 10-6 16 0" fill="none" stroke="#1e3a8a" stroke-width="5" stroke-linecap="round"/><path d="M6 50c6-6 10-6 16 0s10 6 16 0 10-6 16 0" fill="none" stroke="#0e7490" stroke-width="5" stroke-linecap="round"/><circle cx="44" cy="18" r="7" fill="#f59e0b"/></svg>"##;

const CLINICS: &[DemoClinic] = &[
    DemoClinic {
        args: || CreateArgs {
            slug: "sunrise".into(),
            name: "Sunrise Family Medicine".into(),
            time_zone: "America/New_York".into(),
            primary_color: "#9a3412".into(),
            accent_color: "#0f766e".into(),
            sender_name: Some("Sunrise Family Medicine".into()),
        },
        logo_svg: SUNRISE_LOGO,
        welcome: "Family care for every age, from newborn check-ups to healthy ageing.",
        phone: "+1 555 010 2000",
        address: "120 Dawn Street, Brooklyn, NY 11201",
    },
    DemoClinic {
        args: || CreateArgs {
            slug: "harbor".into(),
            name: "Harbor Pediatrics".into(),
            time_zone: "America/Los_Angeles".into(),
            primary_color: "#1e3a8a".into(),
            accent_color: "#0e7490".into(),
            sender_name: Some("Harbor Pediatrics".into()),
        },
        logo_svg: HARBOR_LOGO,
        welcome: "Care for children and teens by the bay, with same-day sick visits.",
        phone: "+1 555 010 3000",
        address: "8 Pier Road, San Francisco, CA 94111",
    },
];

/// What exists after `portal demo`, as `portal demo --json` prints it.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub platform_url: String,
    pub tenants: Vec<ManifestTenant>,
}

#[derive(Debug, Serialize)]
pub struct ManifestTenant {
    pub slug: String,
    pub name: String,
    pub host: String,
    pub url: String,
    pub time_zone: String,
    pub status: String,
}

pub async fn run(config: &Config) -> anyhow::Result<Manifest> {
    let admin = pools::admin_pool(config).await?;
    let app = pools::app_pool(config).await?;
    let provisioner = Provisioner::new(admin, config.app_role()?);
    let tenant_db = TenantDb::new(app);
    let mut tenants = Vec::new();
    for clinic in CLINICS {
        let mut new = (clinic.args)().parse()?;
        new.logo = Some(Logo::new(
            "image/svg+xml",
            clinic.logo_svg.as_bytes().to_vec(),
        )?);
        let slug: Slug = new.slug.clone();
        let tenant = match provisioner.create(new.clone()).await {
            Ok(t) => t,
            Err(TenantError::SlugTaken(_)) => provisioner.update_branding(&slug, &new).await?,
            Err(e) => return Err(e.into()),
        };
        let profile = ClinicProfile::new(clinic.welcome, Some(clinic.phone), Some(clinic.address))?;
        let mut tx = tenant_db.begin(&tenant).await?;
        profile.save(&mut tx).await?;
        tx.commit().await?;
        tenants.push(tenant);
    }
    Ok(Manifest {
        platform_url: format!("http://{}", config.public_host(None)),
        tenants: tenants
            .into_iter()
            .map(|t| ManifestTenant {
                slug: t.slug().to_owned(),
                name: t.display_name().to_owned(),
                host: config.public_host(Some(t.slug())),
                url: config.clinic_url(t.slug()),
                time_zone: t.time_zone().to_owned(),
                status: t.status().as_str().to_owned(),
            })
            .collect(),
    })
}
