use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;

/// What the clinic's home page says about it, and how to reach it: shown wherever the portal
/// says "call the clinic". Not patient data, so reads are not audited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClinicProfile {
    pub welcome_message: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    /// Opening hours, as the clinic writes them ("Mon–Fri 8 am – 6 pm").
    pub hours: Option<String>,
    /// What to do when the clinic is closed or in an emergency.
    pub after_hours: Option<String>,
    /// Whether visit emails may name the clinician.
    pub provider_in_emails: bool,
}

/// The details as typed on the clinic details form.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProfileInput<'a> {
    pub welcome_message: &'a str,
    pub phone: &'a str,
    pub address: &'a str,
    pub hours: &'a str,
    pub after_hours: &'a str,
    pub provider_in_emails: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("welcome message must be at most 2,000 characters")]
    WelcomeTooLong,
    #[error("phone must be at most 40 characters")]
    PhoneTooLong,
    #[error("address must be at most 300 characters")]
    AddressTooLong,
    #[error("Enter a phone number with its area code, like (555) 010-4000")]
    PhoneNotANumber,
    #[error("Opening hours must be at most 500 characters")]
    HoursTooLong,
    #[error("The after-hours text must be at most 1,000 characters")]
    AfterHoursTooLong,
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl ProfileError {
    /// The form field a problem is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::WelcomeTooLong => "welcome_message",
            Self::PhoneTooLong | Self::PhoneNotANumber => "phone",
            Self::AddressTooLong => "address",
            Self::HoursTooLong => "hours",
            Self::AfterHoursTooLong => "after_hours",
            Self::Database(_) => "welcome_message",
        }
    }
}

impl ClinicProfile {
    /// Checks lengths; the home page shows these verbatim (escaped).
    pub fn new(
        welcome_message: &str,
        phone: Option<&str>,
        address: Option<&str>,
    ) -> Result<Self, ProfileError> {
        Self::parse(&ProfileInput {
            welcome_message,
            phone: phone.unwrap_or_default(),
            address: address.unwrap_or_default(),
            ..ProfileInput::default()
        })
    }

    /// Checks every field of the clinic details form.
    pub fn parse(input: &ProfileInput<'_>) -> Result<Self, ProfileError> {
        let clean = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
        let profile = Self {
            welcome_message: input.welcome_message.trim().to_owned(),
            phone: clean(input.phone),
            address: clean(input.address),
            hours: clean(input.hours),
            after_hours: clean(input.after_hours),
            provider_in_emails: input.provider_in_emails,
        };
        if profile.phone.as_deref().is_some_and(|p| {
            p.chars().filter(char::is_ascii_digit).count() < 3
                || !p
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().ext".contains(c))
        }) {
            return Err(ProfileError::PhoneNotANumber);
        }
        if profile
            .hours
            .as_deref()
            .is_some_and(|h| h.chars().count() > 500)
        {
            return Err(ProfileError::HoursTooLong);
        }
        if profile
            .after_hours
            .as_deref()
            .is_some_and(|h| h.chars().count() > 1000)
        {
            return Err(ProfileError::AfterHoursTooLong);
        }
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
            "SELECT welcome_message, phone, address, hours, after_hours, provider_in_emails
             FROM clinic_profile WHERE singleton"
        )
        .fetch_one(tx.conn())
        .await?;
        Ok(row)
    }

    /// The profile and whether self sign-up is on, in one read: the public home page's whole
    /// database work (one round trip fewer on the busiest public page).
    pub async fn load_for_home(tx: &mut TenantTx) -> Result<(Self, bool), ProfileError> {
        let r = sqlx::query!(
            "SELECT welcome_message, phone, address, hours, after_hours, provider_in_emails,
                    self_signup_enabled
             FROM clinic_profile WHERE singleton"
        )
        .fetch_one(tx.conn())
        .await?;
        Ok((
            ClinicProfile {
                welcome_message: r.welcome_message,
                phone: r.phone,
                address: r.address,
                hours: r.hours,
                after_hours: r.after_hours,
                provider_in_emails: r.provider_in_emails,
            },
            r.self_signup_enabled,
        ))
    }

    pub async fn save(&self, tx: &mut TenantTx) -> Result<(), ProfileError> {
        sqlx::query!(
            "UPDATE clinic_profile SET welcome_message = $1, phone = $2, address = $3,
                    hours = $4, after_hours = $5, provider_in_emails = $6, updated_at = now()
             WHERE singleton",
            self.welcome_message,
            self.phone,
            self.address,
            self.hours,
            self.after_hours,
            self.provider_in_emails
        )
        .execute(tx.conn())
        .await?;
        Ok(())
    }

    /// Saves the details a clinic admin edited (audited).
    pub async fn update(
        &self,
        tx: &mut TenantTx,
        _admin: &AdminScope,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<(), ProfileError> {
        self.save(tx).await?;
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::ClinicDetailsUpdate, "clinic_profile"),
        )
        .await?;
        Ok(())
    }

    /// The phone number as a `tel:` address (digits and a leading +, any extension left off),
    /// for a tap-to-call link.
    pub fn tel(&self) -> Option<String> {
        self.phone.as_deref().map(|p| {
            let number = p.split(['e', 'x']).next().unwrap_or(p).trim();
            number
                .chars()
                .enumerate()
                .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
                .map(|(_, c)| c)
                .collect()
        })
    }

    /// "Please call the clinic on (555) 010-4000 (Mon–Fri 8 am – 6 pm)." — the words wherever
    /// the portal sends someone to the phone; without a number, just the clinic.
    pub fn call_us(&self, clinic: &str) -> String {
        match (&self.phone, &self.hours) {
            (Some(p), Some(h)) => format!("Please call {clinic} on {p} ({h})."),
            (Some(p), None) => format!("Please call {clinic} on {p}."),
            _ => format!("Please call {clinic}."),
        }
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
        assert!(matches!(
            ClinicProfile::new("", Some("call us"), None),
            Err(ProfileError::PhoneNotANumber)
        ));
    }

    #[test]
    fn call_us_names_the_number_and_hours_when_known() {
        let mut p = ClinicProfile::new("", Some("(555) 010-4000"), None).unwrap();
        assert_eq!(
            p.call_us("Sunrise"),
            "Please call Sunrise on (555) 010-4000."
        );
        p.hours = Some("Mon–Fri 8 am – 6 pm".into());
        assert_eq!(
            p.call_us("Sunrise"),
            "Please call Sunrise on (555) 010-4000 (Mon–Fri 8 am – 6 pm)."
        );
        assert_eq!(p.tel().as_deref(), Some("5550104000"));
        p.phone = Some("+1 555 010 4000 ext. 2".into());
        assert_eq!(p.tel().as_deref(), Some("+15550104000"), "no extension");
        p.phone = None;
        assert_eq!(p.call_us("Sunrise"), "Please call Sunrise.");
        assert_eq!(p.tel(), None);
    }
}
