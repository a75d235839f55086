use portal_tenants::{
    DisplayName, HexColor, NewTenant, Provisioner, SenderName, Slug, Tenant, TenantError,
    TimeZoneName,
};

use crate::{Config, pools};

/// What `portal tenants create` was given, before parsing.
#[derive(Debug, Clone)]
pub struct CreateArgs {
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub primary_color: String,
    pub accent_color: String,
    pub sender_name: Option<String>,
}

impl CreateArgs {
    /// Parses every field, so a bad one is reported before anything is written.
    pub fn parse(&self) -> Result<NewTenant, TenantError> {
        let display_name = DisplayName::parse(&self.name)?;
        let sender_name = match &self.sender_name {
            Some(s) => SenderName::parse(s)?,
            None => SenderName::from_display_name(&display_name),
        };
        Ok(NewTenant {
            slug: Slug::parse(&self.slug)?,
            display_name,
            time_zone: TimeZoneName::parse(&self.time_zone)?,
            primary_color: HexColor::parse(&self.primary_color)?,
            accent_color: HexColor::parse(&self.accent_color)?,
            sender_name,
            logo: None,
        })
    }
}

pub async fn provisioner(config: &Config) -> anyhow::Result<Provisioner> {
    Ok(Provisioner::new(
        pools::admin_pool(config).await?,
        config.app_role()?,
    ))
}

/// One line per clinic for people; the `--json` form is for programs.
pub fn describe(config: &Config, t: &Tenant) -> String {
    format!(
        "{:<20} {:<9} {:<24} {}  ({})",
        t.slug(),
        t.status().as_str(),
        t.time_zone(),
        config.clinic_url(t.slug()),
        t.display_name()
    )
}
