//! Disputes (chargebacks). The worker keeps each as Stripe last said, read from Stripe on every
//! `charge.dispute.*` event (so repeats and any order give the same result), matched to our
//! card payment by its PaymentIntent. A dispute lost — decided by the bank, or accepted by
//! billing staff — gives the money back to the cardholder, so the patient owes it again: one
//! `chargeback` ledger entry per dispute, never more than what is left of the payment.

use chrono::{DateTime, TimeZone, Utc};
use portal_stripe::DisputeState;
use portal_tenants::TenantTx;

use super::money::{Currency, Money};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::BillingScope;
use crate::ids::{PatientId, PaymentId, UserId};

/// Stripe's statuses in which the clinic can still answer (an inquiry, `warning_*`, is not
/// yet a chargeback: closing one moves no money).
const OPEN: [&str; 2] = ["needs_response", "warning_needs_response"];
/// The one status in which accepting gives the money back (a chargeback awaiting an answer).
const ACCEPTABLE: &str = "needs_response";
/// Decided: nothing changes them any more.
const CLOSED: [&str; 4] = ["won", "lost", "warning_closed", "prevented"];

fn at(secs: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, 0).single()
}

/// Brings the clinic's copy of a dispute up to date with Stripe's; a lost one enters the
/// ledger once. `accepted_by`: the billing staff member who accepted it, when one did.
pub async fn apply(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    d: &DisputeState,
    accepted_by: Option<UserId>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // Our card payment, locked so two events for it apply one after the other.
    let payment = match &d.payment_intent {
        Some(pi) => {
            sqlx::query!(
                r#"SELECT p.id, p.account_id, p.statement_id, p.currency, a.patient_id,
                          p.amount_minor - p.disputed_minor
                            - coalesce((SELECT sum(r.amount_minor) FROM refunds r
                                        WHERE r.payment_id = p.id
                                          AND r.status IN ('pending', 'succeeded')), 0)::bigint
                            AS "left!"
                   FROM payments p JOIN billing_accounts a ON a.id = p.account_id
                   WHERE p.stripe_payment_intent = $1 AND p.method = 'card'
                     AND p.status = 'succeeded'
                   FOR UPDATE OF p"#,
                pi
            )
            .fetch_optional(tx.conn())
            .await?
        }
        None => None,
    };
    let Some(amount) = Some(d.amount).filter(|a| *a > 0) else {
        return Ok(());
    };
    sqlx::query!(
        "INSERT INTO disputes (id, payment_id, payment_intent, amount_minor, currency, reason,
                               status, evidence_due_by, opened_at, updated_at, accepted_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE
         SET payment_id = coalesce(disputes.payment_id, EXCLUDED.payment_id),
             amount_minor = EXCLUDED.amount_minor, reason = EXCLUDED.reason,
             -- A decided dispute stays decided: an older read applied late cannot reopen it.
             status = CASE WHEN disputes.status = ANY($12) THEN disputes.status
                           ELSE EXCLUDED.status END,
             evidence_due_by = EXCLUDED.evidence_due_by,
             updated_at = EXCLUDED.updated_at,
             accepted_by = coalesce(disputes.accepted_by, EXCLUDED.accepted_by)",
        d.id,
        payment.as_ref().map(|p| p.id),
        d.payment_intent,
        amount,
        d.currency,
        d.reason,
        d.status,
        d.evidence_due_by.and_then(at),
        at(d.created).unwrap_or(now),
        now,
        accepted_by.map(|u| u.as_uuid()),
        &CLOSED.map(str::to_owned),
    )
    .execute(tx.conn())
    .await?;
    let Some(p) = payment else {
        return Ok(());
    };
    let patient = PatientId::from_uuid(p.patient_id);
    // Stripe's word is the clinic's system's; an acceptance is the person's.
    let who = if accepted_by.is_some() {
        ctx.clone()
    } else {
        ctx.automatic()
    };
    audit::record(
        tx,
        &who,
        now,
        AuditEvent::new(Action::DisputeRecord, "payments")
            .resource(PaymentId::from_uuid(p.id))
            .patient(patient),
    )
    .await?;
    if d.status != "lost" || !d.currency.eq_ignore_ascii_case(&p.currency) {
        return Ok(());
    }
    let entered = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM ledger_entries
                          WHERE kind = 'chargeback' AND dispute_id = $1) AS "entered!""#,
        d.id
    )
    .fetch_one(tx.conn())
    .await?;
    // Never more than is left of the payment after its refunds (pending ones too: Stripe
    // will not take back money it is already sending back) and earlier disputes.
    let take = amount.min(p.left);
    if entered || take <= 0 {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                     statement_id, payment_id, dispute_id, balance_after_minor,
                                     created_by, created_at)
         VALUES ($1, $2, 0, 'chargeback', $3, $4, $5, $6, $7, 0, $8, $9)",
        uuid::Uuid::now_v7(),
        p.account_id,
        take,
        p.currency,
        p.statement_id,
        p.id,
        d.id,
        accepted_by.map(|u| u.as_uuid()),
        now,
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE payments SET disputed_minor = disputed_minor + $2 WHERE id = $1",
        p.id,
        take
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A dispute as the billing console lists it.
#[derive(Debug, Clone)]
pub struct Dispute {
    pub id: String,
    pub amount: Money,
    pub reason: String,
    pub status: String,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    pub patient: Option<PatientId>,
    pub patient_name: Option<String>,
    pub statement: Option<uuid::Uuid>,
    pub statement_number: Option<i64>,
    pub accepted: bool,
}

impl Dispute {
    /// The clinic can still answer it.
    pub fn open(&self) -> bool {
        OPEN.contains(&self.status.as_str())
    }

    /// Accepting it here gives the money back (an inquiry is answered in Stripe instead).
    pub fn acceptable(&self) -> bool {
        self.status == ACCEPTABLE
    }

    pub fn status_label(&self) -> &'static str {
        match self.status.as_str() {
            "needs_response" | "warning_needs_response" => "Needs an answer",
            "under_review" | "warning_under_review" => "With the bank",
            "won" => "Won: the money stays",
            "lost" => "Lost: the money went back",
            "warning_closed" => "Closed without a dispute",
            "prevented" => "Prevented",
            _ => "Unknown",
        }
    }

    pub fn reason_label(&self) -> String {
        match self.reason.as_str() {
            "fraudulent" => "The cardholder says they did not pay".to_owned(),
            "duplicate" => "Charged twice".to_owned(),
            "product_not_received" => "Service not received".to_owned(),
            "product_unacceptable" => "Service not as described".to_owned(),
            "subscription_canceled" => "Cancelled".to_owned(),
            "unrecognized" => "Not recognised on the card statement".to_owned(),
            "credit_not_processed" => "A promised refund was not made".to_owned(),
            other => other.replace('_', " "),
        }
    }
}

/// Every dispute of the clinic, newest first (at most 500), audited per patient.
pub async fn list(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Dispute>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT dp.id, dp.amount_minor, dp.currency, dp.reason, dp.status,
                  dp.evidence_due_by, dp.opened_at, dp.accepted_by IS NOT NULL AS "accepted!",
                  a.patient_id AS "patient_id?",
                  pt.given_name || ' ' || pt.family_name AS "patient_name?",
                  s.id AS "statement_id?", s.number AS "statement_number?"
           FROM disputes dp
           LEFT JOIN payments p ON p.id = dp.payment_id
           LEFT JOIN billing_accounts a ON a.id = p.account_id
           LEFT JOIN patients pt ON pt.id = a.patient_id
           LEFT JOIN statements s ON s.id = p.statement_id
           ORDER BY dp.opened_at DESC, dp.id
           LIMIT 500"#
    )
    .fetch_all(tx.conn())
    .await?;
    let list: Vec<Dispute> = rows
        .into_iter()
        .map(|r| Dispute {
            id: r.id,
            amount: Money::new(
                r.amount_minor,
                Currency::parse(&r.currency).unwrap_or(Currency::USD),
            ),
            reason: r.reason,
            status: r.status,
            evidence_due_by: r.evidence_due_by,
            opened_at: r.opened_at,
            patient: r.patient_id.map(PatientId::from_uuid),
            patient_name: r.patient_name,
            statement: r.statement_id,
            statement_number: r.statement_number,
            accepted: r.accepted,
        })
        .collect();
    audit::record_list(
        tx,
        ctx,
        now,
        Action::DisputeList,
        "payments",
        list.iter().filter_map(|d| d.patient),
    )
    .await?;
    Ok(list)
}

/// A dispute the clinic can still accept: `None` when there is no such dispute or it is no
/// longer open.
pub async fn acceptable(tx: &mut TenantTx, id: &str) -> Result<Option<Money>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT amount_minor, currency FROM disputes WHERE id = $1 AND status = $2",
        id,
        ACCEPTABLE
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| {
        Money::new(
            r.amount_minor,
            Currency::parse(&r.currency).unwrap_or(Currency::USD),
        )
    }))
}

/// Audits billing staff accepting a dispute (its patient, when matched).
pub async fn record_accept(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let patient = sqlx::query_scalar!(
        "SELECT a.patient_id FROM disputes dp
         JOIN payments p ON p.id = dp.payment_id
         JOIN billing_accounts a ON a.id = p.account_id
         WHERE dp.id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    let mut event = AuditEvent::new(Action::DisputeAccept, "disputes").resource(id);
    if let Some(p) = patient {
        event = event.patient(PatientId::from_uuid(p));
    }
    audit::record(tx, ctx, now, event).await
}

/// Links the disputes Stripe told us of before we knew their payment (a webhook missed until
/// reconciliation settled it) to the payment just settled, and applies the decided ones, so a
/// dispute lost meanwhile still enters the ledger.
pub(crate) async fn relink(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    intent: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let waiting = sqlx::query!(
        "SELECT id, amount_minor, currency, reason, status, evidence_due_by, opened_at
         FROM disputes WHERE payment_intent = $1 AND payment_id IS NULL",
        intent
    )
    .fetch_all(tx.conn())
    .await?;
    for d in waiting {
        let state = DisputeState {
            id: d.id,
            amount: d.amount_minor,
            currency: d.currency,
            status: d.status,
            reason: d.reason,
            payment_intent: Some(intent.to_owned()),
            evidence_due_by: d.evidence_due_by.map(|t| t.timestamp()),
            created: d.opened_at.timestamp(),
        };
        apply(tx, ctx, &state, None, now).await?;
    }
    Ok(())
}
