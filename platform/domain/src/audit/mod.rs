//! The audit trail: one append-only row per read or write of patient data and per sign-in
//! event, in the clinic's own schema (a trigger refuses UPDATE and DELETE, even by the clinic).

mod action;
pub mod trail;

pub use action::Action;

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use crate::identity::Role;
use crate::identity::scope::{AdminScope, PatientScope};
use crate::ids::{PatientId, UserId};

/// Who is acting and from where; built once per request.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    pub actor: Option<(UserId, Role)>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

impl AuditContext {
    /// The same request, acting as the clinic's system rather than as the person: for what a
    /// change does to *other* patients (offering a freed time to those waiting). Their access
    /// report must show the clinic, never the person whose change caused it.
    pub fn automatic(&self) -> AuditContext {
        AuditContext {
            actor: None,
            ..self.clone()
        }
    }
}

/// What happened to which resource, and whose data it was.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: Action,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub patient: Option<PatientId>,
}

impl AuditEvent {
    pub fn new(action: Action, resource_type: &'static str) -> Self {
        Self {
            action,
            resource_type,
            resource_id: None,
            patient: None,
        }
    }

    pub fn resource(mut self, id: impl ToString) -> Self {
        self.resource_id = Some(id.to_string());
        self
    }

    pub fn patient(mut self, id: PatientId) -> Self {
        self.patient = Some(id);
        self
    }
}

pub async fn record(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    now: DateTime<Utc>,
    event: AuditEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_log (at, actor_user_id, actor_role, patient_id, action, resource_type,
                                resource_id, client_addr, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        now,
        ctx.actor.map(|(u, _)| u.as_uuid()),
        ctx.actor.map(|(_, r)| r.as_str()),
        event.patient.map(|p| p.as_uuid()),
        event.action.code(),
        event.resource_type,
        event.resource_id,
        ctx.client_addr,
        ctx.request_id,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Audits several events of one actor at once (one multi-row INSERT): what a batch of
/// payments settled together leaves, a row per payment as one at a time would.
pub async fn record_many(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    now: DateTime<Utc>,
    events: &[AuditEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let patients: Vec<Option<uuid::Uuid>> = events
        .iter()
        .map(|e| e.patient.map(|p| p.as_uuid()))
        .collect();
    let actions: Vec<String> = events.iter().map(|e| e.action.code().to_owned()).collect();
    let types: Vec<String> = events.iter().map(|e| e.resource_type.to_owned()).collect();
    let resources: Vec<Option<String>> = events.iter().map(|e| e.resource_id.clone()).collect();
    sqlx::query!(
        "INSERT INTO audit_log (at, actor_user_id, actor_role, patient_id, action, resource_type,
                                resource_id, client_addr, request_id)
         SELECT $1, $2, $3, e.patient, e.action, e.type, e.resource, $8, $9
         FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[])
              WITH ORDINALITY AS e(patient, action, type, resource, n)
         ORDER BY e.n",
        now,
        ctx.actor.map(|(u, _)| u.as_uuid()),
        ctx.actor.map(|(_, r)| r.as_str()),
        &patients as &[Option<uuid::Uuid>],
        &actions,
        &types,
        &resources as &[Option<String>],
        ctx.client_addr,
        ctx.request_id,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Audits a list read: one row per patient shown (deduplicated, one multi-row INSERT), so each
/// patient's access report and the per-patient trail show that their name was on the screen.
/// A list that showed nobody still leaves one row, without a patient.
pub async fn record_list(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    now: DateTime<Utc>,
    action: Action,
    resource_type: &'static str,
    shown: impl IntoIterator<Item = PatientId>,
) -> Result<(), sqlx::Error> {
    let mut ids: Vec<uuid::Uuid> = shown.into_iter().map(|p| p.as_uuid()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return record(tx, ctx, now, AuditEvent::new(action, resource_type)).await;
    }
    sqlx::query!(
        "INSERT INTO audit_log (at, actor_user_id, actor_role, patient_id, action, resource_type,
                                resource_id, client_addr, request_id)
         SELECT $1, $2, $3, p, $5, $6, NULL, $7, $8 FROM unnest($4::uuid[]) AS p",
        now,
        ctx.actor.map(|(u, _)| u.as_uuid()),
        ctx.actor.map(|(_, r)| r.as_str()),
        &ids,
        action.code(),
        resource_type,
        ctx.client_addr,
        ctx.request_id,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One row of the trail as shown to people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

/// The whole trail of one patient's data, for the clinic's administrators.
pub async fn for_patient(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    patient: PatientId,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT a.at, u.display_name AS "actor_name?", a.actor_role, a.action, a.resource_type,
                  a.resource_id, a.client_addr, a.request_id
           FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
           WHERE a.patient_id = $1 ORDER BY a.at DESC, a.id DESC LIMIT $2"#,
        patient.as_uuid(),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// The most recent events of the clinic, for its administrators.
pub async fn recent(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT a.at, u.display_name AS "actor_name?", a.actor_role, a.action, a.resource_type,
                  a.resource_id, a.client_addr, a.request_id
           FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
           ORDER BY a.at DESC, a.id DESC LIMIT $1"#,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// "Who viewed my record": every access to the patient's own data, by whom and when (the
/// client address and request id stay with the clinic).
///
/// A patient is shown a person's name only when that person is staff or the patient
/// themself. Anything else — the system, or a change someone else made that touched this
/// patient (another patient's cancellation offering their time) — comes back with no name and
/// no role, and reads as the clinic acting automatically. The rule lives in this one query so
/// that no audit action, present or future, can show one patient another's name.
pub async fn about_me(
    tx: &mut TenantTx,
    me: &PatientScope,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let staff: Vec<&str> = Role::STAFF_ROLES
        .iter()
        .map(|r| r.as_str())
        .chain(Role::LEGACY_STAFF_CODES.iter().copied())
        .collect();
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT a.at,
                  CASE WHEN shown THEN u.display_name END AS "actor_name?",
                  CASE WHEN shown THEN a.actor_role END AS "actor_role?",
                  a.action, a.resource_type, a.resource_id,
                  NULL::text AS client_addr, NULL::text AS request_id
           FROM audit_log a
           LEFT JOIN users u ON u.id = a.actor_user_id
           CROSS JOIN LATERAL (
               SELECT u.id IS NOT NULL
                      AND (a.actor_role = ANY($3) OR (u.role = 'patient' AND u.patient_id = $1))
                      AS shown
           ) s
           WHERE a.patient_id = $1 ORDER BY a.at DESC, a.id DESC LIMIT $2"#,
        me.patient_id().as_uuid(),
        limit,
        &staff as &[&str],
    )
    .fetch_all(tx.conn())
    .await
}

/// Words for an action code, for the pages. Every action written today has a label; a code
/// no longer written (from an older version) still reads as something plain.
pub fn describe(code: &str) -> &'static str {
    Action::parse(code).map_or("Recorded activity", Action::label)
}
