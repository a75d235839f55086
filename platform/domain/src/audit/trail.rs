//! The clinic's audit trail as administrators read it: filtered by patient, member of staff,
//! action and dates, a page at a time, each row naming the patient it is about.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::Action;
use crate::identity::scope::AdminScope;
use crate::ids::{PatientId, UserId};

/// What to show; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct TrailFilter {
    pub patient: Option<PatientId>,
    pub actor: Option<UserId>,
    pub action: Option<Action>,
    /// From this instant (inclusive) to that one (exclusive).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One row of the trail.
#[derive(Debug, Clone)]
pub struct TrailRow {
    pub at: DateTime<Utc>,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub patient_id: Option<uuid::Uuid>,
    pub patient_name: Option<String>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

/// Rows matching `f`, newest first, and how many match in all.
pub async fn search(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    f: &TrailFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<TrailRow>, i64), sqlx::Error> {
    let patient = f.patient.map(|p| p.as_uuid());
    let actor = f.actor.map(|u| u.as_uuid());
    let action = f.action.map(Action::code);
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM audit_log a
           WHERE ($1::uuid IS NULL OR a.patient_id = $1)
             AND ($2::uuid IS NULL OR a.actor_user_id = $2)
             AND ($3::text IS NULL OR a.action = $3)
             AND ($4::timestamptz IS NULL OR a.at >= $4)
             AND ($5::timestamptz IS NULL OR a.at < $5)"#,
        patient,
        actor,
        action,
        f.from,
        f.to
    )
    .fetch_one(tx.conn())
    .await?;
    let rows = sqlx::query_as!(
        TrailRow,
        r#"SELECT a.at, u.display_name AS "actor_name?", a.actor_role, a.action,
                  a.patient_id AS "patient_id?",
                  p.given_name || ' ' || p.family_name AS "patient_name?",
                  a.client_addr, a.request_id
           FROM audit_log a
           LEFT JOIN users u ON u.id = a.actor_user_id
           LEFT JOIN patients p ON p.id = a.patient_id
           WHERE ($1::uuid IS NULL OR a.patient_id = $1)
             AND ($2::uuid IS NULL OR a.actor_user_id = $2)
             AND ($3::text IS NULL OR a.action = $3)
             AND ($4::timestamptz IS NULL OR a.at >= $4)
             AND ($5::timestamptz IS NULL OR a.at < $5)
           ORDER BY a.at DESC, a.id DESC
           LIMIT $6 OFFSET $7"#,
        patient,
        actor,
        action,
        f.from,
        f.to,
        limit,
        offset
    )
    .fetch_all(tx.conn())
    .await?;
    Ok((rows, total))
}
