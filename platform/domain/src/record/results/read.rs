//! Reading results: the patient's list (held results listed as waiting, without their name)
//! and one result (only once visible); the same for clinical staff, who see everything.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::Category;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{ClinicalScope, PatientScope};
use crate::ids::PatientId;

/// A result in a list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResultSummary {
    pub id: uuid::Uuid,
    pub category: Category,
    /// Empty while the result waits for the patient (they chose not to see it yet).
    pub name: String,
    pub resulted_at: DateTime<Utc>,
    pub visible_from: DateTime<Utc>,
    /// The patient may see it now.
    pub visible: bool,
    /// The patient has not opened it yet.
    pub new: bool,
    /// At least one value is outside its range.
    pub flagged: bool,
    pub commented: bool,
}

/// One value of a result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Value {
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
}

impl Value {
    /// Outside its range (or flagged abnormal by the lab).
    pub fn flagged(&self) -> bool {
        self.interpretation.as_deref().is_some_and(|f| f != "N")
    }
}

/// One result in full.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResultDetail {
    pub id: uuid::Uuid,
    pub version: i32,
    pub category: Category,
    pub code: Option<String>,
    pub name: String,
    pub performer: String,
    pub collected_at: Option<DateTime<Utc>>,
    pub resulted_at: DateTime<Utc>,
    pub conclusion: String,
    pub status: String,
    pub visible_from: DateTime<Utc>,
    pub comment: String,
    pub commented_by: Option<String>,
    pub commented_at: Option<DateTime<Utc>>,
    pub values: Vec<Value>,
}

/// What a patient gets asking for one result.
#[derive(Debug, Clone)]
pub enum Shown {
    Visible(Box<ResultDetail>),
    /// They chose to wait; it shows from this time (or their clinician's comment).
    Waiting(DateTime<Utc>),
}

async fn list(
    tx: &mut TenantTx,
    patient: PatientId,
    as_patient: bool,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ResultSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        // The newest reports first, then each one's abnormal values probed (a partial index
        // of them): flags for the rows shown, not for every report of the clinic.
        r#"SELECT x.id AS "id!", x.category AS "category!", x.name AS "name!",
                  x.resulted_at AS "resulted_at!", x.visible_from AS "visible_from!",
                  x.commented AS "commented!", x.new AS "new!",
                  EXISTS (SELECT 1 FROM observations o WHERE o.report_id = x.id
                          AND o.interpretation IS NOT NULL AND o.interpretation <> 'N'
                          AND o.status <> 'entered-in-error') AS "flagged!"
           FROM (SELECT r.id, r.category, r.name, r.resulted_at, r.visible_from,
                        (r.comment <> '') AS commented, (s.report_id IS NULL) AS new
                 FROM result_reports r LEFT JOIN result_seen s ON s.report_id = r.id
                 WHERE r.patient_id = $1 AND r.status NOT IN ('entered-in-error', 'cancelled')
                 ORDER BY r.resulted_at DESC, r.id DESC
                 LIMIT $2) x
           ORDER BY x.resulted_at DESC, x.id DESC"#,
        patient.as_uuid(),
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            summarize(
                SummaryRow {
                    id: r.id,
                    category: r.category,
                    name: r.name,
                    resulted_at: r.resulted_at,
                    visible_from: r.visible_from,
                    commented: r.commented,
                    new: r.new,
                    flagged: r.flagged,
                },
                as_patient,
                now,
            )
        })
        .collect())
}

/// A result row as the list query (or the chart's one-query read, as JSON) gives it.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct SummaryRow {
    pub id: uuid::Uuid,
    pub category: String,
    pub name: String,
    pub resulted_at: DateTime<Utc>,
    pub visible_from: DateTime<Utc>,
    pub commented: bool,
    pub new: bool,
    pub flagged: bool,
}

/// A row as a list shows it: to the patient, a result still held has no name and no flag.
pub(crate) fn summarize(r: SummaryRow, as_patient: bool, now: DateTime<Utc>) -> ResultSummary {
    let visible = r.visible_from <= now;
    let shown = visible || !as_patient;
    ResultSummary {
        id: r.id,
        category: Category::parse(&r.category).unwrap_or(Category::Other),
        name: if shown { r.name } else { String::new() },
        resulted_at: r.resulted_at,
        visible_from: r.visible_from,
        visible,
        new: r.new,
        flagged: shown && r.flagged,
        commented: r.commented,
    }
}

/// The signed-in patient's results, newest first (audited as a view of their results).
pub async fn own(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<ResultSummary>, sqlx::Error> {
    let out = list(tx, me.patient_id(), true, 500, now).await?;
    crate::record::viewed(tx, ctx, "result_reports", me.patient_id(), now).await?;
    Ok(out)
}

async fn detail(
    tx: &mut TenantTx,
    patient: PatientId,
    id: uuid::Uuid,
) -> Result<Option<ResultDetail>, sqlx::Error> {
    let Some(r) = sqlx::query!(
        r#"SELECT r.id, r.version, r.category, r.code, r.name, r.performer, r.collected_at,
                  r.resulted_at, r.conclusion, r.status, r.visible_from, r.comment,
                  u.display_name AS "commented_by?", r.commented_at
           FROM result_reports r LEFT JOIN users u ON u.id = r.commented_by
           WHERE r.id = $1 AND r.patient_id = $2
             AND r.status NOT IN ('entered-in-error', 'cancelled')"#,
        id,
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let values = sqlx::query_as!(
        Value,
        "SELECT loinc, name, value_num, value_text, unit, range_low, range_high, range_text,
                interpretation, effective_at
         FROM observations
         WHERE report_id = $1 AND patient_id = $2 AND status <> 'entered-in-error'
         ORDER BY name, id",
        id,
        patient.as_uuid()
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(Some(ResultDetail {
        id: r.id,
        version: r.version,
        category: Category::parse(&r.category).unwrap_or(Category::Other),
        code: r.code,
        name: r.name,
        performer: r.performer,
        collected_at: r.collected_at,
        resulted_at: r.resulted_at,
        conclusion: r.conclusion,
        status: r.status,
        visible_from: r.visible_from,
        comment: r.comment,
        commented_by: r.commented_by,
        commented_at: r.commented_at,
        values,
    }))
}

/// One of the signed-in patient's results: in full once visible (and then marked seen), else
/// when it will be. Another patient's id is `None`. Audited either way.
pub async fn own_one(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Shown>, sqlx::Error> {
    let Some(d) = detail(tx, me.patient_id(), id).await? else {
        return Ok(None);
    };
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ResultSeen, "result_reports")
            .resource(id)
            .patient(me.patient_id()),
    )
    .await?;
    if d.visible_from > now {
        return Ok(Some(Shown::Waiting(d.visible_from)));
    }
    sqlx::query!(
        "INSERT INTO result_seen (report_id, seen_at) VALUES ($1, $2)
         ON CONFLICT (report_id) DO NOTHING",
        id,
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(Some(Shown::Visible(Box::new(d))))
}

/// One result of a patient, for clinical staff (audited).
pub async fn one(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<Option<ResultDetail>, sqlx::Error> {
    let d = detail(tx, patient, id).await?;
    if d.is_some() {
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::ResultSeen, "result_reports")
                .resource(id)
                .patient(patient),
        )
        .await?;
    }
    Ok(d)
}

/// Whom to tell about a result, and how: `None` when the notice is stale (the result's release
/// time moved since it was queued, or the result was withdrawn).
#[derive(Debug, Clone)]
pub struct NoticeTarget {
    pub category: Category,
    pub visible_from: DateTime<Utc>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Reads the notice's target (audited as the clinic, against the patient).
pub async fn for_notice(
    tx: &mut TenantTx,
    report: uuid::Uuid,
    visible_from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<NoticeTarget>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT r.category, r.visible_from, r.patient_id, p.email, p.reminder_email,
                p.reminder_sms,
                CASE WHEN p.phone_verified_at IS NOT NULL THEN p.phone END AS phone
         FROM result_reports r JOIN patients p ON p.id = r.patient_id
         WHERE r.id = $1 AND r.status NOT IN ('entered-in-error', 'cancelled')",
        report
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row.filter(|r| r.visible_from == visible_from) else {
        return Ok(None);
    };
    audit::record(
        tx,
        &AuditContext::default(),
        now,
        AuditEvent::new(Action::ResultNotice, "result_reports")
            .resource(report)
            .patient(PatientId::from_uuid(r.patient_id)),
    )
    .await?;
    Ok(Some(NoticeTarget {
        category: Category::parse(&r.category).unwrap_or(Category::Other),
        visible_from: r.visible_from,
        // The patient's own choice of channels (the same as for visit reminders).
        email: r.email.filter(|_| r.reminder_email),
        phone: r.phone.filter(|_| r.reminder_sms),
    }))
}
