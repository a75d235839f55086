//! Letters in the clinic's own words: a template per kind of letter (today the referral
//! letter), edited by clinic admins, with placeholders filled in by plain text substitution
//! when a letter is printed — never evaluated as markup.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::identity::scope::AdminScope;

/// The referral letter's words when the clinic has not written its own.
pub const DEFAULT_REFERRAL: &str = "Dear {recipient},\n\nI am writing to refer {patient}, born {born}, for {reason}.\n{details}\nTheir current conditions, medicines and allergies are listed below. Please call us at the clinic if you need anything more.\n\nYours sincerely,\n{clinician}\n{clinic}";

/// The placeholders a template may use, with what each becomes.
pub const PLACEHOLDERS: [(&str, &str); 7] = [
    ("{recipient}", "who the letter is to"),
    ("{patient}", "the patient's name"),
    ("{born}", "the patient's date of birth"),
    ("{reason}", "the reason for the referral"),
    (
        "{details}",
        "the details written for this letter (may be empty)",
    ),
    (
        "{clinician}",
        "the name of the clinician who made the letter",
    ),
    ("{clinic}", "the clinic's name"),
];

/// What staff fill in for one referral letter (kept with the document).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Referral {
    pub recipient: String,
    pub reason: String,
    pub details: String,
    pub clinician: String,
}

/// A field of a letter or template that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LetterError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> LetterError {
    LetterError {
        field,
        message: message.into(),
    }
}

impl Referral {
    /// Checks what staff typed: who it is to (1–200 characters), the reason (1–300) and
    /// optional details (up to 3,000).
    pub fn parse(
        recipient: &str,
        reason: &str,
        details: &str,
        clinician: &str,
    ) -> Result<Self, Vec<LetterError>> {
        let mut errors = Vec::new();
        // Browsers send a textarea's line breaks as CRLF.
        let details = details.replace("\r\n", "\n");
        let (recipient, reason, details) = (recipient.trim(), reason.trim(), details.trim());
        if recipient.is_empty() {
            errors.push(bad("recipient", "Enter who the letter is to."));
        } else if recipient.chars().count() > 200 {
            errors.push(bad(
                "recipient",
                "Who it is to must be 200 characters or fewer.",
            ));
        }
        if reason.is_empty() {
            errors.push(bad("reason", "Enter the reason for the referral."));
        } else if reason.chars().count() > 300 {
            errors.push(bad("reason", "The reason must be 300 characters or fewer."));
        }
        if details.chars().count() > 3000 {
            errors.push(bad(
                "details",
                "The details must be 3,000 characters or fewer.",
            ));
        }
        // One line each for who and why; the details may have lines and tabs.
        for (field, text, lines) in [
            ("recipient", recipient, false),
            ("reason", reason, false),
            ("details", details, true),
        ] {
            if has_control(text, lines) && !errors.iter().any(|e| e.field == field) {
                errors.push(bad(
                    field,
                    if lines {
                        "The details contain characters that are not allowed."
                    } else {
                        "Write this on one line, without special characters."
                    },
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            recipient: recipient.to_owned(),
            reason: reason.to_owned(),
            details: details.to_owned(),
            clinician: clinician.trim().to_owned(),
        })
    }
}

/// Control characters, except line breaks and tabs where `lines` allows them.
fn has_control(text: &str, lines: bool) -> bool {
    text.chars()
        .any(|c| c.is_control() && !(lines && matches!(c, '\n' | '\t')))
}

/// Checks a template: 1–5,000 characters, and every `{word}` in it one of [`PLACEHOLDERS`]
/// (a misspelt placeholder would otherwise print as it is).
pub fn check_template(body: &str) -> Result<String, LetterError> {
    let body = body.trim().replace("\r\n", "\n");
    if body.is_empty() {
        return Err(bad("template", "Enter the letter's words."));
    }
    if body.chars().count() > 5000 {
        return Err(bad(
            "template",
            "The letter must be 5,000 characters or fewer.",
        ));
    }
    if has_control(&body, true) {
        return Err(bad(
            "template",
            "The letter contains characters that are not allowed.",
        ));
    }
    // Every `{word}`: the `}` closing it is the first after the last `{` before it, so
    // "{ {recipent}" is checked as "{recipent}".
    let mut rest = body.as_str();
    while let Some(close) = rest.find('}') {
        let before = &rest[..close];
        if let Some(open) = before.rfind('{') {
            let word = &rest[open..=close];
            let looks_like_one = word.len() > 2
                && word[1..word.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if looks_like_one && !PLACEHOLDERS.iter().any(|(p, _)| *p == word) {
                return Err(bad(
                    "template",
                    format!("{word} is not a placeholder we know. Use one of the list below."),
                ));
            }
        }
        rest = &rest[close + 1..];
    }
    Ok(body)
}

/// The values a letter's placeholders become.
pub struct Filled<'a> {
    pub referral: &'a Referral,
    pub patient: &'a str,
    pub born: &'a str,
    pub clinic: &'a str,
}

/// The template with its placeholders replaced, as plain text, in one pass over the
/// template: what was filled in is never read again as template (a reason of "{born}"
/// prints as typed).
pub fn fill(template: &str, v: &Filled<'_>) -> String {
    let clinician = if v.referral.clinician.is_empty() {
        "Your care team"
    } else {
        &v.referral.clinician
    };
    let value = |word: &str| match word {
        "{recipient}" => Some(v.referral.recipient.as_str()),
        "{patient}" => Some(v.patient),
        "{born}" => Some(v.born),
        "{reason}" => Some(v.referral.reason.as_str()),
        "{details}" => Some(v.referral.details.as_str()),
        "{clinician}" => Some(clinician),
        "{clinic}" => Some(v.clinic),
        _ => None,
    };
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match after
            .find('}')
            .and_then(|close| Some((close, value(&after[..=close])?)))
        {
            Some((close, filled)) => {
                out.push_str(filled);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The clinic's referral template, or the default.
pub async fn referral_template(tx: &mut TenantTx) -> Result<String, sqlx::Error> {
    let body = sqlx::query_scalar!("SELECT body FROM letter_templates WHERE kind = 'referral'")
        .fetch_optional(tx.conn())
        .await?;
    Ok(body.unwrap_or_else(|| DEFAULT_REFERRAL.to_owned()))
}

/// Saves the clinic's referral template (clinic admins).
pub async fn save_referral_template(
    tx: &mut TenantTx,
    admin: &AdminScope,
    ctx: &crate::audit::AuditContext,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO letter_templates (kind, body, updated_by, updated_at)
         VALUES ('referral', $1, $2, $3)
         ON CONFLICT (kind) DO UPDATE SET body = EXCLUDED.body, updated_by = EXCLUDED.updated_by,
                                          updated_at = EXCLUDED.updated_at",
        body,
        admin.staff().user_id().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?;
    crate::audit::record(
        tx,
        ctx,
        now,
        crate::audit::AuditEvent::new(
            crate::audit::Action::LetterTemplateUpdate,
            "letter_template",
        )
        .resource("referral"),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_fills_as_plain_text_and_refuses_unknown_placeholders() {
        let r = Referral::parse("Dr. Jane Ortho", "knee pain", "", "Dr. Casey").unwrap();
        let v = Filled {
            referral: &r,
            patient: "Ana #Lima",
            born: "27 March 1984",
            clinic: "Sunrise",
        };
        assert_eq!(
            fill(
                "To {recipient}: {patient} ({born}) for {reason}. {clinician}, {clinic}",
                &v
            ),
            "To Dr. Jane Ortho: Ana #Lima (27 March 1984) for knee pain. Dr. Casey, Sunrise"
        );
        assert!(check_template(DEFAULT_REFERRAL).is_ok());
        assert_eq!(
            check_template("Dear {recipent}").unwrap_err().message,
            "{recipent} is not a placeholder we know. Use one of the list below."
        );
        // Braces that are not a placeholder are just text; a misspelling behind one is found.
        assert!(check_template("Use {braces } freely and {}").is_ok());
        assert!(check_template("{ {recipent}").is_err());
        assert!(check_template("Dear {recipient}\u{0}").is_err());
        // What was filled in is never read again as template.
        let sneaky = Referral::parse("Dr. {born}", "{details}", "x", "").unwrap();
        let v = Filled {
            referral: &sneaky,
            patient: "Ana",
            born: "27 March 1984",
            clinic: "Sunrise",
        };
        assert_eq!(fill("{recipient}: {reason}", &v), "Dr. {born}: {details}");
        assert_eq!(check_template("  ").unwrap_err().field, "template");
    }

    #[test]
    fn a_referral_needs_who_it_is_to_and_why() {
        let errors = Referral::parse(" ", "", "", "").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["recipient", "reason"]);
        let errors =
            Referral::parse("Dr. A\nB", "knee\u{0}", "two\r\nlines\tfine", "").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["recipient", "reason"]);
    }
}
