//! What a document is: one of the PDFs the workers print from the record, or the category a
//! patient gave a file they uploaded. The code is what the database stores.

/// A document's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ImmunizationRecord,
    MedicationList,
    VisitSummary,
    RecordSummary,
    ReferralLetter,
    Statement,
    Receipt,
    InsuranceCard,
    OutsideRecords,
    Other,
}

impl Kind {
    /// The documents the workers print, in the order the pages offer them.
    pub const GENERATED: [Kind; 4] = [
        Kind::ImmunizationRecord,
        Kind::MedicationList,
        Kind::RecordSummary,
        Kind::VisitSummary,
    ];
    /// The categories a patient files an upload under.
    pub const UPLOADS: [Kind; 3] = [Kind::InsuranceCard, Kind::OutsideRecords, Kind::Other];
    /// Documents only staff make (with fields they fill in).
    pub const STAFF_MADE: [Kind; 1] = [Kind::ReferralLetter];
    /// Printed from the bills, never from the health record: a statement (asked for on its
    /// page) and a payment's receipt (made when someone first opens it).
    pub const BILLING: [Kind; 2] = [Kind::Statement, Kind::Receipt];

    pub fn code(self) -> &'static str {
        match self {
            Kind::ImmunizationRecord => "immunization_record",
            Kind::MedicationList => "medication_list",
            Kind::VisitSummary => "visit_summary",
            Kind::RecordSummary => "record_summary",
            Kind::ReferralLetter => "referral_letter",
            Kind::Statement => "statement",
            Kind::Receipt => "receipt",
            Kind::InsuranceCard => "insurance_card",
            Kind::OutsideRecords => "outside_records",
            Kind::Other => "other",
        }
    }

    pub fn parse(code: &str) -> Option<Kind> {
        Kind::GENERATED
            .into_iter()
            .chain(Kind::STAFF_MADE)
            .chain(Kind::BILLING)
            .chain(Kind::UPLOADS)
            .find(|k| k.code() == code)
    }

    /// Its name on pages and as the PDF's title.
    pub fn label(self) -> &'static str {
        match self {
            Kind::ImmunizationRecord => "Immunization record",
            Kind::MedicationList => "Medication list",
            Kind::VisitSummary => "Visit summary",
            Kind::RecordSummary => "Health record summary",
            Kind::ReferralLetter => "Referral letter",
            Kind::Statement => "Statement",
            Kind::Receipt => "Payment receipt",
            Kind::InsuranceCard => "Insurance card",
            Kind::OutsideRecords => "Records from elsewhere",
            Kind::Other => "Other document",
        }
    }

    /// What the person gets, for the request buttons.
    pub fn hint(self) -> &'static str {
        match self {
            Kind::ImmunizationRecord => {
                "Every vaccine you have had here, for school, work or travel."
            }
            Kind::MedicationList => "Your current and past medicines and your allergies.",
            Kind::VisitSummary => "What happened at one visit and what to do next.",
            Kind::RecordSummary => {
                "Your whole record: conditions, allergies, medicines, vaccines, results and visits."
            }
            Kind::ReferralLetter => "A letter to another clinician, in the clinic's words.",
            Kind::Statement => "A statement to print or keep, with the code for paying it.",
            Kind::Receipt => "What was paid, when and how.",
            Kind::InsuranceCard | Kind::OutsideRecords | Kind::Other => "",
        }
    }

    /// Printed by the workers (not uploaded).
    pub fn is_generated(self) -> bool {
        Kind::GENERATED.contains(&self)
            || Kind::STAFF_MADE.contains(&self)
            || Kind::BILLING.contains(&self)
    }

    /// Printed from the bills (its subject is a statement or a payment).
    pub fn is_billing(self) -> bool {
        Kind::BILLING.contains(&self)
    }

    /// Made only by staff, from fields they fill in.
    pub fn staff_made(self) -> bool {
        Kind::STAFF_MADE.contains(&self)
    }

    /// A visit summary prints one visit, which the request must name.
    pub fn needs_visit(self) -> bool {
        self == Kind::VisitSummary
    }
}

/// Where a document is on its way to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Rendering,
    Ready,
    Failed,
}

impl Status {
    pub fn parse(code: &str) -> Status {
        match code {
            "queued" => Status::Queued,
            "rendering" => Status::Rendering,
            "ready" => Status::Ready,
            _ => Status::Failed,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Rendering => "rendering",
            Status::Ready => "ready",
            Status::Failed => "failed",
        }
    }

    /// Words for the status tag.
    pub fn label(self) -> &'static str {
        match self {
            Status::Queued => "Waiting to start",
            Status::Rendering => "Being prepared",
            Status::Ready => "Ready",
            Status::Failed => "Could not be prepared",
        }
    }

    /// Still on its way (the page keeps looking).
    pub fn pending(self) -> bool {
        matches!(self, Status::Queued | Status::Rendering)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_code() {
        for k in Kind::GENERATED
            .into_iter()
            .chain(Kind::STAFF_MADE)
            .chain(Kind::BILLING)
            .chain(Kind::UPLOADS)
        {
            assert_eq!(Kind::parse(k.code()), Some(k));
        }
        assert_eq!(Kind::parse("../etc/passwd"), None);
        assert!(Kind::GENERATED.iter().all(|k| k.is_generated()));
        assert!(!Kind::UPLOADS.iter().any(|k| k.is_generated()));
    }
}
