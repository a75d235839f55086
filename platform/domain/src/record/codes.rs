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
    /// Laboratory tests and vital signs.
    Loinc,
    /// Vaccines (CDC's CVX).
    Cvx,
    /// Procedures (AMA CPT).
    Cpt,
    /// No code: the text is the entry.
    Text,
}

impl CodeSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Icd10cm => "icd10cm",
            Self::Snomed => "snomed",
            Self::Rxnorm => "rxnorm",
            Self::Loinc => "loinc",
            Self::Cvx => "cvx",
            Self::Cpt => "cpt",
            Self::Text => "text",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "icd10cm" => Some(Self::Icd10cm),
            "snomed" => Some(Self::Snomed),
            "rxnorm" => Some(Self::Rxnorm),
            "loinc" => Some(Self::Loinc),
            "cvx" => Some(Self::Cvx),
            "cpt" => Some(Self::Cpt),
            "text" => Some(Self::Text),
            _ => None,
        }
    }
    /// The system a FHIR system URI names (`urn:oid:` forms of the same systems included).
    pub fn from_uri(uri: &str) -> Option<Self> {
        match uri {
            "http://hl7.org/fhir/sid/icd-10-cm" | "urn:oid:2.16.840.1.113883.6.90" => {
                Some(Self::Icd10cm)
            }
            "http://snomed.info/sct" | "urn:oid:2.16.840.1.113883.6.96" => Some(Self::Snomed),
            "http://www.nlm.nih.gov/research/umls/rxnorm" | "urn:oid:2.16.840.1.113883.6.88" => {
                Some(Self::Rxnorm)
            }
            "http://loinc.org" | "urn:oid:2.16.840.1.113883.6.1" => Some(Self::Loinc),
            "http://hl7.org/fhir/sid/cvx" | "urn:oid:2.16.840.1.113883.12.292" => Some(Self::Cvx),
            "http://www.ama-assn.org/go/cpt" | "urn:oid:2.16.840.1.113883.6.12" => Some(Self::Cpt),
            _ => None,
        }
    }
    /// The FHIR system URI.
    pub fn uri(self) -> Option<&'static str> {
        match self {
            Self::Icd10cm => Some("http://hl7.org/fhir/sid/icd-10-cm"),
            Self::Snomed => Some("http://snomed.info/sct"),
            Self::Rxnorm => Some("http://www.nlm.nih.gov/research/umls/rxnorm"),
            Self::Loinc => Some("http://loinc.org"),
            Self::Cvx => Some("http://hl7.org/fhir/sid/cvx"),
            Self::Cpt => Some("http://www.ama-assn.org/go/cpt"),
            Self::Text => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Icd10cm => "ICD-10-CM",
            Self::Snomed => "SNOMED CT",
            Self::Rxnorm => "RxNorm",
            Self::Loinc => "LOINC",
            Self::Cvx => "CVX",
            Self::Cpt => "CPT",
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
            CodeSystem::Loinc => is_loinc(raw),
            // CVX: one to three digits.
            CodeSystem::Cvx => {
                (1..=3).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit())
            }
            // CPT: five characters, digits with a letter last for categories II and III.
            CodeSystem::Cpt => {
                raw.len() == 5
                    && raw.bytes().take(4).all(|b| b.is_ascii_digit())
                    && raw.as_bytes()[4].is_ascii_alphanumeric()
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
                    CodeSystem::Loinc => {
                        format!("“{raw}” is not a LOINC code; they look like 2345-7.")
                    }
                    CodeSystem::Cvx => {
                        format!("“{raw}” is not a CVX code; they are 1 to 3 digits.")
                    }
                    CodeSystem::Cpt => {
                        format!("“{raw}” is not a CPT code; they are five characters, like 99213.")
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

/// A LOINC code: up to seven digits, a hyphen, one check digit (2345-7, 8480-6). The check
/// digit is verified (mod 10, as LOINC computes it), so a mistyped code is caught.
pub fn is_loinc(raw: &str) -> bool {
    let Some((body, check)) = raw.split_once('-') else {
        return false;
    };
    if body.is_empty()
        || body.len() > 7
        || check.len() != 1
        || !body
            .bytes()
            .chain(check.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return false;
    }
    // Luhn over the body: from the right, double every other digit starting with the last.
    let mut sum = 0u32;
    for (i, b) in body.bytes().rev().enumerate() {
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 {
            let x = d * 2;
            x / 10 + x % 10
        } else {
            d
        };
    }
    (10 - sum % 10) % 10 == u32::from(check.as_bytes()[0] - b'0')
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

    #[test]
    fn loinc_check_digits() {
        for ok in [
            "2345-7", "8480-6", "8462-4", "4548-4", "2093-3", "718-7", "29463-7",
        ] {
            assert!(is_loinc(ok), "{ok}");
        }
        for bad in ["2345-6", "2345", "-7", "12345678-1", "23a5-7", "2345-77"] {
            assert!(!is_loinc(bad), "{bad}");
        }
    }
}
