//! A repeated test over time: every visible numeric value of one LOINC code for a patient, in
//! the unit of the latest one (a value in another unit is counted, not plotted against the
//! wrong scale). Vital signs (no report) are always visible; a lab value is visible with its
//! report.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::identity::scope::{ClinicalScope, PatientScope};
use crate::ids::PatientId;
use crate::record::cache::{Key, RecordCache, Value, View, viewed_at_version};
use crate::record::codes::is_loinc;

/// The most values one trend shows (the latest ones).
pub const MAX_POINTS: i64 = 2000;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: f64,
    pub interpretation: Option<String>,
    /// The result it belongs to (none for a vital sign).
    pub report_id: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Trend {
    pub loinc: String,
    pub name: String,
    pub unit: String,
    /// The normal range given with the latest value.
    pub range_low: Option<f64>,
    pub range_high: Option<f64>,
    /// Oldest first.
    pub points: Vec<Point>,
    /// Values left out because they were given in another unit.
    pub other_units: usize,
}

/// A trend as read, with the record's version it was read at and, for the patient, when the
/// next held result is released (the trend changes then without a write).
struct Read {
    trend: Option<Trend>,
    version: Option<uuid::Uuid>,
    until: Option<DateTime<Utc>>,
}

async fn read(
    tx: &mut TenantTx,
    patient: PatientId,
    loinc: &str,
    as_patient: bool,
    now: DateTime<Utc>,
) -> Result<Read, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT o.name, o.value_num AS "value!", o.unit AS "unit!", o.range_low, o.range_high,
                  o.interpretation, o.effective_at, o.report_id,
                  (SELECT version FROM record_versions WHERE patient_id = $1) AS version,
                  (SELECT min(r.visible_from) FROM result_reports r
                   WHERE $3 AND r.patient_id = $1 AND r.visible_from > $4) AS until
           FROM observations o
           WHERE o.patient_id = $1 AND o.loinc = $2 AND o.value_num IS NOT NULL
             AND o.unit IS NOT NULL AND o.status <> 'entered-in-error'
             -- Values of reports not shown: withdrawn, or (to the patient) still held.
             -- Usually none, found by two index probes once, not a lookup per value.
             AND NOT coalesce(o.report_id = ANY (ARRAY(
                     SELECT r.id FROM result_reports r
                     WHERE r.patient_id = $1 AND r.status IN ('entered-in-error', 'cancelled')
                     UNION ALL
                     SELECT r.id FROM result_reports r
                     WHERE $3 AND r.patient_id = $1 AND r.visible_from > $4)), false)
           ORDER BY o.effective_at DESC, o.id DESC
           LIMIT $5"#,
        patient.as_uuid(),
        loinc,
        as_patient,
        now,
        MAX_POINTS
    )
    .fetch_all(tx.conn())
    .await?;
    let Some(latest) = rows.first() else {
        return Ok(Read {
            trend: None,
            version: None,
            until: None,
        });
    };
    let (version, until) = (latest.version, latest.until);
    let (name, unit, low, high) = (
        latest.name.clone(),
        latest.unit.clone(),
        latest.range_low,
        latest.range_high,
    );
    let total = rows.len();
    let mut points: Vec<Point> = rows
        .into_iter()
        .filter(|r| r.unit == unit)
        .map(|r| Point {
            at: r.effective_at,
            value: r.value,
            interpretation: r.interpretation,
            report_id: r.report_id,
        })
        .collect();
    points.reverse();
    Ok(Read {
        trend: Some(Trend {
            loinc: loinc.to_owned(),
            name,
            unit,
            range_low: low,
            range_high: high,
            other_units: total - points.len(),
            points,
        }),
        version,
        until,
    })
}

/// A trend, audited as a view of the patient's results; kept in `cache` and read again only
/// when the record has changed or a held result's time has come.
async fn viewed(
    tx: &mut TenantTx,
    cache: &RecordCache,
    ctx: &crate::audit::AuditContext,
    patient: PatientId,
    loinc: &str,
    as_patient: bool,
    now: DateTime<Utc>,
) -> Result<Option<Trend>, sqlx::Error> {
    let version = viewed_at_version(tx, ctx, "observations", patient, now).await?;
    if !is_loinc(loinc) {
        return Ok(None);
    }
    let key = Key::new(
        tx,
        patient,
        View::Trend {
            loinc: loinc.to_owned(),
            as_patient,
        },
    );
    if let Some(Value::Trend(t)) = cache.get(&key, version, now).await {
        return Ok(Some(Trend::clone(&t)));
    }
    let read = read(tx, patient, loinc, as_patient, now).await?;
    if let Some(t) = &read.trend {
        // A point is a value, a time, a flag and a report id, with the heap's overhead.
        let weight = 128 * t.points.len() + t.name.len() + t.unit.len() + 256;
        let kept = Value::Trend(Arc::new(t.clone()));
        cache.put(key, read.version, read.until, kept, weight).await;
    }
    Ok(read.trend)
}

/// The signed-in patient's trend for one test (audited as a view of their results).
pub async fn own(
    tx: &mut TenantTx,
    cache: &RecordCache,
    me: &PatientScope,
    ctx: &crate::audit::AuditContext,
    loinc: &str,
    now: DateTime<Utc>,
) -> Result<Option<Trend>, sqlx::Error> {
    viewed(tx, cache, ctx, me.patient_id(), loinc, true, now).await
}

/// A patient's trend for one test, for clinical staff (audited).
pub async fn of_patient(
    tx: &mut TenantTx,
    cache: &RecordCache,
    _staff: &ClinicalScope,
    ctx: &crate::audit::AuditContext,
    patient: PatientId,
    loinc: &str,
    now: DateTime<Utc>,
) -> Result<Option<Trend>, sqlx::Error> {
    viewed(tx, cache, ctx, patient, loinc, false, now).await
}
