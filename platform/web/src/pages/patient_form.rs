//! The patient fields shared by the staff "Add a patient" form and patient self sign-up.
//! Date of birth is typed as three boxes (day, month, year), never a date picker: the GOV.UK
//! and NHS pattern, the quickest for a date everyone knows by heart.

use chrono::NaiveDate;
use portal_domain::patients::NewPatient;
use portal_domain::values::{DateOfBirth, EmailAddress, PersonName, PhoneE164};

use super::FormErrors;

/// The fields as typed.
pub(crate) struct PatientFields<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub dob: DateParts<'a>,
    pub email: &'a str,
    pub phone: &'a str,
}

/// A date typed as day, month and year boxes.
#[derive(Clone, Copy)]
pub(crate) struct DateParts<'a> {
    pub day: &'a str,
    pub month: &'a str,
    pub year: &'a str,
}

impl DateParts<'_> {
    /// The date, or the words for what is wrong with it.
    pub fn parse(&self) -> Result<NaiveDate, &'static str> {
        let (d, m, y) = (self.day.trim(), self.month.trim(), self.year.trim());
        if d.is_empty() && m.is_empty() && y.is_empty() {
            return Err("Enter the date of birth.");
        }
        if d.is_empty() || m.is_empty() || y.is_empty() {
            return Err("The date of birth must include a day, month and year.");
        }
        let num = |s: &str| s.parse::<u32>().ok();
        match (num(d), num(m), num(y)) {
            (Some(d), Some(m), Some(y)) if y >= 1000 => NaiveDate::from_ymd_opt(y as i32, m, d)
                .ok_or("The date of birth must be a real date."),
            (_, _, Some(y)) if y < 1000 => Err("Enter the year with 4 digits, for example 1984."),
            _ => Err("The date of birth must be a real date, in numbers."),
        }
    }
}

/// `Some` when the field was filled in.
fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// Parses the fields; every problem comes back tied to its field. `today` is the clinic's
/// date; an empty email is an error only when `email_required`. Field ids: `given_name`,
/// `family_name`, `dob_day` (the date's first box), `email`, `phone`.
pub(crate) fn parse(
    f: &PatientFields<'_>,
    today: NaiveDate,
    email_required: bool,
) -> Result<NewPatient, FormErrors> {
    let mut errors = FormErrors::default();
    let given_name = PersonName::parse(f.given_name, "given name")
        .map_err(|e| errors.add("given_name", e.to_string()))
        .ok();
    let family_name = PersonName::parse(f.family_name, "family name")
        .map_err(|e| errors.add("family_name", e.to_string()))
        .ok();
    let date_of_birth = match f.dob.parse() {
        Ok(date) => DateOfBirth::parse(&date.format("%Y-%m-%d").to_string(), today)
            .map_err(|e| errors.add("dob_day", e.to_string()))
            .ok(),
        Err(words) => {
            errors.add("dob_day", words);
            None
        }
    };
    let email = match given(f.email) {
        None if !email_required => Some(None),
        _ => EmailAddress::parse(f.email)
            .map(Some)
            .map_err(|e| errors.add("email", e.to_string()))
            .ok(),
    };
    let phone = given(f.phone)
        .map(PhoneE164::parse)
        .transpose()
        .map_err(|e| errors.add("phone", e.to_string()))
        .ok();
    match (given_name, family_name, date_of_birth, email, phone) {
        (Some(given_name), Some(family_name), Some(date_of_birth), Some(email), Some(phone))
            if errors.is_empty() =>
        {
            Ok(NewPatient {
                given_name,
                family_name,
                date_of_birth,
                email,
                phone,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::DateParts;

    fn parts<'a>(day: &'a str, month: &'a str, year: &'a str) -> DateParts<'a> {
        DateParts { day, month, year }
    }

    #[test]
    fn three_boxes_make_a_date_or_say_what_is_missing() {
        assert_eq!(
            parts("27", "3", "1984").parse().map(|d| d.to_string()),
            Ok("1984-03-27".to_owned())
        );
        assert_eq!(parts("", "", "").parse(), Err("Enter the date of birth."));
        assert!(
            parts("27", "", "1984")
                .parse()
                .unwrap_err()
                .contains("day, month and year")
        );
        assert!(
            parts("31", "2", "1984")
                .parse()
                .unwrap_err()
                .contains("real date")
        );
        assert!(
            parts("1", "2", "84")
                .parse()
                .unwrap_err()
                .contains("4 digits")
        );
        assert!(
            parts("a", "2", "1984")
                .parse()
                .unwrap_err()
                .contains("in numbers")
        );
    }
}
