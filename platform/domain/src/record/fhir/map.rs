//! One FHIR resource → the rows the record keeps, with every check a row must pass: codes in
//! the systems their field takes, a unit with every number, dates that can be, references
//! that lead somewhere. Pure: no database here (references to the record are checked by
//! `write.rs`).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;

use super::json::{
    array, at, attachment_text, codings, concept_text, date, has_codings, instant, text,
};
use super::{Issue, Refs};
use crate::record::CodeSystem;
use crate::record::codes::is_loinc;

/// The resource types the import takes.
pub const ACCEPTED: [&str; 14] = [
    "Patient",
    "Practitioner",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "Immunization",
    "Observation",
    "DiagnosticReport",
    "Procedure",
    "CarePlan",
    "DocumentReference",
    "Organization",
];

#[derive(Debug, Clone)]
pub(super) struct PatientIn {
    pub identifiers: Vec<(String, String)>,
    pub given: String,
    pub family: String,
    pub birth_date: NaiveDate,
    pub email: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConditionRow {
    pub source_key: String,
    pub code_system: &'static str,
    pub code: Option<String>,
    pub text: String,
    pub onset: Option<NaiveDate>,
    pub abatement: Option<NaiveDate>,
    pub clinical_status: String,
    pub verification: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AllergyRow {
    pub source_key: String,
    pub substance_system: &'static str,
    pub substance_code: Option<String>,
    pub substance: String,
    pub reaction: String,
    pub severity: Option<String>,
    pub clinical_status: String,
    pub verification: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MedicationRow {
    pub source_key: String,
    pub code_system: &'static str,
    pub code: Option<String>,
    pub name: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub instructions: String,
    pub prescriber: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub status: String,
    pub quantity: String,
    pub refills_left: Option<i32>,
    pub kind: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImmunizationRow {
    pub source_key: String,
    pub cvx: Option<String>,
    pub vaccine: String,
    pub given_on: NaiveDate,
    pub dose_number: Option<i32>,
    pub lot: String,
    pub site: String,
    pub performer: String,
    pub status: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EncounterRow {
    pub source_key: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub kind: String,
    pub provider: String,
    pub diagnoses: String,
    pub summary: String,
    pub status: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcedureRow {
    pub source_key: String,
    pub code_system: &'static str,
    pub code: Option<String>,
    pub text: String,
    pub performed_on: Option<NaiveDate>,
    pub status: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CarePlanRow {
    pub source_key: String,
    pub title: String,
    pub description: String,
    pub goals: String,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub status: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NoteRow {
    pub source_key: String,
    /// The encounter's source key, when the note names one.
    pub encounter_key: Option<String>,
    pub title: String,
    pub body: String,
    pub author: String,
    pub signed_at: Option<DateTime<Utc>>,
    pub released: bool,
    pub confidential: bool,
    pub status: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportRow {
    pub source_key: String,
    pub category: &'static str,
    pub code_system: &'static str,
    pub code: Option<String>,
    pub name: String,
    pub performer: String,
    pub collected_at: Option<DateTime<Utc>>,
    pub resulted_at: DateTime<Utc>,
    pub conclusion: String,
    pub status: String,
    /// Set by the writer: when the patient may see it.
    pub visible_from: Option<DateTime<Utc>>,
    /// The entries (`result` references) it groups, resolved to observations' indexes.
    #[serde(skip)]
    pub results: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ObservationRow {
    pub source_key: String,
    /// The report's source key (set for lab values once reports are matched up).
    pub report_key: Option<String>,
    pub category: &'static str,
    pub loinc: String,
    pub name: String,
    pub value_num: Option<f64>,
    pub value_text: Option<String>,
    pub unit: Option<String>,
    pub range_low: Option<f64>,
    pub range_high: Option<f64>,
    pub range_text: String,
    pub interpretation: Option<String>,
    pub effective_at: DateTime<Utc>,
    pub status: String,
    #[serde(skip)]
    pub issued: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub performer: String,
}

/// What one entry becomes.
#[derive(Debug, Clone)]
pub enum Row {
    /// The patient (found or made before the rest), practitioners and organizations (read
    /// for their names only): nothing of their own to write.
    Named,
    Condition(ConditionRow),
    Allergy(AllergyRow),
    Medication(MedicationRow),
    Immunization(ImmunizationRow),
    Encounter(EncounterRow),
    Procedure(ProcedureRow),
    CarePlan(CarePlanRow),
    Note(NoteRow),
    Report(ReportRow),
    /// One observation, or a panel's components (blood pressure) as several.
    Observations(Vec<ObservationRow>),
}

fn invalid(path: &str, words: impl Into<String>) -> Issue {
    Issue::new("invalid", words).at(path)
}

/// The code of a concept in one of `allowed` systems; text alone when it has no codings; an
/// issue when it is coded only in other systems (a code in the wrong system for its field).
fn code_for(
    concept: Option<&Value>,
    allowed: &[CodeSystem],
    path: &str,
) -> Result<(CodeSystem, Option<String>, Option<String>), Issue> {
    let found = codings(concept);
    for (system, code, display) in &found {
        if allowed.contains(system) {
            crate::record::Code::parse(*system, code, allowed, "code")
                .map_err(|e| invalid(path, e.to_string()))?;
            return Ok((*system, Some(code.clone()), display.clone()));
        }
    }
    if has_codings(concept) {
        return Err(invalid(
            path,
            format!(
                "{path} is coded in a system this field does not take; it takes {}.",
                allowed
                    .iter()
                    .filter(|s| **s != CodeSystem::Text)
                    .map(|s| s.label())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    Ok((CodeSystem::Text, None, None))
}

fn name_of(concept: Option<&Value>, display: Option<String>, path: &str) -> Result<String, Issue> {
    concept_text(concept)
        .or(display)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(300).collect())
        .ok_or_else(|| Issue::new("required", format!("{path} has no text or display.")).at(path))
}

fn status_of(r: &Value, path: &str, allowed: &[&str], default: &str) -> Result<String, Issue> {
    let raw = text(r, path)
        .or_else(|| text(r, &format!("{path}.coding.0.code")))
        .unwrap_or(default);
    if allowed.contains(&raw) {
        Ok(raw.to_owned())
    } else {
        Err(invalid(
            path,
            format!("{path} “{raw}” is not one this record keeps."),
        ))
    }
}

fn not_future(t: DateTime<Utc>, now: DateTime<Utc>, path: &str) -> Result<DateTime<Utc>, Issue> {
    // A day's grace for clocks and zones.
    if t > now + Duration::days(1) {
        return Err(invalid(path, format!("{path} is in the future.")));
    }
    Ok(t)
}

fn time_at(r: &Value, path: &str) -> Result<Option<DateTime<Utc>>, Issue> {
    match text(r, path) {
        None => Ok(None),
        Some(raw) => instant(raw)
            .map(Some)
            .ok_or_else(|| invalid(path, format!("{path} “{raw}” is not a date."))),
    }
}

fn date_at(r: &Value, path: &str) -> Result<Option<NaiveDate>, Issue> {
    match text(r, path) {
        None => Ok(None),
        Some(raw) => date(raw)
            .map(Some)
            .ok_or_else(|| invalid(path, format!("{path} “{raw}” is not a date."))),
    }
}

fn clip(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max).collect()
    }
}

/// Maps one resource. `key` is the entry's source key; `refs` answers who a reference is.
pub fn map(r: &Value, key: &str, refs: &Refs<'_>, now: DateTime<Utc>) -> Result<Row, Issue> {
    let rtype = text(r, "resourceType").unwrap_or("");
    if rtype != "Patient" && rtype != "Practitioner" && rtype != "Organization" {
        refs.subject(r)?;
    }
    let key = key.to_owned();
    Ok(match rtype {
        "Patient" => {
            patient(r, now)?;
            Row::Named
        }
        "Practitioner" | "Organization" => Row::Named,
        "Condition" => {
            let (system, code, display) = code_for(
                at(r, "code"),
                &[CodeSystem::Icd10cm, CodeSystem::Snomed, CodeSystem::Text],
                "code",
            )?;
            refs.encounter(r, "encounter")?;
            let onset = date_at(r, "onsetDateTime")?.or(date_at(r, "onsetPeriod.start")?);
            let abatement = date_at(r, "abatementDateTime")?;
            if let (Some(o), Some(a)) = (onset, abatement)
                && a < o
            {
                return Err(invalid(
                    "abatementDateTime",
                    "The condition ends before it began.",
                ));
            }
            if onset.is_some_and(|o| o > now.date_naive() + Duration::days(1)) {
                return Err(invalid("onsetDateTime", "onsetDateTime is in the future."));
            }
            Row::Condition(ConditionRow {
                source_key: key,
                code_system: system.as_str(),
                code,
                text: clip(name_of(at(r, "code"), display, "code")?, 500),
                onset,
                abatement,
                clinical_status: status_of(
                    r,
                    "clinicalStatus",
                    &[
                        "active",
                        "recurrence",
                        "relapse",
                        "inactive",
                        "remission",
                        "resolved",
                    ],
                    "active",
                )?,
                verification: status_of(
                    r,
                    "verificationStatus",
                    &[
                        "unconfirmed",
                        "provisional",
                        "differential",
                        "confirmed",
                        "refuted",
                        "entered-in-error",
                    ],
                    "confirmed",
                )?,
            })
        }
        "AllergyIntolerance" => {
            let (system, code, display) = code_for(
                at(r, "code"),
                &[CodeSystem::Rxnorm, CodeSystem::Snomed, CodeSystem::Text],
                "code",
            )?;
            let reaction = array(r, "reaction")
                .iter()
                .flat_map(|x| array(x, "manifestation"))
                .filter_map(|m| concept_text(Some(m)))
                .collect::<Vec<_>>()
                .join(", ");
            let severity = text(r, "reaction.0.severity").map(str::to_owned);
            if severity
                .as_deref()
                .is_some_and(|s| !["mild", "moderate", "severe"].contains(&s))
            {
                return Err(invalid(
                    "reaction.0.severity",
                    "severity is mild, moderate or severe.",
                ));
            }
            Row::Allergy(AllergyRow {
                source_key: key,
                substance_system: system.as_str(),
                substance_code: code,
                substance: clip(name_of(at(r, "code"), display, "code")?, 300),
                reaction: clip(reaction, 500),
                severity,
                clinical_status: status_of(
                    r,
                    "clinicalStatus",
                    &["active", "inactive", "resolved"],
                    "active",
                )?,
                verification: status_of(
                    r,
                    "verificationStatus",
                    &[
                        "unconfirmed",
                        "presumed",
                        "confirmed",
                        "refuted",
                        "entered-in-error",
                    ],
                    "confirmed",
                )?,
            })
        }
        "MedicationRequest" | "MedicationStatement" => medication(r, key, refs, rtype)?,
        "Immunization" => {
            let (system, code, display) = code_for(
                at(r, "vaccineCode"),
                &[CodeSystem::Cvx, CodeSystem::Text],
                "vaccineCode",
            )?;
            let _ = system;
            let given = time_at(r, "occurrenceDateTime")?.ok_or_else(|| {
                Issue::new("required", "occurrenceDateTime is missing.").at("occurrenceDateTime")
            })?;
            not_future(given, now, "occurrenceDateTime")?;
            refs.encounter(r, "encounter")?;
            Row::Immunization(ImmunizationRow {
                source_key: key,
                cvx: code,
                vaccine: clip(name_of(at(r, "vaccineCode"), display, "vaccineCode")?, 300),
                given_on: given.date_naive(),
                dose_number: at(r, "protocolApplied.0.doseNumberPositiveInt")
                    .and_then(Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok())
                    .filter(|n| (1..=20).contains(n)),
                lot: clip(text(r, "lotNumber").unwrap_or("").to_owned(), 100),
                site: clip(concept_text(at(r, "site")).unwrap_or_default(), 100),
                performer: clip(
                    refs.name(at(r, "performer.0.actor"))?.unwrap_or_default(),
                    200,
                ),
                status: status_of(
                    r,
                    "status",
                    &["completed", "not-done", "entered-in-error"],
                    "completed",
                )?,
            })
        }
        "Encounter" => {
            let starts = time_at(r, "period.start")?.ok_or_else(|| {
                Issue::new("required", "period.start is missing.").at("period.start")
            })?;
            not_future(starts, now, "period.start")?;
            let ends = time_at(r, "period.end")?;
            if ends.is_some_and(|e| e < starts) {
                return Err(invalid(
                    "period.end",
                    "The encounter ends before it starts.",
                ));
            }
            let kind = concept_text(at(r, "type.0"))
                .or_else(|| text(r, "class.display").map(str::to_owned))
                .or_else(|| text(r, "class.code").map(str::to_owned))
                .unwrap_or_else(|| "Visit".to_owned());
            let diagnoses = array(r, "reasonCode")
                .iter()
                .filter_map(|c| concept_text(Some(c)))
                .collect::<Vec<_>>()
                .join("; ");
            let provider = refs
                .name(at(r, "participant.0.individual"))?
                .unwrap_or_default();
            Row::Encounter(EncounterRow {
                source_key: key,
                starts_at: starts,
                ends_at: ends,
                kind: clip(kind, 200),
                provider: clip(provider, 200),
                diagnoses: clip(diagnoses, 2000),
                summary: String::new(),
                status: status_of(
                    r,
                    "status",
                    &[
                        "planned",
                        "in-progress",
                        "finished",
                        "cancelled",
                        "entered-in-error",
                    ],
                    "finished",
                )?,
            })
        }
        "Procedure" => {
            let (system, code, display) = code_for(
                at(r, "code"),
                &[CodeSystem::Snomed, CodeSystem::Cpt, CodeSystem::Text],
                "code",
            )?;
            refs.encounter(r, "encounter")?;
            let performed = match time_at(r, "performedDateTime")? {
                Some(t) => Some(t),
                None => time_at(r, "performedPeriod.start")?,
            };
            if let Some(t) = performed {
                not_future(t, now, "performedDateTime")?;
            }
            Row::Procedure(ProcedureRow {
                source_key: key,
                code_system: system.as_str(),
                code,
                text: clip(name_of(at(r, "code"), display, "code")?, 500),
                performed_on: performed.map(|t| t.date_naive()),
                status: status_of(
                    r,
                    "status",
                    &[
                        "preparation",
                        "in-progress",
                        "completed",
                        "not-done",
                        "stopped",
                        "entered-in-error",
                    ],
                    "completed",
                )?,
            })
        }
        "CarePlan" => {
            let title = text(r, "title")
                .map(str::to_owned)
                .or_else(|| {
                    array(r, "category")
                        .iter()
                        .rev()
                        .find_map(|c| concept_text(Some(c)))
                })
                .unwrap_or_else(|| "Care plan".to_owned());
            let goals = array(r, "activity")
                .iter()
                .filter_map(|a| concept_text(at(a, "detail.code")))
                .collect::<Vec<_>>()
                .join("\n");
            let status = match text(r, "status").unwrap_or("active") {
                "unknown" => "active",
                s => s,
            };
            if ![
                "draft",
                "active",
                "on-hold",
                "completed",
                "revoked",
                "entered-in-error",
            ]
            .contains(&status)
            {
                return Err(invalid(
                    "status",
                    format!("status “{status}” is not one this record keeps."),
                ));
            }
            Row::CarePlan(CarePlanRow {
                source_key: key,
                title: clip(title, 300),
                description: clip(text(r, "description").unwrap_or("").to_owned(), 5000),
                goals: clip(goals, 5000),
                starts_on: date_at(r, "period.start")?,
                ends_on: date_at(r, "period.end")?,
                status: status.to_owned(),
            })
        }
        "DocumentReference" => {
            let content = array(r, "content");
            let Some(att) = content.first().and_then(|c| c.get("attachment")) else {
                return Err(
                    Issue::new("required", "content.0.attachment is missing.").at("content")
                );
            };
            if att.get("url").is_some() && att.get("data").is_none() {
                return Err(Issue::new(
                    "not-supported",
                    "Only inline text documents (attachment.data) are imported, not links.",
                )
                .at("content.0.attachment.url"));
            }
            let ctype = text(att, "contentType").unwrap_or("text/plain");
            if !ctype.starts_with("text/plain") {
                return Err(Issue::new(
                    "not-supported",
                    format!("Only text/plain documents are imported, not {ctype}."),
                )
                .at("content.0.attachment.contentType"));
            }
            let body = attachment_text(att)
                .filter(|b| !b.trim().is_empty())
                .ok_or_else(|| {
                    invalid(
                        "content.0.attachment.data",
                        "The attachment is not base64 UTF-8 text.",
                    )
                })?;
            let encounter_key = refs.encounter(r, "context.encounter.0")?;
            let confidential = array(r, "securityLabel")
                .iter()
                .flat_map(|l| array(l, "coding"))
                .any(|c| matches!(text(c, "code"), Some("R" | "V")));
            let status = match text(r, "status").unwrap_or("current") {
                "current" => "current",
                "superseded" => "superseded",
                "entered-in-error" => "entered-in-error",
                s => {
                    return Err(invalid(
                        "status",
                        format!("status “{s}” is not one this record keeps."),
                    ));
                }
            };
            let author = refs
                .name(at(r, "author.0"))?
                .unwrap_or_else(|| "Your care team".to_owned());
            let signed = time_at(r, "date")?;
            Row::Note(NoteRow {
                source_key: key,
                encounter_key,
                title: clip(
                    concept_text(at(r, "type")).unwrap_or_else(|| "Clinical note".to_owned()),
                    200,
                ),
                body: clip(body, 100_000),
                author: clip(author, 200),
                signed_at: signed,
                // OpenNotes: released unless the EHR marked it as not for the patient.
                released: !confidential,
                confidential,
                status: status.to_owned(),
            })
        }
        "DiagnosticReport" => report(r, key, refs, now)?,
        "Observation" => observation(r, key, refs, now)?,
        other => {
            return Err(Issue::new(
                "not-supported",
                format!("{other} is not a resource type this import takes."),
            ));
        }
    })
}

pub(super) fn patient(r: &Value, now: DateTime<Utc>) -> Result<PatientIn, Issue> {
    let identifiers: Vec<(String, String)> = array(r, "identifier")
        .iter()
        .filter_map(|i| Some((text(i, "system")?.to_owned(), text(i, "value")?.to_owned())))
        .collect();
    if identifiers.is_empty() {
        return Err(Issue::new(
            "required",
            "The patient needs an identifier with a system and a value (such as the MRN), so that later imports find them again.",
        )
        .at("identifier"));
    }
    if identifiers
        .iter()
        .any(|(s, v)| s.chars().count() > 500 || v.chars().count() > 200)
    {
        return Err(invalid(
            "identifier",
            "An identifier's system is at most 500 characters and its value at most 200.",
        ));
    }
    let name = array(r, "name")
        .iter()
        .find(|n| text(n, "use") == Some("official"))
        .or_else(|| array(r, "name").first())
        .ok_or_else(|| Issue::new("required", "The patient has no name.").at("name"))?;
    let given = array(name, "given")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let family = text(name, "family").unwrap_or("").to_owned();
    if given.trim().is_empty() || family.trim().is_empty() {
        return Err(
            Issue::new("required", "The patient needs a given and a family name.").at("name"),
        );
    }
    let birth = text(r, "birthDate")
        .ok_or_else(|| Issue::new("required", "The patient has no birthDate.").at("birthDate"))?;
    let birth_date = NaiveDate::parse_from_str(birth, "%Y-%m-%d").map_err(|_| {
        invalid(
            "birthDate",
            format!("birthDate “{birth}” is not a full date."),
        )
    })?;
    if birth_date > now.date_naive() {
        return Err(invalid("birthDate", "birthDate is in the future."));
    }
    let email = array(r, "telecom")
        .iter()
        .find(|t| text(t, "system") == Some("email"))
        .and_then(|t| text(t, "value"))
        .map(|s| s.trim().to_lowercase());
    Ok(PatientIn {
        identifiers,
        given: clip(given, 100),
        family: clip(family, 100),
        birth_date,
        email,
    })
}

fn medication(r: &Value, key: String, refs: &Refs<'_>, rtype: &str) -> Result<Row, Issue> {
    let concept = at(r, "medicationCodeableConcept");
    if concept.is_none() && at(r, "medicationReference").is_some() {
        return Err(Issue::new(
            "not-supported",
            "Name the medication as medicationCodeableConcept (RxNorm); Medication resources are not imported.",
        )
        .at("medicationReference"));
    }
    let (system, code, display) = code_for(
        concept,
        &[CodeSystem::Rxnorm, CodeSystem::Text],
        "medicationCodeableConcept",
    )?;
    let request = rtype == "MedicationRequest";
    let dosage = if request {
        at(r, "dosageInstruction.0")
    } else {
        at(r, "dosage.0")
    };
    let dose = dosage
        .and_then(|d| at(d, "doseAndRate.0.doseQuantity"))
        .and_then(|q| {
            let v = q.get("value")?.as_f64()?;
            let unit = text(q, "unit").or_else(|| text(q, "code")).unwrap_or("");
            Some(format!(
                "{} {unit}",
                crate::record::results::plain_number(v)
            ))
        })
        .unwrap_or_default();
    let route = dosage
        .and_then(|d| concept_text(at(d, "route")))
        .unwrap_or_default();
    let frequency = dosage
        .and_then(|d| at(d, "timing.repeat"))
        .and_then(|t| {
            let n = t.get("frequency")?.as_i64()?;
            let period = t.get("period")?.as_f64()?;
            let unit = match text(t, "periodUnit")? {
                "d" => "day",
                "h" => "hour",
                "wk" => "week",
                "mo" => "month",
                _ => return None,
            };
            Some(if (period - 1.0).abs() < f64::EPSILON {
                format!("{n} time{} a {unit}", if n == 1 { "" } else { "s" })
            } else {
                format!(
                    "{n} time{} every {} {unit}s",
                    if n == 1 { "" } else { "s" },
                    crate::record::results::plain_number(period)
                )
            })
        })
        .or_else(|| dosage.and_then(|d| concept_text(at(d, "timing.code"))))
        .unwrap_or_default();
    let instructions = dosage
        .and_then(|d| text(d, "patientInstruction").or_else(|| text(d, "text")))
        .unwrap_or("")
        .to_owned();
    let status = match text(r, "status").unwrap_or("active") {
        "active" | "intended" => "active",
        "on-hold" | "not-taken" => "on-hold",
        "completed" => "completed",
        "stopped" | "cancelled" => "stopped",
        "entered-in-error" => "entered-in-error",
        s => {
            return Err(invalid(
                "status",
                format!("status “{s}” is not one this record keeps."),
            ));
        }
    };
    let (starts, ends) = if request {
        (
            date_at(r, "authoredOn")?.or(date_at(r, "dispenseRequest.validityPeriod.start")?),
            date_at(r, "dispenseRequest.validityPeriod.end")?,
        )
    } else {
        (
            date_at(r, "effectivePeriod.start")?.or(date_at(r, "effectiveDateTime")?),
            date_at(r, "effectivePeriod.end")?,
        )
    };
    if let (Some(s), Some(e)) = (starts, ends)
        && e < s
    {
        return Err(invalid(
            "dispenseRequest.validityPeriod.end",
            "The medication ends before it starts.",
        ));
    }
    let quantity = at(r, "dispenseRequest.quantity")
        .and_then(|q| {
            let v = q.get("value")?.as_f64()?;
            let unit = text(q, "unit").or_else(|| text(q, "code")).unwrap_or("");
            Some(
                format!("{} {unit}", crate::record::results::plain_number(v))
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap_or_default();
    refs.encounter(r, "encounter")?;
    Ok(Row::Medication(MedicationRow {
        source_key: key,
        code_system: system.as_str(),
        code,
        name: clip(name_of(concept, display, "medicationCodeableConcept")?, 300),
        dose: clip(dose.trim().to_owned(), 200),
        route: clip(route, 100),
        frequency: clip(frequency, 200),
        instructions: clip(instructions, 2000),
        prescriber: clip(
            refs.name(at(
                r,
                if request {
                    "requester"
                } else {
                    "informationSource"
                },
            ))?
            .unwrap_or_default(),
            200,
        ),
        starts_on: starts,
        ends_on: ends,
        status: status.to_owned(),
        quantity: clip(quantity, 100),
        refills_left: at(r, "dispenseRequest.numberOfRepeatsAllowed")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0),
        kind: if request { "request" } else { "statement" },
    }))
}

fn report(r: &Value, key: String, refs: &Refs<'_>, now: DateTime<Utc>) -> Result<Row, Issue> {
    let (system, code, display) = code_for(
        at(r, "code"),
        &[CodeSystem::Loinc, CodeSystem::Text],
        "code",
    )?;
    let categories: Vec<String> = array(r, "category")
        .iter()
        .flat_map(|c| array(c, "coding"))
        .filter_map(|c| text(c, "code").map(str::to_owned))
        .collect();
    let category = if categories.iter().any(|c| c == "LAB" || c == "laboratory") {
        "lab"
    } else if categories.iter().any(|c| {
        [
            "RAD", "IMG", "imaging", "CT", "MR", "US", "XR", "NMR", "CUS", "RUS", "VUS",
        ]
        .contains(&c.as_str())
    }) {
        "imaging"
    } else if array(r, "result").is_empty() {
        "other"
    } else {
        "lab"
    };
    let collected = match time_at(r, "effectiveDateTime")? {
        Some(t) => Some(t),
        None => time_at(r, "effectivePeriod.start")?,
    };
    let resulted = time_at(r, "issued")?.or(collected).ok_or_else(|| {
        Issue::new(
            "required",
            "The report has neither issued nor effectiveDateTime.",
        )
        .at("issued")
    })?;
    not_future(resulted, now, "issued")?;
    if collected.is_some_and(|c| resulted < c) {
        return Err(invalid(
            "issued",
            "The report is issued before its sample was collected.",
        ));
    }
    let conclusion = text(r, "conclusion")
        .map(str::to_owned)
        .or_else(|| array(r, "presentedForm").first().and_then(attachment_text))
        .unwrap_or_default();
    let results = array(r, "result")
        .iter()
        .map(|x| {
            text(x, "reference")
                .map(str::to_owned)
                .ok_or_else(|| invalid("result", "A result reference has no reference."))
        })
        .collect::<Result<Vec<_>, _>>()?;
    refs.encounter(r, "encounter")?;
    Ok(Row::Report(ReportRow {
        source_key: key,
        category,
        code_system: system.as_str(),
        code,
        name: clip(name_of(at(r, "code"), display, "code")?, 300),
        performer: clip(refs.name(at(r, "performer.0"))?.unwrap_or_default(), 200),
        collected_at: collected,
        resulted_at: resulted,
        conclusion: clip(conclusion, 50_000),
        status: status_of(
            r,
            "status",
            &[
                "preliminary",
                "final",
                "amended",
                "corrected",
                "cancelled",
                "entered-in-error",
            ],
            "final",
        )?,
        visible_from: None,
        results,
    }))
}

fn quantity(q: &Value, path: &str) -> Result<(f64, String), Issue> {
    let v = q
        .get("value")
        .and_then(Value::as_f64)
        .ok_or_else(|| invalid(path, format!("{path} has no numeric value.")))?;
    let unit = text(q, "code").or_else(|| text(q, "unit")).ok_or_else(|| {
        Issue::new("required", format!("{path} is a number without a unit.")).at(path)
    })?;
    if unit.chars().any(char::is_whitespace) || unit.chars().count() > 50 {
        return Err(invalid(
            path,
            format!("{path} unit “{unit}” is not a UCUM unit."),
        ));
    }
    Ok((v, unit.to_owned()))
}

fn observation(r: &Value, key: String, refs: &Refs<'_>, now: DateTime<Utc>) -> Result<Row, Issue> {
    let cats: Vec<&str> = array(r, "category")
        .iter()
        .flat_map(|c| array(c, "coding"))
        .filter_map(|c| text(c, "code"))
        .collect();
    let category = if cats.contains(&"vital-signs") {
        "vital-signs"
    } else if cats.contains(&"laboratory") {
        "laboratory"
    } else {
        "other"
    };
    let found = codings(at(r, "code"));
    let Some((_, loinc, display)) = found.iter().find(|(s, _, _)| *s == CodeSystem::Loinc) else {
        return Err(if has_codings(at(r, "code")) {
            invalid(
                "code",
                "An observation is coded in LOINC; this one names another system only.",
            )
        } else {
            Issue::new("required", "An observation needs a LOINC code.").at("code")
        });
    };
    if !is_loinc(loinc) {
        return Err(invalid("code", format!("“{loinc}” is not a LOINC code.")));
    }
    let name = name_of(at(r, "code"), display.clone(), "code")?;
    let effective = match time_at(r, "effectiveDateTime")? {
        Some(t) => Some(t),
        None => time_at(r, "effectivePeriod.start")?,
    }
    .ok_or_else(|| {
        Issue::new("required", "The observation has no effectiveDateTime.").at("effectiveDateTime")
    })?;
    not_future(effective, now, "effectiveDateTime")?;
    let issued = time_at(r, "issued")?;
    if issued.is_some_and(|i| i < effective) {
        return Err(invalid(
            "issued",
            "The result is issued before its sample was collected.",
        ));
    }
    refs.encounter(r, "encounter")?;
    let status = status_of(
        r,
        "status",
        &[
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
        ],
        "final",
    )?;
    let performer = refs.name(at(r, "performer.0"))?.unwrap_or_default();
    let range = |x: &Value| {
        (
            at(x, "referenceRange.0.low.value").and_then(Value::as_f64),
            at(x, "referenceRange.0.high.value").and_then(Value::as_f64),
            text(x, "referenceRange.0.text").unwrap_or("").to_owned(),
        )
    };
    let flag = |x: &Value| {
        text(x, "interpretation.0.coding.0.code")
            .map(|c| match c {
                "HU" | "H>" => "HH",
                "LU" | "L<" => "LL",
                "AA" => "A",
                c => c,
            })
            .filter(|c| ["N", "L", "H", "LL", "HH", "A"].contains(c))
            .map(str::to_owned)
    };
    let one = |x: &Value,
               loinc: &str,
               name: String,
               key: String,
               path: &str|
     -> Result<ObservationRow, Issue> {
        let (num, txt, unit) = if let Some(q) = x.get("valueQuantity") {
            let (v, u) = quantity(q, &format!("{path}valueQuantity"))?;
            (Some(v), None, Some(u))
        } else if let Some(s) = text(x, "valueString") {
            (None, Some(clip(s.to_owned(), 2000)), None)
        } else if let Some(c) = concept_text(at(x, "valueCodeableConcept")) {
            (None, Some(clip(c, 2000)), None)
        } else if let Some(b) = x.get("valueBoolean").and_then(Value::as_bool) {
            (None, Some(if b { "Yes" } else { "No" }.to_owned()), None)
        } else if let Some(i) = x.get("valueInteger").and_then(Value::as_i64) {
            (Some(i as f64), None, Some("1".to_owned()))
        } else {
            return Err(Issue::new("required", format!("{path}value is missing."))
                .at(&format!("{path}value")));
        };
        let (lo, hi, rtext) = range(x);
        Ok(ObservationRow {
            source_key: key,
            report_key: None,
            category,
            loinc: loinc.to_owned(),
            name: clip(name, 300),
            value_num: num,
            value_text: txt,
            unit,
            range_low: lo,
            range_high: hi,
            range_text: clip(rtext, 200),
            interpretation: flag(x).or_else(|| flag(r)),
            effective_at: effective,
            status: status.clone(),
            issued,
            performer: performer.clone(),
        })
    };
    let components = array(r, "component");
    if !components.is_empty() && r.get("valueQuantity").is_none() && r.get("valueString").is_none()
    {
        // A panel (blood pressure): each component is kept as its own LOINC-coded value.
        let mut rows = Vec::new();
        for (i, c) in components.iter().enumerate() {
            let path = format!("component.{i}.");
            let found = codings(at(c, "code"));
            let Some((_, cl, cd)) = found.iter().find(|(s, _, _)| *s == CodeSystem::Loinc) else {
                return Err(invalid(
                    &format!("{path}code"),
                    "A component is coded in LOINC.",
                ));
            };
            if !is_loinc(cl) {
                return Err(invalid(
                    &format!("{path}code"),
                    format!("“{cl}” is not a LOINC code."),
                ));
            }
            let cname = name_of(at(c, "code"), cd.clone(), &format!("{path}code"))?;
            rows.push(one(c, cl, cname, format!("{key}#{cl}"), &path)?);
        }
        return Ok(Row::Observations(rows));
    }
    Ok(Row::Observations(vec![one(
        r,
        loinc,
        name,
        key.clone(),
        "",
    )?]))
}
