//! A statement's line items as people type them: the service's date, what it was, its CPT or
//! HCPCS code, and the charge split into what insurance paid, what the clinic wrote off and
//! what is left for the patient. Parsed whole, with every problem named by its field.

use chrono::NaiveDate;

use super::money::{Currency, Money};

/// One line as typed into the form (or sent to the API).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct LineInput {
    /// `YYYY-MM-DD`.
    pub service_date: String,
    pub description: String,
    #[serde(default)]
    pub code: String,
    pub charge: String,
    #[serde(default)]
    pub insurance_paid: String,
    #[serde(default)]
    pub adjustment: String,
}

/// A line that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub service_date: NaiveDate,
    pub description: String,
    pub code: Option<String>,
    pub charge: i64,
    pub insurance_paid: i64,
    pub adjustment: i64,
}

impl NewLine {
    pub fn patient_minor(&self) -> i64 {
        self.charge - self.insurance_paid - self.adjustment
    }
}

/// Whether `code` is a CPT code (four digits and a digit or F/T/U) or a HCPCS Level II code
/// (a letter A–V and four digits).
pub fn is_procedure_code(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() != 5 {
        return false;
    }
    let cpt = b[..4].iter().all(u8::is_ascii_digit)
        && (b[4].is_ascii_digit() || matches!(b[4], b'F' | b'T' | b'U'));
    let hcpcs = (b'A'..=b'V').contains(&b[0]) && b[1..].iter().all(u8::is_ascii_digit);
    cpt || hcpcs
}

/// Parses a line; every problem at once, each with its field. `today` bounds the service
/// date (a service cannot be billed before it happened).
pub fn parse(
    input: &LineInput,
    currency: Currency,
    today: NaiveDate,
) -> Result<NewLine, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let service_date = match NaiveDate::parse_from_str(input.service_date.trim(), "%Y-%m-%d") {
        Ok(d) if d > today => {
            errors.push((
                "service_date",
                "The date of service cannot be in the future.".to_owned(),
            ));
            None
        }
        Ok(d) => Some(d),
        Err(_) if input.service_date.trim().is_empty() => {
            errors.push(("service_date", "Enter the date of service.".to_owned()));
            None
        }
        Err(_) => {
            errors.push((
                "service_date",
                "Enter the date of service as a real date, like 2026-11-02.".to_owned(),
            ));
            None
        }
    };
    let description = input.description.trim().to_owned();
    if description.is_empty() {
        errors.push((
            "description",
            "Enter what the service was, like \"Office visit\".".to_owned(),
        ));
    } else if description.chars().count() > 200 {
        errors.push((
            "description",
            "Keep the description to 200 characters.".to_owned(),
        ));
    } else if description.chars().any(char::is_control) {
        errors.push((
            "description",
            "Write the description on one line.".to_owned(),
        ));
    }
    let code = input.code.trim().to_ascii_uppercase();
    let code = if code.is_empty() {
        None
    } else if is_procedure_code(&code) {
        Some(code)
    } else {
        errors.push((
            "code",
            "Enter a CPT code (five characters, like 99213) or a HCPCS code (a letter and four digits, like G0439), or leave it empty.".to_owned(),
        ));
        None
    };
    let mut amount = |field: &'static str, raw: &str, required: bool| -> Option<i64> {
        if raw.trim().is_empty() && !required {
            return Some(0);
        }
        match Money::parse(raw, currency) {
            Ok(m) => Some(m.minor),
            Err(e) => {
                errors.push((field, e.to_string()));
                None
            }
        }
    };
    let charge = amount("charge", &input.charge, true);
    let insurance_paid = amount("insurance_paid", &input.insurance_paid, false);
    let adjustment = amount("adjustment", &input.adjustment, false);
    if let (Some(c), Some(i), Some(a)) = (charge, insurance_paid, adjustment)
        && i + a > c
    {
        errors.push((
            "adjustment",
            "What insurance paid and the adjustment together cannot be more than the charge."
                .to_owned(),
        ));
    }
    match (service_date, charge, insurance_paid, adjustment) {
        (Some(service_date), Some(charge), Some(insurance_paid), Some(adjustment))
            if errors.is_empty() =>
        {
            Ok(NewLine {
                service_date,
                description,
                code,
                charge,
                insurance_paid,
                adjustment,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
    }

    fn input() -> LineInput {
        LineInput {
            service_date: "2026-11-02".into(),
            description: "Office visit, established patient".into(),
            code: "99213".into(),
            charge: "180.00".into(),
            insurance_paid: "120".into(),
            adjustment: "20.50".into(),
        }
    }

    #[test]
    fn a_good_line_leaves_the_patient_the_rest() {
        let line = parse(&input(), Currency::USD, today()).unwrap();
        assert_eq!(line.patient_minor(), 3950);
        assert_eq!(line.code.as_deref(), Some("99213"));
    }

    #[test]
    fn codes_are_cpt_or_hcpcs() {
        for ok in ["99213", "0001U", "1234F", "G0439", "J3420"] {
            assert!(is_procedure_code(ok), "{ok}");
        }
        for bad in ["9921", "992134", "W1234", "G043X", "99-13", "<scr>"] {
            assert!(!is_procedure_code(bad), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let bad = LineInput {
            service_date: "2026-12-25".into(),
            description: " ".into(),
            code: "ABC".into(),
            charge: "-5".into(),
            insurance_paid: "1.234".into(),
            adjustment: String::new(),
        };
        let errors = parse(&bad, Currency::USD, today()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                "service_date",
                "description",
                "code",
                "charge",
                "insurance_paid"
            ]
        );
        let over = LineInput {
            insurance_paid: "170".into(),
            ..input()
        };
        let errors = parse(&over, Currency::USD, today()).unwrap_err();
        assert_eq!(errors[0].0, "adjustment");
    }
}
