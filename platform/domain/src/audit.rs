//! The audit trail: one append-only row per read or write of patient data and per sign-in
//! event, in the clinic's own schema (a trigger refuses UPDATE and DELETE, even by the clinic).

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

/// What happened to which resource, and whose data it was.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub patient: Option<PatientId>,
}

impl AuditEvent {
    pub fn new(action: &'static str, resource_type: &'static str) -> Self {
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
        event.action,
        event.resource_type,
        event.resource_id,
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
pub async fn about_me(
    tx: &mut TenantTx,
    me: &PatientScope,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT a.at, u.display_name AS "actor_name?", a.actor_role, a.action, a.resource_type,
                  a.resource_id, NULL::text AS client_addr, NULL::text AS request_id
           FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
           WHERE a.patient_id = $1 ORDER BY a.at DESC, a.id DESC LIMIT $2"#,
        me.patient_id().as_uuid(),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// Words for an action code, for the pages.
pub fn describe(action: &str) -> &'static str {
    match action {
        "patient.create" => "Created the patient record",
        "patient.view" => "Viewed the patient record",
        "patient.list" => "Listed patients",
        "patient.invite" => "Sent a portal invitation",
        "record.view" => "Viewed own record",
        "signin" => "Signed in",
        "signin.failed" => "Failed sign-in",
        "signout" => "Signed out",
        "password.change" => "Changed password",
        "password.reset" => "Reset password by email link",
        "invitation.accept" => "Accepted the portal invitation",
        "audit.view" => "Viewed the access log",
        "appointment.book" => "Booked an appointment",
        "appointment.view" => "Viewed an appointment",
        "appointment.list" => "Listed appointments",
        "appointment.reschedule" => "Moved an appointment",
        "appointment.cancel" => "Cancelled an appointment",
        "appointment.check_in" => "Checked in for an appointment",
        "appointment.no_show" => "Marked an appointment as missed",
        "appointment.complete" => "Completed an appointment",
        "appointment.notify" => "Sent an appointment notice",
        "schedule.view" => "Viewed the schedule",
        "appointment.confirm" => "Confirmed an appointment by text",
        "sms.opt_out" => "Stopped text messages",
        "waitlist.join" => "Asked for an earlier time",
        "waitlist.leave" => "Stopped waiting for an earlier time",
        "waitlist.offer" => "Sent an earlier-time offer",
        "waitlist.offers" => "Listed earlier-time offers",
        "waitlist.accept" => "Took an earlier time",
        "sms.opt_in" => "Resumed text messages",
        "reminder_preferences.view" => "Viewed reminder choices",
        "reminder_preferences.update" => "Changed reminder choices",
        "reminder_rules.update" => "Changed the clinic's reminder schedule",
        "undelivered.list" => "Listed messages that could not be sent",
        _ => "Other activity",
    }
}
