//! Form errors after the GOV.UK pattern: each problem names the field it is about, so the page
//! shows an error summary at the top (linking to the fields) and the message again above the
//! field, tied to it with `aria-describedby`. Templates use the macros in `macros.html`.

/// One problem with one field. `field` is the field's `id` on the page.
#[derive(Clone, Debug)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// The problems with a submitted form; empty when there are none (or nothing was submitted).
#[derive(Clone, Debug, Default)]
pub struct FormErrors(Vec<FieldError>);

impl FormErrors {
    /// A form with one problem.
    pub fn one(field: &'static str, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field,
            message: message.into(),
        }])
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn items(&self) -> &[FieldError] {
        &self.0
    }

    /// The message for a field, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// The ids a field's `aria-describedby` lists: its hint (when it has one) and its error.
    pub fn described_by(&self, field: &str, has_hint: bool) -> String {
        let mut ids = Vec::new();
        if has_hint {
            ids.push(format!("{field}-hint"));
        }
        if self.get(field).is_some() {
            ids.push(format!("{field}-error"));
        }
        ids.join(" ")
    }
}

impl From<FieldError> for FormErrors {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

#[cfg(test)]
mod tests {
    use super::FormErrors;

    #[test]
    fn a_field_is_described_by_its_hint_and_its_error() {
        let mut errors = FormErrors::one("email", "Enter an email address");
        errors.add("phone", "Enter a mobile number");
        assert_eq!(errors.described_by("email", true), "email-hint email-error");
        assert_eq!(errors.described_by("email", false), "email-error");
        assert_eq!(errors.described_by("name", true), "name-hint");
        assert_eq!(errors.described_by("name", false), "");
        assert_eq!(errors.get("phone"), Some("Enter a mobile number"));
        assert!(FormErrors::default().is_empty());
    }
}
