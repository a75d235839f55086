//! Parsed control-plane values: once constructed they are valid, so services never re-check.

use std::fmt;
use std::str::FromStr;

use crate::ValueError;

/// Subdomains the platform keeps for itself.
const RESERVED_SLUGS: &[&str] = &[
    "www", "api", "admin", "app", "assets", "static", "cdn", "mail", "email", "smtp", "status",
    "docs", "help", "support", "portal", "platform", "root", "signup", "login", "auth", "account",
    "accounts", "billing", "dev", "test", "staging", "demo", "internal", "system", "control",
    "public", "postgres", "healthz", "readyz",
];

/// A clinic's subdomain label: a lowercase DNS label of 2–40 characters, not reserved.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let bytes = s.as_bytes();
        let shape_ok = (2..=40).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-');
        if !shape_ok {
            return Err(ValueError::SlugFormat);
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(ValueError::SlugReserved(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The clinic's schema: readable for operators and injective (slugs have no `_`).
    pub(crate) fn schema_name(&self) -> String {
        format!("tenant_{}", self.0.replace('-', "_"))
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({})", self.0)
    }
}

/// An IANA time zone name known to the bundled tz database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        chrono_tz::Tz::from_str(s)
            .map(|tz| Self(tz.name().to_owned()))
            .map_err(|_| ValueError::TimeZone(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A colour as `#rrggbb`, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HexColor(String);

impl HexColor {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim().to_ascii_lowercase();
        let ok =
            s.len() == 7 && s.starts_with('#') && s.bytes().skip(1).all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(s))
        } else {
            Err(ValueError::HexColor)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The clinic's name as patients see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        if (1..=120).contains(&s.chars().count()) && !s.chars().any(char::is_control) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::DisplayName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The "from" name on the clinic's emails and SMS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SenderName(String);

impl SenderName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        if (1..=60).contains(&s.chars().count()) && !s.chars().any(char::is_control) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::SenderName)
        }
    }

    /// A sender name derived from a clinic name, cut to the allowed length.
    pub fn from_display_name(name: &DisplayName) -> Self {
        Self(
            name.as_str()
                .chars()
                .take(60)
                .collect::<String>()
                .trim()
                .to_owned(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A fully qualified host name for a clinic's custom domain, lowercase, without port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let labels: Vec<&str> = s.split('.').collect();
        if s.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) {
            Ok(Self(s))
        } else {
            Err(ValueError::DomainName(raw.trim().to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs() {
        assert_eq!(
            Slug::parse("sunrise").map(|s| s.schema_name()).ok(),
            Some("tenant_sunrise".into())
        );
        assert_eq!(
            Slug::parse("st-marys-2").map(|s| s.schema_name()).ok(),
            Some("tenant_st_marys_2".into())
        );
        for bad in [
            "",
            "a",
            "Sunrise",
            "-abc",
            "abc-",
            "a_b",
            "a.b",
            "ünï",
            &"x".repeat(41),
        ] {
            assert_eq!(Slug::parse(bad), Err(ValueError::SlugFormat), "{bad:?}");
        }
        for reserved in ["www", "api", "admin"] {
            assert_eq!(
                Slug::parse(reserved),
                Err(ValueError::SlugReserved(reserved.into()))
            );
        }
    }

    #[test]
    fn time_zones() {
        assert_eq!(
            TimeZoneName::parse("America/New_York").map(|t| t.0).ok(),
            Some("America/New_York".into())
        );
        assert!(TimeZoneName::parse("Mars/Olympus_Mons").is_err());
        assert!(TimeZoneName::parse("").is_err());
    }

    #[test]
    fn colours_and_names() {
        assert_eq!(
            HexColor::parse("#0B5CAD").map(|c| c.0).ok(),
            Some("#0b5cad".into())
        );
        for bad in ["0b5cad", "#0b5ca", "#0b5cadd", "#gggggg", "red"] {
            assert!(HexColor::parse(bad).is_err(), "{bad}");
        }
        assert!(DisplayName::parse("  ").is_err());
        assert!(DisplayName::parse("Sunrise\nFamily").is_err());
        assert_eq!(
            DomainName::parse("Portal.Sunrise-Clinic.com.")
                .map(|d| d.0)
                .ok(),
            Some("portal.sunrise-clinic.com".into())
        );
        assert!(DomainName::parse("localhost").is_err());
        assert!(DomainName::parse("bad_domain.com").is_err());
    }

    proptest! {
        #[test]
        fn any_accepted_slug_makes_a_safe_unique_schema_name(raw in "[a-z0-9-]{0,45}") {
            if let Ok(slug) = Slug::parse(&raw) {
                let schema = slug.schema_name();
                prop_assert!(schema.len() <= 63);
                prop_assert!(schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
                // Injective: the schema name gives back the slug.
                prop_assert_eq!(schema.trim_start_matches("tenant_").replace('_', "-"), slug.as_str());
            }
        }

        #[test]
        fn slug_parse_never_panics(raw in ".{0,64}") {
            let _ = Slug::parse(&raw);
        }
    }
}
