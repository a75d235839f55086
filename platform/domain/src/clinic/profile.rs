use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;

/// What the clinic's home page says about it. Not patient data, so reads are not audited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClinicProfile {
    pub welcome_message: String,
    pub phone: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("welcome message must be at most 2,000 characters")]
    WelcomeTooLong,
    #[error("phone must be at most 40 characters")]
    PhoneTooLong,
    #[error("address must be at most 300 characters")]
    AddressTooLong,
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl ClinicProfile {
    /// Checks lengths; the home page shows these verbatim (escaped).
    pub fn new(
        welcome_message: &str,
        phone: Option<&str>,
        address: Option<&str>,
    ) -> Result<Self, ProfileError> {
        let clean = |s: Option<&str>| {
            s.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let profile = Self {
            welcome_message: welcome_message.trim().to_owned(),
            phone: clean(phone),
            address: clean(address),
        };
        if profile.welcome_message.chars().count() > 2000 {
            return Err(ProfileError::WelcomeTooLong);
        }
        if profile
            .phone
            .as_deref()
            .is_some_and(|p| p.chars().count() > 40)
        {
            return Err(ProfileError::PhoneTooLong);
        }
        if profile
            .address
            .as_deref()
            .is_some_and(|a| a.chars().count() > 300)
        {
            return Err(ProfileError::AddressTooLong);
        }
        Ok(profile)
    }

    pub async fn load(tx: &mut TenantTx) -> Result<Self, ProfileError> {
        let row = sqlx::query_as!(
            ClinicProfile,
            "SELECT welcome_message, phone, address FROM clinic_profile WHERE singleton"
        )
        .fetch_one(tx.conn())
        .await?;
        Ok(row)
    }

    /// The profile and whether self sign-up is on, in one read: the public home page's whole
    /// database work (one round trip fewer on the busiest public page).
    pub async fn load_for_home(tx: &mut TenantTx) -> Result<(Self, bool), ProfileError> {
        let r = sqlx::query!(
            "SELECT welcome_message, phone, address, self_signup_enabled
             FROM clinic_profile WHERE singleton"
        )
        .fetch_one(tx.conn())
        .await?;
        Ok((
            ClinicProfile {
                welcome_message: r.welcome_message,
                phone: r.phone,
                address: r.address,
            },
            r.self_signup_enabled,
        ))
    }

    pub async fn save(&self, tx: &mut TenantTx) -> Result<(), ProfileError> {
        sqlx::query!(
            "UPDATE clinic_profile SET welcome_message = $1, phone = $2, address = $3, updated_at = now()
             WHERE singleton",
            self.welcome_message,
            self.phone,
            self.address
        )
        .execute(tx.conn())
        .await?;
        Ok(())
    }

    /// Whether patients may create their own account on the clinic's site.
    pub async fn self_signup_enabled(tx: &mut TenantTx) -> Result<bool, ProfileError> {
        Ok(
            sqlx::query_scalar!("SELECT self_signup_enabled FROM clinic_profile WHERE singleton")
                .fetch_one(tx.conn())
                .await?,
        )
    }

    /// Turns patient self sign-up on or off (audited).
    pub async fn set_self_signup(
        tx: &mut TenantTx,
        _admin: &AdminScope,
        ctx: &AuditContext,
        on: bool,
        now: DateTime<Utc>,
    ) -> Result<(), ProfileError> {
        sqlx::query!(
            "UPDATE clinic_profile SET self_signup_enabled = $1, updated_at = $2 WHERE singleton",
            on,
            now
        )
        .execute(tx.conn())
        .await?;
        let what = if on {
            "self_signup=on"
        } else {
            "self_signup=off"
        };
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::SettingsUpdate, "clinic_profile").resource(what),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_optional_fields_become_none_and_limits_hold() {
        let p = ClinicProfile::new("  Hello ", Some("  "), Some("1 Main St")).ok();
        assert_eq!(
            p.as_ref().map(|p| p.welcome_message.as_str()),
            Some("Hello")
        );
        assert_eq!(p.as_ref().and_then(|p| p.phone.clone()), None);
        assert!(matches!(
            ClinicProfile::new(&"x".repeat(2001), None, None),
            Err(ProfileError::WelcomeTooLong)
        ));
        assert!(matches!(
            ClinicProfile::new("", Some(&"1".repeat(41)), None),
            Err(ProfileError::PhoneTooLong)
        ));
    }
}
