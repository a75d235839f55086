//! Parsed values: once a service holds one, it is valid. Each `parse` says precisely what is
//! wrong, in words a form can show next to the field.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(msg: impl Into<String>) -> InvalidValue {
    InvalidValue(msg.into())
}

/// An email address, trimmed and lower-cased (addresses are matched case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(invalid("Enter an email address."));
        }
        if s.len() > 254 {
            return Err(invalid("An email address is at most 254 characters."));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(invalid(
                "An email address needs an @, like name@example.com.",
            ));
        };
        let ok_char =
            |c: char| !c.is_whitespace() && !c.is_control() && !"<>()[],;:\\\"@".contains(c);
        if local.is_empty() || local.len() > 64 || !local.chars().all(ok_char) {
            return Err(invalid("The part before the @ is not valid."));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(invalid(
                "The part after the @ must be a domain, like example.com.",
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the @ (used to refuse passwords built from it).
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name as they write it: 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str, what: &str) -> Result<Self, InvalidValue> {
        let s = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.is_empty() {
            // "Enter your name", "Enter the family name".
            let article = if what.starts_with("your ") {
                ""
            } else {
                "the "
            };
            return Err(invalid(format!("Enter {article}{what}.")));
        }
        if s.chars().count() > 100 {
            return Err(invalid(format!("The {what} is at most 100 characters.")));
        }
        if s.chars().any(char::is_control) {
            return Err(invalid(format!(
                "The {what} contains characters that are not allowed."
            )));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date of birth: a real date, not in the future, not before 1900.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    /// `today` is the clinic's current date.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid("Enter the date of birth."));
        }
        let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| invalid("Enter the date of birth as YYYY-MM-DD, e.g. 1984-03-27."))?;
        if date > today {
            return Err(invalid("The date of birth cannot be in the future."));
        }
        if date < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
            return Err(invalid("The date of birth must be after 1900."));
        }
        Ok(Self(date))
    }

    pub fn from_date(date: NaiveDate) -> Self {
        Self(date)
    }

    pub fn date(&self) -> NaiveDate {
        self.0
    }
}

/// A phone number in E.164 form (`+15551234567`). Spaces, dots, dashes and brackets are
/// dropped; a 10-digit number is taken as North American.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhoneE164(String);

impl PhoneE164 {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        let plus = raw.starts_with('+');
        let mut digits = String::new();
        for c in raw.trim_start_matches('+').chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(invalid(
                        "A phone number may only contain digits, spaces, dashes and brackets.",
                    ));
                }
            }
        }
        if !plus && digits.len() == 10 {
            digits.insert(0, '1');
        } else if !plus {
            return Err(invalid(
                "Start an international number with +, e.g. +44 20 7946 0958.",
            ));
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(invalid("That does not look like a complete phone number."));
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse("  Ana@Example.ORG ").unwrap().as_str(),
            "ana@example.org"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "a na@example.org",
            "ana@-x.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dates_of_birth_must_be_real_and_past() {
        assert!(DateOfBirth::parse("1984-03-27", today()).is_ok());
        assert!(DateOfBirth::parse("2026-11-21", today()).is_err());
        assert!(DateOfBirth::parse("1984-02-30", today()).is_err());
        assert!(DateOfBirth::parse("27/03/1984", today()).is_err());
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            PhoneE164::parse("(555) 123-4567").unwrap().as_str(),
            "+15551234567"
        );
        assert_eq!(
            PhoneE164::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert!(PhoneE164::parse("12345").is_err());
        assert!(PhoneE164::parse("call me").is_err());
    }

    proptest! {
        #[test]
        fn parsed_emails_reparse_to_themselves(local in "[a-z0-9._%+-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            let e = EmailAddress::parse(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(EmailAddress::parse(e.as_str()).unwrap(), e);
        }

        #[test]
        fn names_never_keep_control_characters_or_outer_space(s in "\\PC{0,120}") {
            if let Ok(n) = PersonName::parse(&s, "name") {
                prop_assert!(!n.as_str().chars().any(char::is_control));
                prop_assert_eq!(n.as_str().trim(), n.as_str());
                prop_assert!(n.as_str().chars().count() <= 100);
            }
        }

        #[test]
        fn phones_parse_to_plus_and_digits(s in "[0-9 ()+.-]{0,20}") {
            if let Ok(p) = PhoneE164::parse(&s) {
                prop_assert!(p.as_str().starts_with('+'));
                prop_assert!(p.as_str()[1..].chars().all(|c| c.is_ascii_digit()));
            }
        }
    }
}
