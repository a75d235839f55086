//! Results (FHIR DiagnosticReport with its Observations): lab panels, imaging and other
//! reports. A patient sees a result from its `visible_from` — at once unless they chose, for
//! its category, to wait for their clinician's comment or some days ([`preferences`]); a held
//! result is listed as waiting, without its name. Every read and write is audited.

mod enter;
pub mod preferences;
mod read;
pub mod trend;

pub use enter::{LabEntry, NewObservation, NewReport, comment, enter_lab, insert_report};
pub use read::{
    NoticeTarget, ResultDetail, ResultSummary, Shown, Value, for_notice, one, own, own_one,
};
pub(crate) use read::{SummaryRow, summarize};

/// The categories a patient chooses release timing for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Lab,
    Imaging,
    Other,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::Lab, Category::Imaging, Category::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lab => "lab",
            Self::Imaging => "imaging",
            Self::Other => "other",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
    /// Plain words, as a heading.
    pub fn label(self) -> &'static str {
        match self {
            Self::Lab => "Lab tests",
            Self::Imaging => "Imaging",
            Self::Other => "Other reports",
        }
    }
    /// One of these, as a noun ("lab result").
    pub fn noun(self) -> &'static str {
        match self {
            Self::Lab => "lab result",
            Self::Imaging => "imaging report",
            Self::Other => "report",
        }
    }
}

/// A number as people write it: no more digits than it needs (5, 5.25, 0.3).
pub fn plain_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 && v.abs() < 1e12 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// HL7 interpretation flags in plain words (text, never colour alone).
pub fn flag_label(flag: &str) -> &'static str {
    match flag {
        "H" => "High",
        "L" => "Low",
        "HH" => "Critically high",
        "LL" => "Critically low",
        "A" => "Abnormal",
        _ => "Normal",
    }
}
