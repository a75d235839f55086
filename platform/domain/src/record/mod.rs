//! The health record (issue 11, first part): problems and allergies, coded as the standards
//! code them, with every change versioned. Staff reach a patient's record through a
//! [`ClinicalScope`] (clinicians and administrators — never billing or the front desk); a
//! patient reads only their own through a [`PatientScope`]. Every read and write is audited.
//!
//! Versioning (migration `health_record`): an edit names the version it was made against; an
//! edit against an older one is refused with the current entry ([`RecordError::Stale`]), and
//! the database keeps every replaced version in `record_history` by trigger.

pub mod allergies;
pub mod cache;
pub mod chart;
pub mod codes;
pub mod fhir;
pub mod medications;
pub mod problems;
pub mod results;

pub use codes::{Code, CodeSystem};

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::ClinicalScope;
use crate::ids::PatientId;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A field is missing or not well formed: which field (`code`, `text`, `substance`,
    /// `onset`, `reaction`, `severity`, `status`) and the words for what is wrong.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// No such entry for this patient (another patient's id answers the same).
    #[error("no such entry in this record")]
    NotFound,
    /// Someone changed the entry since this edit began; `current` is the version now.
    #[error(
        "this entry was changed by someone else (now version {current}); review it and try again"
    )]
    Stale { current: i32 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl From<crate::jobs::EnqueueError> for RecordError {
    fn from(e: crate::jobs::EnqueueError) -> Self {
        match e {
            crate::jobs::EnqueueError::Database(d) => Self::Database(d),
            crate::jobs::EnqueueError::Encode(_) => {
                Self::Database(sqlx::Error::Protocol("a job could not be encoded".into()))
            }
        }
    }
}

/// One earlier (or the current) version of an entry, as history shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Version {
    pub version: i32,
    pub changed_by: Option<String>,
    pub changed_at: DateTime<Utc>,
    /// The entry as it was, column by column.
    pub data: serde_json::Value,
}

/// A problem with one field.
pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        field,
        message: message.into(),
    }
}

/// Audits a read of one part (`table`) of a patient's record.
pub(crate) async fn viewed(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    table: &'static str,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordView, table).patient(patient),
    )
    .await
}

/// Every version of one entry of `table`, oldest first, with who made each (audited);
/// another patient's entry answers [`RecordError::NotFound`].
pub(crate) async fn history(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    table: &'static str,
    patient: PatientId,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Version>, RecordError> {
    let all = versions(tx, table, id, patient).await?;
    if all.is_empty() {
        return Err(RecordError::NotFound);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RecordHistory, table)
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(all)
}

/// Every version of one entry of `table`, oldest first; the current one last.
async fn versions(
    tx: &mut TenantTx,
    table: &'static str,
    id: uuid::Uuid,
    patient: PatientId,
) -> Result<Vec<Version>, sqlx::Error> {
    // `table` is one of this module's own constants, never input; the row must belong to the
    // patient, so another patient's entry id has no history here.
    let current = format!(
        "SELECT to_jsonb(t) AS data, t.version, t.updated_at, u.display_name
         FROM {table} t LEFT JOIN users u ON u.id = t.updated_by
         WHERE t.id = $1 AND t.patient_id = $2"
    );
    let now: Option<(serde_json::Value, i32, DateTime<Utc>, Option<String>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(current))
            .bind(id)
            .bind(patient.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    let Some((data, version, changed_at, changed_by)) = now else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query!(
        r#"SELECT h.version, h.data, h.changed_at, u.display_name AS "changed_by?"
           FROM record_history h LEFT JOIN users u ON u.id = h.changed_by
           WHERE h.table_name = $1 AND h.row_id = $2 ORDER BY h.version"#,
        table,
        id
    )
    .fetch_all(tx.conn())
    .await?;
    let mut out: Vec<Version> = rows
        .into_iter()
        .map(|r| Version {
            version: r.version,
            changed_by: r.changed_by,
            changed_at: r.changed_at,
            data: r.data,
        })
        .collect();
    out.push(Version {
        version,
        changed_by,
        changed_at,
        data,
    });
    Ok(out)
}
