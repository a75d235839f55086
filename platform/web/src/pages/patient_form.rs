//! The patient fields shared by the staff "Add a patient" form and patient self sign-up.

use chrono::NaiveDate;
use portal_domain::patients::NewPatient;
use portal_domain::values::{DateOfBirth, EmailAddress, PersonName, PhoneE164};

/// The fields as typed.
pub(crate) struct PatientFields<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub date_of_birth: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
}

/// `Some` when the field was filled in.
fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// Parses the fields; the first problem comes back in words for the form. `today` is the
/// clinic's date; an empty email is an error only when `email_required`.
pub(crate) fn parse(
    f: &PatientFields<'_>,
    today: NaiveDate,
    email_required: bool,
) -> Result<NewPatient, String> {
    let email = match given(f.email) {
        None if !email_required => None,
        _ => Some(EmailAddress::parse(f.email).map_err(|e| e.to_string())?),
    };
    Ok(NewPatient {
        given_name: PersonName::parse(f.given_name, "given name").map_err(|e| e.to_string())?,
        family_name: PersonName::parse(f.family_name, "family name").map_err(|e| e.to_string())?,
        date_of_birth: DateOfBirth::parse(f.date_of_birth, today).map_err(|e| e.to_string())?,
        email,
        phone: given(f.phone)
            .map(PhoneE164::parse)
            .transpose()
            .map_err(|e| e.to_string())?,
    })
}
