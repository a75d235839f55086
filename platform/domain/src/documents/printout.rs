//! What a printed document says, as data: the clinic's letterhead, the patient, when it was
//! made, and sections of plain text (tables and paragraphs) already in words. The workers'
//! templates only lay this out; nothing in it is ever evaluated as markup or read as a path.
//! Its SHA-256 (over this data with the digest left empty) is printed in each page's footer
//! and kept with the document, so a printed copy can be checked against the record.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;
use sha2::{Digest, Sha256};

use super::kinds::Kind;
use crate::ids::PatientId;
use crate::record::chart::Chart;

/// The whole document's data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Printout {
    pub title: String,
    pub clinic: Letterhead,
    pub patient: Person,
    /// "Mon 30 Nov 2026, 4:20 PM (America/New_York)".
    pub generated: String,
    pub sections: Vec<Section>,
    /// Hex SHA-256 of this printout with `digest` empty.
    pub digest: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Letterhead {
    pub name: String,
    /// `#rrggbb`, the clinic's primary colour.
    pub colour: String,
    /// The logo's format (`png`, `jpg`, `svg`) when the clinic has one; the renderer serves
    /// its bytes as `/logo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<&'static str>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Person {
    pub name: String,
    pub born: String,
}

/// A heading with a table (columns and rows of text) and/or paragraphs; `empty` is said when
/// it has neither.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Section {
    pub heading: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub paragraphs: Vec<Paragraph>,
    pub empty: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Paragraph {
    pub heading: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PrintoutError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the patient no longer exists")]
    NoPatient,
    #[error("the visit is no longer in the record")]
    NoVisit,
    #[error("the letter's words are missing")]
    NoLetter,
}

/// The patient as the letterhead names them.
pub async fn person(tx: &mut TenantTx, patient: PatientId) -> Result<Person, PrintoutError> {
    let p = sqlx::query!(
        "SELECT given_name, family_name, date_of_birth FROM patients WHERE id = $1",
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(PrintoutError::NoPatient)?;
    Ok(Person {
        name: format!("{} {}", p.given_name, p.family_name),
        born: born(p.date_of_birth),
    })
}

fn born(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

fn day(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

fn opt_day(d: Option<NaiveDate>) -> String {
    d.map(day).unwrap_or_default()
}

/// What a printout prints besides the chart: the visit of a visit summary, the filled-in
/// words of a letter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    pub visit: Option<uuid::Uuid>,
    pub letter: Option<(&'a str, &'a super::letters::Referral)>,
}

/// Builds the printout of `kind` from the patient's chart.
pub fn build(
    kind: Kind,
    clinic: Letterhead,
    patient: Person,
    chart: &Chart,
    extra: Extra<'_>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Printout, PrintoutError> {
    let visit = extra.visit;
    let local = |t: DateTime<Utc>| t.with_timezone(&tz);
    let sections = match kind {
        Kind::ImmunizationRecord => vec![immunizations(chart), allergies(chart)],
        Kind::MedicationList => vec![medications(chart), allergies(chart)],
        Kind::VisitSummary => {
            let id = visit.ok_or(PrintoutError::NoVisit)?;
            let e = chart
                .encounters
                .iter()
                .find(|e| e.id == id)
                .ok_or(PrintoutError::NoVisit)?;
            let mut s = vec![Section {
                heading: "Visit".into(),
                columns: vec!["Date".into(), "Type".into(), "Seen by".into()],
                rows: vec![vec![
                    local(e.starts_at)
                        .format("%a %-d %b %Y, %-I:%M %p")
                        .to_string(),
                    e.kind.clone(),
                    e.provider.clone(),
                ]],
                ..Section::default()
            }];
            if !e.diagnoses.is_empty() {
                s.push(text("Diagnoses", &e.diagnoses));
            }
            s.push(Section {
                heading: "After-visit summary".into(),
                paragraphs: para("", &e.summary),
                empty: "No summary was written for this visit.".into(),
                ..Section::default()
            });
            let notes: Vec<Paragraph> = chart
                .notes
                .iter()
                .filter(|n| n.encounter_id == Some(id))
                .map(|n| Paragraph {
                    heading: format!(
                        "{} — {}{}",
                        n.title,
                        n.author,
                        n.signed_at
                            .map(|t| format!(", signed {}", day(local(t).date_naive())))
                            .unwrap_or_default()
                    ),
                    body: n.body.clone(),
                })
                .collect();
            s.push(Section {
                heading: "Notes from this visit".into(),
                paragraphs: notes,
                empty: "No notes from this visit have been shared.".into(),
                ..Section::default()
            });
            s.push(medications(chart));
            s
        }
        Kind::RecordSummary => vec![
            problems(chart),
            allergies(chart),
            medications(chart),
            immunizations(chart),
            vitals(chart, tz),
            results(chart, tz),
            visits(chart, tz),
            Section {
                heading: "Notes".into(),
                paragraphs: chart
                    .notes
                    .iter()
                    .map(|n| Paragraph {
                        heading: format!(
                            "{} — {}{}",
                            n.title,
                            n.author,
                            n.signed_at
                                .map(|t| format!(", {}", day(local(t).date_naive())))
                                .unwrap_or_default()
                        ),
                        body: n.body.clone(),
                    })
                    .collect(),
                empty: "No notes have been shared.".into(),
                ..Section::default()
            },
            Section {
                heading: "Care plans".into(),
                columns: vec![
                    "Plan".into(),
                    "Goals".into(),
                    "From".into(),
                    "Status".into(),
                ],
                rows: chart
                    .care_plans
                    .iter()
                    .map(|c| {
                        vec![
                            format!("{}. {}", c.title, c.description),
                            c.goals.clone(),
                            opt_day(c.starts_on),
                            c.status.clone(),
                        ]
                    })
                    .collect(),
                empty: "No care plans.".into(),
                ..Section::default()
            },
            Section {
                heading: "Procedures".into(),
                columns: vec!["Procedure".into(), "Date".into()],
                rows: chart
                    .procedures
                    .iter()
                    .map(|p| vec![p.text.clone(), opt_day(p.performed_on)])
                    .collect(),
                empty: "No procedures recorded.".into(),
                ..Section::default()
            },
        ],
        Kind::ReferralLetter => {
            let (template, referral) = extra.letter.ok_or(PrintoutError::NoLetter)?;
            let words = super::letters::fill(
                template,
                &super::letters::Filled {
                    referral,
                    patient: &patient.name,
                    born: &patient.born,
                    clinic: &clinic.name,
                },
            );
            let mut active = problems(chart);
            active.heading = "Current conditions".into();
            vec![
                Section {
                    heading: format!("To {}", referral.recipient),
                    paragraphs: para("", &words),
                    ..Section::default()
                },
                active,
                medications(chart),
                allergies(chart),
            ]
        }
        // Printed from the bills (`billing::print`), never from the chart.
        Kind::Statement
        | Kind::Receipt
        | Kind::InsuranceCard
        | Kind::OutsideRecords
        | Kind::Other => Vec::new(),
    };
    Ok(assemble(kind, clinic, patient, sections, now, tz))
}

/// A printout of `kind` with these sections, stamped with when it was made and its digest.
pub fn assemble(
    kind: Kind,
    clinic: Letterhead,
    patient: Person,
    sections: Vec<Section>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Printout {
    let mut printout = Printout {
        title: kind.label().to_owned(),
        clinic,
        patient,
        generated: format!(
            "{} ({})",
            now.with_timezone(&tz).format("%a %-d %b %Y, %-I:%M %p"),
            tz.name()
        ),
        sections,
        digest: String::new(),
    };
    printout.digest = digest(&printout);
    printout
}

/// Hex SHA-256 of the printout's JSON with the digest field empty.
pub fn digest(p: &Printout) -> String {
    let mut unsigned = p.clone();
    unsigned.digest.clear();
    let json = serde_json::to_vec(&unsigned).unwrap_or_default();
    Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn para(heading: &str, body: &str) -> Vec<Paragraph> {
    if body.trim().is_empty() {
        Vec::new()
    } else {
        vec![Paragraph {
            heading: heading.to_owned(),
            body: body.to_owned(),
        }]
    }
}

fn text(heading: &str, body: &str) -> Section {
    Section {
        heading: heading.to_owned(),
        paragraphs: para("", body),
        ..Section::default()
    }
}

fn problems(chart: &Chart) -> Section {
    Section {
        heading: "Conditions".into(),
        columns: vec!["Condition".into(), "Since".into(), "Status".into()],
        rows: chart
            .problems
            .iter()
            .map(|p| vec![p.text.clone(), opt_day(p.onset), p.clinical_status.clone()])
            .collect(),
        empty: "No conditions recorded.".into(),
        ..Section::default()
    }
}

fn allergies(chart: &Chart) -> Section {
    Section {
        heading: "Allergies".into(),
        columns: vec![
            "Substance".into(),
            "Reaction".into(),
            "Severity".into(),
            "Status".into(),
        ],
        rows: chart
            .allergies
            .iter()
            .map(|a| {
                vec![
                    a.substance.clone(),
                    a.reaction.clone(),
                    a.severity.clone().unwrap_or_default(),
                    a.clinical_status.clone(),
                ]
            })
            .collect(),
        empty: "No known allergies recorded.".into(),
        ..Section::default()
    }
}

fn medications(chart: &Chart) -> Section {
    Section {
        heading: "Medicines".into(),
        columns: vec![
            "Medicine".into(),
            "How to take it".into(),
            "Started".into(),
            "Status".into(),
        ],
        rows: chart
            .medications
            .iter()
            .map(|m| {
                let how = [&m.dose, &m.route, &m.frequency, &m.instructions]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![m.name.clone(), how, opt_day(m.starts_on), m.status.clone()]
            })
            .collect(),
        empty: "No medicines recorded.".into(),
        ..Section::default()
    }
}

fn immunizations(chart: &Chart) -> Section {
    Section {
        heading: "Vaccines".into(),
        columns: vec![
            "Vaccine".into(),
            "Date given".into(),
            "Dose".into(),
            "Lot".into(),
            "Given by".into(),
        ],
        rows: chart
            .immunizations
            .iter()
            .map(|i| {
                vec![
                    i.vaccine.clone(),
                    day(i.given_on),
                    i.dose_number.map(|n| n.to_string()).unwrap_or_default(),
                    i.lot.clone(),
                    i.performer.clone(),
                ]
            })
            .collect(),
        empty: "No vaccines recorded.".into(),
        ..Section::default()
    }
}

fn vitals(chart: &Chart, tz: Tz) -> Section {
    Section {
        heading: "Latest measurements".into(),
        columns: vec!["Measurement".into(), "Value".into(), "Taken".into()],
        rows: chart
            .vitals
            .iter()
            .map(|v| {
                let value = match (v.value_num, &v.value_text) {
                    (Some(n), _) => format!("{} {}", number(n), v.unit.clone().unwrap_or_default()),
                    (None, Some(t)) => t.clone(),
                    (None, None) => String::new(),
                };
                vec![
                    v.name.clone(),
                    value.trim().to_owned(),
                    day(v.effective_at.with_timezone(&tz).date_naive()),
                ]
            })
            .collect(),
        empty: "No measurements recorded.".into(),
        ..Section::default()
    }
}

fn results(chart: &Chart, tz: Tz) -> Section {
    Section {
        heading: "Recent results".into(),
        columns: vec![
            "Test".into(),
            "Date".into(),
            "Outside the usual range".into(),
        ],
        rows: chart
            .results
            .iter()
            .filter(|r| r.visible)
            .map(|r| {
                vec![
                    r.name.clone(),
                    day(r.resulted_at.with_timezone(&tz).date_naive()),
                    if r.flagged { "Yes" } else { "No" }.to_owned(),
                ]
            })
            .collect(),
        empty: "No results yet.".into(),
        ..Section::default()
    }
}

fn visits(chart: &Chart, tz: Tz) -> Section {
    Section {
        heading: "Visits".into(),
        columns: vec![
            "Date".into(),
            "Type".into(),
            "Seen by".into(),
            "Diagnoses".into(),
        ],
        rows: chart
            .encounters
            .iter()
            .map(|e| {
                vec![
                    day(e.starts_at.with_timezone(&tz).date_naive()),
                    e.kind.clone(),
                    e.provider.clone(),
                    e.diagnoses.clone(),
                ]
            })
            .collect(),
        empty: "No visits recorded.".into(),
        ..Section::default()
    }
}

/// A measured value without trailing zeros: 5.40 → "5.4", 120.0 → "120".
fn number(n: f64) -> String {
    let s = format!("{n:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}
