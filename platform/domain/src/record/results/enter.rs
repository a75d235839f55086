//! Putting results in: one writer for staff entry and FHIR import (`insert_report`), which
//! decides when the patient sees the result (their own choice, read at entry) and queues the
//! content-free notices; and the clinician's comment, which releases a held result.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use portal_tenants::TenantTx;

use super::{Category, preferences};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::ClinicalScope;
use crate::ids::{PatientId, UserId};
use crate::jobs::{self, Channel, Job, ResultStage};
use crate::record::codes::is_loinc;
use crate::record::{Code, CodeSystem, RecordError, invalid};

/// A result report, checked by its maker.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub category: Category,
    /// LOINC or text.
    pub code: Code,
    pub name: String,
    pub performer: String,
    pub collected_at: Option<DateTime<Utc>>,
    pub resulted_at: DateTime<Utc>,
    pub conclusion: String,
    pub status: String,
    pub source_key: Option<String>,
}

/// One value (a lab analyte or a vital sign).
#[derive(Debug, Clone)]
pub struct NewObservation {
    /// `vital-signs`, `laboratory` or `other`.
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
    pub source_key: Option<String>,
}

impl NewObservation {
    /// The checks every value passes, whoever enters it (the database repeats the essential
    /// ones): a LOINC code, a name, a value, a unit with every number, a range that is one.
    pub fn check(&self) -> Result<(), RecordError> {
        if !is_loinc(&self.loinc) {
            return Err(invalid(
                "loinc",
                format!(
                    "“{}” is not a LOINC code; they look like 2345-7.",
                    self.loinc
                ),
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 300 {
            return Err(invalid("name", "Name the test (up to 300 characters)."));
        }
        if self.value_num.is_none() && self.value_text.as_deref().is_none_or(str::is_empty) {
            return Err(invalid("value", "Enter the result's value."));
        }
        if self.value_num.is_some_and(|v| !v.is_finite()) {
            return Err(invalid("value", "The value is not a number we can keep."));
        }
        if self.value_num.is_some() && self.unit.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "unit",
                "A numeric result needs its unit (UCUM, for example mg/dL or mmol/L).",
            ));
        }
        if let Some(u) = &self.unit
            && (u.chars().count() > 50 || u.chars().any(char::is_whitespace))
        {
            return Err(invalid(
                "unit",
                "Write the unit as UCUM writes it, without spaces (for example mg/dL).",
            ));
        }
        if let (Some(lo), Some(hi)) = (self.range_low, self.range_high)
            && lo > hi
        {
            return Err(invalid(
                "low",
                "The normal range's low end is above its high end.",
            ));
        }
        Ok(())
    }

    /// H, L or N from the value and the range, when the source gave no flag.
    fn flag(&self) -> Option<String> {
        if self.interpretation.is_some() {
            return self.interpretation.clone();
        }
        let v = self.value_num?;
        if self.range_low.is_none() && self.range_high.is_none() {
            return None;
        }
        Some(
            if self.range_low.is_some_and(|lo| v < lo) {
                "L"
            } else if self.range_high.is_some_and(|hi| v > hi) {
                "H"
            } else {
                "N"
            }
            .to_owned(),
        )
    }
}

/// Writes a report and its values for a patient; `by` is the member of staff (none for an
/// import). A `fresh` result follows the patient's release choice and notifies them; an older
/// one (history brought in by an import) is simply visible, with no notice. Returns its id.
/// The caller audits (one row per entry, or one per import).
pub async fn insert_report(
    tx: &mut TenantTx,
    patient: PatientId,
    by: Option<UserId>,
    report: &NewReport,
    values: &[NewObservation],
    fresh: bool,
    now: DateTime<Utc>,
) -> Result<uuid::Uuid, RecordError> {
    if report.name.trim().is_empty() || report.name.chars().count() > 300 {
        return Err(invalid("name", "Name the test (up to 300 characters)."));
    }
    if report.collected_at.is_some_and(|c| c > report.resulted_at) {
        return Err(invalid(
            "collected",
            "The result is dated before its sample was collected.",
        ));
    }
    for v in values {
        v.check()?;
    }
    // Microseconds, as PostgreSQL keeps them: a notice compares this time with the stored one.
    let now = now.trunc_subsecs(6);
    let wait = if fresh {
        preferences::wait_for(tx, patient, report.category).await?
    } else {
        None
    };
    let visible_from = now + Duration::days(wait.map_or(0, i64::from));
    let id = uuid::Uuid::now_v7();
    let inserted = sqlx::query!(
        "INSERT INTO result_reports (id, patient_id, category, code_system, code, name, performer,
                                     collected_at, resulted_at, conclusion, status, visible_from,
                                     source_key, updated_by, updated_at, created_at)
         SELECT $1, p.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15
         FROM patients p WHERE p.id = $2",
        id,
        patient.as_uuid(),
        report.category.as_str(),
        report.code.system.as_str(),
        report.code.code,
        report.name.trim(),
        report.performer,
        report.collected_at,
        report.resulted_at,
        report.conclusion,
        report.status,
        visible_from,
        report.source_key,
        by.map(|u| u.as_uuid()),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(RecordError::NotFound);
    }
    insert_observations(tx, patient, Some(id), by, values, now).await?;
    if fresh {
        let held = wait.is_some();
        let stage = if held {
            ResultStage::Waiting
        } else {
            ResultStage::Ready
        };
        let mut queued = Vec::new();
        for channel in [Channel::Email, Channel::Sms] {
            queued.push((
                Job::ResultNotice {
                    report_id: id,
                    channel,
                    visible_from,
                    stage,
                },
                None,
            ));
            if held {
                queued.push((
                    Job::ResultNotice {
                        report_id: id,
                        channel,
                        visible_from,
                        stage: ResultStage::Released,
                    },
                    Some(visible_from),
                ));
            }
        }
        jobs::enqueue_many(tx, &queued).await?;
    }
    Ok(id)
}

/// Writes values (vitals with no report, or a report's analytes) in one statement.
pub async fn insert_observations(
    tx: &mut TenantTx,
    patient: PatientId,
    report: Option<uuid::Uuid>,
    by: Option<UserId>,
    values: &[NewObservation],
    now: DateTime<Utc>,
) -> Result<(), RecordError> {
    if values.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(values.len());
    let (mut cat, mut loinc, mut name, mut num, mut text, mut unit) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut lo, mut hi, mut rtext, mut flag, mut at, mut status, mut key) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for v in values {
        v.check()?;
        ids.push(uuid::Uuid::now_v7());
        cat.push(v.category.to_owned());
        loinc.push(v.loinc.clone());
        name.push(v.name.trim().to_owned());
        num.push(v.value_num);
        text.push(v.value_text.clone());
        unit.push(v.unit.clone());
        lo.push(v.range_low);
        hi.push(v.range_high);
        rtext.push(v.range_text.clone());
        flag.push(v.flag());
        at.push(v.effective_at);
        status.push(v.status.clone());
        key.push(v.source_key.clone());
    }
    sqlx::query!(
        "INSERT INTO observations (id, patient_id, report_id, category, loinc, name, value_num,
                                   value_text, unit, range_low, range_high, range_text,
                                   interpretation, effective_at, status, source_key, updated_by,
                                   updated_at, created_at)
         SELECT u.id, $2, $3, u.cat, u.loinc, u.name, u.num, u.txt, u.unit, u.lo, u.hi, u.rtext,
                u.flag, u.at, u.status, u.key, $17, $18, $18
         FROM unnest($1::uuid[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::text[],
                     $9::text[], $10::float8[], $11::float8[], $12::text[], $13::text[],
                     $14::timestamptz[], $15::text[], $16::text[])
              AS u(id, cat, loinc, name, num, txt, unit, lo, hi, rtext, flag, at, status, key)",
        &ids,
        patient.as_uuid(),
        report,
        &cat,
        &loinc,
        &name,
        &num as &[Option<f64>],
        &text as &[Option<String>],
        &unit as &[Option<String>],
        &lo as &[Option<f64>],
        &hi as &[Option<f64>],
        &rtext,
        &flag as &[Option<String>],
        &at,
        &status,
        &key as &[Option<String>],
        by.map(|u| u.as_uuid()),
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One lab value as a clinician types it on the patient's record page.
#[derive(Debug, Clone)]
pub struct LabEntry<'a> {
    pub name: &'a str,
    pub loinc: &'a str,
    pub value: &'a str,
    pub unit: &'a str,
    pub low: &'a str,
    pub high: &'a str,
    /// When the sample was taken (the page reads it in the clinic's zone); none: now.
    pub collected_at: Option<DateTime<Utc>>,
    pub performer: &'a str,
}

fn number(raw: &str, field: &'static str, what: &str) -> Result<Option<f64>, RecordError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| invalid(field, format!("The {what} must be a number, like 5.4.")))
}

/// Enters one lab result (a report with one value) for a patient; audited, and the patient
/// is told (or the result waits, by their own choice).
pub async fn enter_lab(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    entry: &LabEntry<'_>,
    now: DateTime<Utc>,
) -> Result<uuid::Uuid, RecordError> {
    let loinc = entry.loinc.trim();
    let name = entry.name.split_whitespace().collect::<Vec<_>>().join(" ");
    let raw_value = entry.value.trim();
    // A value that reads as a number is kept as one (trends need it); anything else as text.
    let value_num = raw_value.parse::<f64>().ok().filter(|v| v.is_finite());
    let collected = entry.collected_at.unwrap_or(now);
    if collected > now {
        return Err(invalid(
            "collected",
            "The sample cannot have been collected in the future.",
        ));
    }
    let value = NewObservation {
        category: "laboratory",
        loinc: loinc.to_owned(),
        name: name.clone(),
        value_num,
        value_text: value_num
            .is_none()
            .then(|| raw_value.to_owned())
            .filter(|s| !s.is_empty()),
        unit: Some(entry.unit.trim().to_owned()).filter(|u| !u.is_empty()),
        range_low: number(entry.low, "low", "normal range's low end")?,
        range_high: number(entry.high, "high", "normal range's high end")?,
        range_text: String::new(),
        interpretation: None,
        effective_at: collected,
        status: "final".to_owned(),
        source_key: None,
    };
    value.check()?;
    let report = NewReport {
        category: Category::Lab,
        code: Code {
            system: CodeSystem::Loinc,
            code: Some(loinc.to_owned()),
        },
        name,
        performer: entry.performer.trim().to_owned(),
        collected_at: Some(collected),
        resulted_at: now,
        conclusion: String::new(),
        status: "final".to_owned(),
        source_key: None,
    };
    let id = insert_report(
        tx,
        patient,
        Some(staff.user_id()),
        &report,
        std::slice::from_ref(&value),
        true,
        now,
    )
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordCreate, "result_reports")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(id)
}

/// The clinician's plain-language comment on a result, made against `version`. A result the
/// patient chose to wait for becomes visible now, and they are told. Returns the new version.
#[allow(clippy::too_many_arguments)]
pub async fn comment(
    tx: &mut TenantTx,
    staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: uuid::Uuid,
    version: i32,
    text: &str,
    now: DateTime<Utc>,
) -> Result<i32, RecordError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 5000 {
        return Err(invalid(
            "comment",
            "Write a comment for the patient (up to 5,000 characters).",
        ));
    }
    let now = now.trunc_subsecs(6);
    let current = sqlx::query!(
        "SELECT version, visible_from FROM result_reports
         WHERE id = $1 AND patient_id = $2 FOR UPDATE",
        id,
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(RecordError::NotFound)?;
    if current.version != version {
        return Err(RecordError::Stale {
            current: current.version,
        });
    }
    let releases = current.visible_from > now;
    let new_version = sqlx::query_scalar!(
        "UPDATE result_reports SET comment = $3, commented_by = $4, commented_at = $5,
                visible_from = LEAST(visible_from, $5), updated_by = $4, updated_at = $5,
                version = version + 1
         WHERE id = $1 AND patient_id = $2 RETURNING version",
        id,
        patient.as_uuid(),
        text,
        staff.user_id().as_uuid(),
        now
    )
    .fetch_one(tx.conn())
    .await?;
    if releases {
        let queued: Vec<_> = [Channel::Email, Channel::Sms]
            .into_iter()
            .map(|channel| {
                (
                    Job::ResultNotice {
                        report_id: id,
                        channel,
                        visible_from: now,
                        stage: ResultStage::Released,
                    },
                    None,
                )
            })
            .collect();
        jobs::enqueue_many(tx, &queued).await?;
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ResultComment, "result_reports")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(new_version)
}
