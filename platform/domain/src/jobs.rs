//! Jobs: typed, versioned payloads carrying ids only (the tenant id always), written into the
//! control-plane outbox in the same transaction as the change that needs them. The relay in
//! `portal-workers` moves them to Redis; handlers there are idempotent by the job id.

use portal_tenants::{TenantId, TenantTx};

use crate::ids::{
    AppointmentId, DocumentId, JobId, OfferId, PatientId, PaymentId, RefundId, StatementId, UserId,
};

/// Everything the pipeline can do. The serialized tag is the job's stable name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "payload")]
pub enum Job {
    /// Email a new single-use invitation link (the worker makes the token).
    #[serde(rename = "email.invitation")]
    SendInvitation { user_id: UserId },
    /// Email a single-use password-reset link.
    #[serde(rename = "email.password_reset")]
    SendPasswordReset { user_id: UserId },
    /// Remind the patient of a visit, by one channel. Stale (sends nothing) when the visit was
    /// cancelled or moved (its version moved on) since the reminder was scheduled.
    #[serde(rename = "reminder.appointment")]
    Reminder {
        appointment_id: AppointmentId,
        version: i32,
        channel: Channel,
        hours_before: i32,
    },
    /// Tell a waiting patient an earlier time opened, by one channel: one job per channel, so
    /// a failing email never sends the text again (`None`: both, from jobs queued before).
    #[serde(rename = "waitlist.offer")]
    WaitlistOffer {
        offer_id: OfferId,
        #[serde(default)]
        channel: Option<Channel>,
    },
    /// Text a code to the patient's new mobile number, to confirm it is theirs.
    #[serde(rename = "sms.verify_phone")]
    VerifyPhone { patient_id: PatientId },
    /// Tell the patient their visit was booked, moved or cancelled (email with a calendar file).
    /// Stale when the appointment's version has moved on since.
    #[serde(rename = "email.appointment")]
    AppointmentNotice {
        appointment_id: AppointmentId,
        version: i32,
        change: AppointmentChange,
    },
    /// Tell the patient a result is ready (no content), by one channel. `visible_from` is when
    /// the patient may see it as of queueing; stale (sends nothing) when that moved since — a
    /// clinician's comment released it earlier, and that release queued its own notice.
    #[serde(rename = "result.notice")]
    ResultNotice {
        report_id: uuid::Uuid,
        channel: Channel,
        visible_from: chrono::DateTime<chrono::Utc>,
        /// `ready`: just entered; `released`: a result the patient chose to wait for is
        /// now visible.
        stage: ResultStage,
    },
    /// Print a requested document to PDF and store it. A document already ready is left as
    /// it is; the last failed attempt marks it failed (the person may ask again).
    #[serde(rename = "document.render")]
    DocumentRender { document_id: DocumentId },
    /// Delete a blob whose row never committed (see `documents::vault`); queued, delayed,
    /// before the blob is written.
    #[serde(rename = "blob.sweep")]
    BlobSweep { blob: String },
    /// Tell the patient a statement was issued, by one channel, with no amount and no
    /// service. Stale (sends nothing) when the statement was voided since.
    #[serde(rename = "statement.notice")]
    StatementNotice {
        statement_id: StatementId,
        channel: Channel,
    },
    /// Tell each payment's patient (by email, with no amount) that the payment was received
    /// and its receipt is in the portal — where it is printed when someone opens it. One job
    /// for all the payments a transaction took (a drain's batch settles up to a hundred), each
    /// payment marked as it is told, so a retry tells only those not yet told.
    #[serde(rename = "payment.receipts")]
    PaymentReceipts { payment_ids: Vec<PaymentId> },
    /// What was queued per payment before receipts were printed on demand: prepare the receipt
    /// (`document_id`, when it was queued with it), then tell the patient as
    /// [`Job::PaymentReceipts`] does. Still handled, so jobs queued before an upgrade run.
    #[serde(rename = "payment.receipt")]
    PaymentReceipt {
        payment_id: PaymentId,
        /// Absent in jobs queued before receipts were prepared by this job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_id: Option<DocumentId>,
    },
    /// Charge the saved cards of the clinic's payment plans whose instalments fall due today.
    #[serde(rename = "billing.autopay")]
    Autopay {},
    /// Tell the patient (by email, with no amount) that an automatic plan payment failed.
    #[serde(rename = "autopay.failed")]
    AutopayFailed { payment_id: PaymentId },
    /// Apply the clinic's waiting Stripe events, a batch at a time, in Stripe's order, and
    /// bring its payments (or payments set-up) up to date with them (`billing::events`).
    #[serde(rename = "stripe.inbox")]
    StripeInbox {},
    /// What the webhook queued for each event before the drain: run as a drain, so jobs
    /// queued before an upgrade still apply their events.
    #[serde(rename = "stripe.event")]
    StripeEvent { event_id: String },
    /// Send a refund Stripe could not be reached for, again with the same key.
    #[serde(rename = "stripe.refund")]
    StripeRefund { refund_id: RefundId },
    /// Compare the clinic's card payments with Stripe's list, settling any a lost webhook left
    /// pending.
    #[serde(rename = "stripe.reconcile")]
    StripeReconcile {},
}

/// Which new-result notice: entered (visible now, or waiting by the patient's choice), or
/// released after waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStage {
    Ready,
    Waiting,
    Released,
}

/// How a message reaches a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

/// What happened to an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentChange {
    Booked,
    Moved,
    Cancelled,
}

/// The current payload version of every job; a handler refuses versions it does not know.
pub const JOB_VERSION: i32 = 1;

impl Job {
    /// The job's stable name (also the outbox `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Job::SendInvitation { .. } => "email.invitation",
            Job::SendPasswordReset { .. } => "email.password_reset",
            Job::AppointmentNotice { .. } => "email.appointment",
            Job::Reminder { .. } => "reminder.appointment",
            Job::WaitlistOffer { .. } => "waitlist.offer",
            Job::VerifyPhone { .. } => "sms.verify_phone",
            Job::ResultNotice { .. } => "result.notice",
            Job::DocumentRender { .. } => "document.render",
            Job::BlobSweep { .. } => "blob.sweep",
            Job::StatementNotice { .. } => "statement.notice",
            Job::PaymentReceipts { .. } => "payment.receipts",
            Job::PaymentReceipt { .. } => "payment.receipt",
            Job::Autopay {} => "billing.autopay",
            Job::AutopayFailed { .. } => "autopay.failed",
            Job::StripeInbox {} => "stripe.inbox",
            Job::StripeEvent { .. } => "stripe.event",
            Job::StripeRefund { .. } => "stripe.refund",
            Job::StripeReconcile {} => "stripe.reconcile",
        }
    }

    /// Attempts before the job is dead, when fewer than the pipeline's: a person is watching
    /// a document being prepared, so after three tries it says it failed (with a button to
    /// try again) instead of retrying for many minutes.
    pub fn max_attempts(&self, pipeline: u32) -> u32 {
        match self {
            Job::DocumentRender { .. } => pipeline.min(3),
            // A sweep outlasts a store that is down for a while (backoff is capped at ten
            // minutes, so twenty attempts span hours).
            Job::BlobSweep { .. } => pipeline.max(20),
            _ => pipeline,
        }
    }

    /// Splits into the outbox columns.
    pub fn to_parts(&self) -> Result<(&'static str, serde_json::Value), serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        let payload = v
            .get_mut("payload")
            .map(serde_json::Value::take)
            .unwrap_or(serde_json::Value::Null);
        Ok((self.kind(), payload))
    }

    /// Rebuilds a job from the outbox columns.
    pub fn from_parts(kind: &str, payload: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload }))
    }
}

/// What travels through Redis: the job and where it belongs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobEnvelope {
    pub id: JobId,
    pub tenant_id: TenantId,
    pub version: i32,
    pub kind: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("job payload could not be encoded")]
    Encode(#[from] serde_json::Error),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// Queues `job` for the transaction's clinic; it leaves only if the transaction commits.
pub async fn enqueue(tx: &mut TenantTx, job: &Job) -> Result<JobId, EnqueueError> {
    let id = JobId::new();
    insert(tx, &[id], &[(job.clone(), None)]).await?;
    Ok(id)
}

/// Queues several jobs in one statement: one round trip and one relay wake-up however many
/// there are, which is what a booking with its confirmation and reminders needs. A job with a
/// `not_before` runs no earlier than then (by the pipeline's clock); until then it waits in
/// the outbox, in PostgreSQL.
pub async fn enqueue_many(
    tx: &mut TenantTx,
    jobs: &[(Job, Option<chrono::DateTime<chrono::Utc>>)],
) -> Result<Vec<JobId>, EnqueueError> {
    let ids: Vec<JobId> = jobs.iter().map(|_| JobId::new()).collect();
    if !jobs.is_empty() {
        insert(tx, &ids, jobs).await?;
    }
    Ok(ids)
}

async fn insert(
    tx: &mut TenantTx,
    ids: &[JobId],
    jobs: &[(Job, Option<chrono::DateTime<chrono::Utc>>)],
) -> Result<(), EnqueueError> {
    let mut kinds = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    let mut due = Vec::with_capacity(jobs.len());
    for (job, not_before) in jobs {
        let (kind, payload) = job.to_parts()?;
        kinds.push(kind.to_owned());
        payloads.push(payload);
        due.push(*not_before);
    }
    let uuids: Vec<uuid::Uuid> = ids.iter().map(JobId::as_uuid).collect();
    sqlx::query!(
        "INSERT INTO control.outbox (id, kind, version, tenant_id, payload, not_before)
         SELECT id, kind, $3, $4, payload, not_before
         FROM unnest($1::uuid[], $2::text[], $5::jsonb[], $6::timestamptz[])
              AS j(id, kind, payload, not_before)",
        &uuids,
        &kinds,
        JOB_VERSION,
        tx.tenant_id().as_uuid(),
        &payloads,
        &due as &[Option<chrono::DateTime<chrono::Utc>>]
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_outbox_columns() {
        let job = Job::SendInvitation {
            user_id: UserId::new(),
        };
        let (kind, payload) = job.to_parts().unwrap();
        assert_eq!(kind, "email.invitation");
        assert!(payload.get("user_id").is_some());
        assert_eq!(Job::from_parts(kind, payload).unwrap(), job);
        assert!(Job::from_parts("email.unknown", serde_json::json!({})).is_err());
    }
}
