//! Codes from the standard systems the record uses, checked for shape (not against the full
//! code lists, which are licensed and large): ICD-10-CM, SNOMED CT, RxNorm — or text alone
//! when an entry has no code.

use super::RecordError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeSystem {
    Icd10cm,
    Snomed,
    Rxnorm,
    /// No code: the text is the entry.
    Text,
}

impl CodeSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Icd10cm => "icd10cm",
            Self::Snomed => "snomed",
            Self::Rxnorm => "rxnorm",
            Self::Text => "text",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "icd10cm" => Some(Self::Icd10cm),
            "snomed" => Some(Self::Snomed),
            "rxnorm" => Some(Self::Rxnorm),
            "text" => Some(Self::Text),
            _ => None,
        }
    }
    /// The FHIR system URI.
    pub fn uri(self) -> Option<&'static str> {
        match self {
            Self::Icd10cm => Some("http://hl7.org/fhir/sid/icd-10-cm"),
            Self::Snomed => Some("http://snomed.info/sct"),
            Self::Rxnorm => Some("http://www.nlm.nih.gov/research/umls/rxnorm"),
            Self::Text => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Icd10cm => "ICD-10-CM",
            Self::Snomed => "SNOMED CT",
            Self::Rxnorm => "RxNorm",
            Self::Text => "no code",
        }
    }
}

/// A code in its system, shape-checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Code {
    pub system: CodeSystem,
    /// `None` only for [`CodeSystem::Text`].
    pub code: Option<String>,
}

impl Code {
    /// Parses a code for a field that accepts `allowed` systems; `what` names the field.
    pub fn parse(
        system: CodeSystem,
        raw: &str,
        allowed: &[CodeSystem],
        what: &str,
    ) -> Result<Self, RecordError> {
        if !allowed.contains(&system) {
            return Err(super::invalid(
                "code",
                format!(
                    "A {what} is coded in {}, not {}.",
                    allowed
                        .iter()
                        .map(|s| s.label())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    system.label()
                ),
            ));
        }
        let raw = raw.trim();
        let ok = match system {
            CodeSystem::Text => raw.is_empty(),
            // A letter, two characters, then optionally a dot and up to four more: E11.9, I10.
            CodeSystem::Icd10cm => {
                let b = raw.as_bytes();
                b.len() >= 3
                    && b[0].is_ascii_uppercase()
                    && b[1].is_ascii_digit()
                    && b[2].is_ascii_alphanumeric()
                    && match raw.get(3..) {
                        Some("") | None => true,
                        Some(rest) => {
                            rest.len() <= 5
                                && rest.starts_with('.')
                                && rest[1..].chars().all(|c| c.is_ascii_alphanumeric())
                                && rest.len() > 1
                        }
                    }
            }
            // SNOMED CT identifiers: 6 to 18 digits.
            CodeSystem::Snomed => {
                (6..=18).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit())
            }
            // RxNorm concept ids: digits.
            CodeSystem::Rxnorm => {
                (1..=10).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit())
            }
        };
        if !ok {
            return Err(super::invalid(
                "code",
                match system {
                    CodeSystem::Text => format!("A {what} without a code has no code to give."),
                    CodeSystem::Icd10cm => {
                        format!("“{raw}” is not an ICD-10-CM code; they look like E11.9 or I10.")
                    }
                    CodeSystem::Snomed => {
                        format!("“{raw}” is not a SNOMED CT code; they are 6 to 18 digits.")
                    }
                    CodeSystem::Rxnorm => {
                        format!("“{raw}” is not an RxNorm code; they are digits.")
                    }
                },
            ));
        }
        Ok(Self {
            system,
            code: (system != CodeSystem::Text).then(|| raw.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CodeSystem::*;

    #[test]
    fn codes_are_checked_for_their_system() {
        let dx = [Icd10cm, Snomed, Text];
        assert!(Code::parse(Icd10cm, "E11.9", &dx, "problem").is_ok());
        assert!(Code::parse(Icd10cm, "I10", &dx, "problem").is_ok());
        assert!(Code::parse(Snomed, "44054006", &dx, "problem").is_ok());
        assert!(Code::parse(Text, "", &dx, "problem").is_ok());
        assert!(
            Code::parse(Icd10cm, "250.00", &dx, "problem").is_err(),
            "ICD-9 shape"
        );
        assert!(Code::parse(Icd10cm, "E11.", &dx, "problem").is_err());
        assert!(Code::parse(Snomed, "12ab", &dx, "problem").is_err());
        let wrong = Code::parse(Rxnorm, "1191", &dx, "problem")
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("not RxNorm"), "{wrong}");
    }
}
