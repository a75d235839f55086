//! Refunds of card payments, by billing staff, through Stripe. A refund is recorded `pending`
//! before Stripe is asked (its key is the refund's own id, so asking again never refunds
//! twice), and enters the ledger once when Stripe says it succeeded. No more than what is left
//! of a payment — counting refunds still on their way — can be refunded.

use chrono::{DateTime, Utc};
use portal_stripe::RefundState;
use portal_tenants::TenantTx;

use super::{BillingError, Currency, Money};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::BillingScope;
use crate::ids::{PatientId, PaymentId, RefundId, StatementId};

/// A payment as the refund form shows it.
#[derive(Debug, Clone)]
pub struct Refundable {
    pub payment: PaymentId,
    pub statement: Option<StatementId>,
    pub statement_number: Option<i64>,
    pub patient_name: String,
    pub amount: Money,
    /// What can still be refunded (received, less refunds done or on their way).
    pub left: Money,
}

/// A card payment that can be refunded, or `None` (not ours, not a card, not succeeded).
pub async fn refundable(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    payment: PaymentId,
) -> Result<Option<Refundable>, sqlx::Error> {
    let r = sqlx::query!(
        r#"SELECT p.statement_id, s.number AS "number?", p.amount_minor, p.currency,
                  pt.given_name || ' ' || pt.family_name AS "name!",
                  p.amount_minor - p.disputed_minor
                    - coalesce((SELECT sum(r.amount_minor) FROM refunds r
                      WHERE r.payment_id = p.id AND r.status IN ('pending', 'succeeded')), 0)::bigint
                      AS "left!"
           FROM payments p
           JOIN billing_accounts a ON a.id = p.account_id
           JOIN patients pt ON pt.id = a.patient_id
           LEFT JOIN statements s ON s.id = p.statement_id
           WHERE p.id = $1 AND p.method = 'card' AND p.status = 'succeeded'
             AND p.stripe_payment_intent IS NOT NULL
             -- Money in dispute is the bank's to return, not ours (Stripe refuses too).
             AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.payment_id = p.id
                             AND d.status NOT IN ('won', 'warning_closed', 'prevented'))"#,
        payment.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(r.map(|r| {
        let currency = Currency::parse(&r.currency).unwrap_or(Currency::USD);
        Refundable {
            payment,
            statement: r.statement_id.map(StatementId::from_uuid),
            statement_number: r.number,
            patient_name: r.name,
            amount: Money::new(r.amount_minor, currency),
            left: Money::new(r.left, currency),
        }
    }))
}

/// `refundable`, for a page that shows it (audited: the patient's name and payment).
pub async fn view(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    payment: PaymentId,
    now: DateTime<Utc>,
) -> Result<Option<Refundable>, sqlx::Error> {
    let found = refundable(tx, scope, payment).await?;
    if found.is_some() {
        let patient = sqlx::query_scalar!(
            "SELECT a.patient_id FROM payments p JOIN billing_accounts a ON a.id = p.account_id
             WHERE p.id = $1",
            payment.as_uuid()
        )
        .fetch_one(tx.conn())
        .await?;
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::PaymentView, "payments")
                .resource(payment)
                .patient(PatientId::from_uuid(patient)),
        )
        .await?;
    }
    Ok(found)
}

/// A refund recorded and about to be sent to Stripe.
#[derive(Debug, Clone)]
pub struct RefundStart {
    pub refund: RefundId,
    pub payment_intent: String,
    pub amount: Money,
}

/// Records a pending refund of `amount_raw` on a card payment, under the id the confirmation
/// page chose (so a form sent twice makes one refund: `Ok(None)` the second time), and queues
/// a job that sends it to Stripe in two minutes if the request's own attempt has not settled
/// it by then — so a refund is never left half-done by a crash or a closed connection.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    id: RefundId,
    payment: PaymentId,
    amount_raw: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<RefundStart>, BillingError> {
    let row = sqlx::query!(
        "SELECT p.stripe_payment_intent, p.currency, a.patient_id FROM payments p
         JOIN billing_accounts a ON a.id = p.account_id
         WHERE p.id = $1 AND p.method = 'card' AND p.status = 'succeeded'
         FOR UPDATE OF p",
        payment.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    let intent = row.stripe_payment_intent.ok_or(BillingError::NotFound)?;
    let left = refundable(tx, scope, payment)
        .await?
        .ok_or(BillingError::NotFound)?
        .left;
    let amount = Money::parse(amount_raw, left.currency)
        .map_err(|e| BillingError::field("amount", e.to_string()))?;
    if amount.minor == 0 {
        return Err(BillingError::field(
            "amount",
            "Enter an amount more than zero.",
        ));
    }
    if amount.minor > left.minor {
        return Err(BillingError::field(
            "amount",
            format!("That is more than the {left} that can be refunded on this payment."),
        ));
    }
    let reason = reason.trim();
    if reason.chars().count() > 300 || reason.chars().any(char::is_control) {
        return Err(BillingError::field(
            "reason",
            "Keep the reason to one line of at most 300 characters.",
        ));
    }
    let made = sqlx::query!(
        "INSERT INTO refunds (id, payment_id, amount_minor, currency, status, reason, created_by,
                              created_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7)
         ON CONFLICT (id) DO NOTHING",
        id.as_uuid(),
        payment.as_uuid(),
        amount.minor,
        row.currency,
        (!reason.is_empty()).then_some(reason),
        scope.user_id().as_uuid(),
        now,
    )
    .execute(tx.conn())
    .await?;
    if made.rows_affected() == 0 {
        return Ok(None);
    }
    crate::jobs::enqueue_many(
        tx,
        &[(
            crate::jobs::Job::StripeRefund { refund_id: id },
            Some(now + chrono::Duration::minutes(2)),
        )],
    )
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::RefundStart, "refunds")
            .resource(id)
            .patient(PatientId::from_uuid(row.patient_id)),
    )
    .await?;
    Ok(Some(RefundStart {
        refund: id,
        payment_intent: intent,
        amount,
    }))
}

/// A pending refund's Stripe side, for sending it again (same key).
pub async fn pending(tx: &mut TenantTx, id: RefundId) -> Result<Option<RefundStart>, sqlx::Error> {
    let r = sqlx::query!(
        r#"SELECT p.stripe_payment_intent AS "intent!", r.amount_minor, r.currency
           FROM refunds r JOIN payments p ON p.id = r.payment_id
           WHERE r.id = $1 AND r.status = 'pending' AND p.stripe_payment_intent IS NOT NULL"#,
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(r.map(|r| RefundStart {
        refund: id,
        payment_intent: r.intent,
        amount: Money::new(
            r.amount_minor,
            Currency::parse(&r.currency).unwrap_or(Currency::USD),
        ),
    }))
}

/// Applies Stripe's answer about a refund, once: `succeeded` enters it in the ledger and on
/// the payment; `failed` or `canceled` closes it; anything else waits.
pub async fn finish(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    id: RefundId,
    state: &RefundState,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let row = sqlx::query!(
        "SELECT r.status, r.amount_minor, r.currency, r.payment_id, p.account_id,
                p.statement_id, a.patient_id
         FROM refunds r JOIN payments p ON p.id = r.payment_id
         JOIN billing_accounts a ON a.id = p.account_id
         WHERE r.id = $1 FOR UPDATE OF r, p",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    if row.status != "pending" {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE refunds SET stripe_refund = $2 WHERE id = $1",
        id.as_uuid(),
        state.id
    )
    .execute(tx.conn())
    .await?;
    match state.status.as_str() {
        "succeeded" => {
            sqlx::query!(
                "UPDATE refunds SET status = 'succeeded', succeeded_at = $2 WHERE id = $1",
                id.as_uuid(),
                now
            )
            .execute(tx.conn())
            .await?;
            sqlx::query!(
                "UPDATE payments SET refunded_minor = refunded_minor + $2 WHERE id = $1",
                row.payment_id,
                row.amount_minor
            )
            .execute(tx.conn())
            .await?;
            sqlx::query!(
                "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                             statement_id, payment_id, refund_id,
                                             balance_after_minor, created_at)
                 VALUES ($1, $2, 0, 'refund', $3, $4, $5, $6, $7, 0, $8)",
                uuid::Uuid::now_v7(),
                row.account_id,
                row.amount_minor,
                row.currency,
                row.statement_id,
                row.payment_id,
                id.as_uuid(),
                now,
            )
            .execute(tx.conn())
            .await?;
            audit::record(
                tx,
                &ctx.automatic(),
                now,
                AuditEvent::new(Action::RefundDone, "refunds")
                    .resource(id)
                    .patient(PatientId::from_uuid(row.patient_id)),
            )
            .await?;
        }
        "failed" | "canceled" => {
            fail(tx, id).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Closes a refund Stripe refused or failed.
pub async fn fail(tx: &mut TenantTx, id: RefundId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE refunds SET status = 'failed' WHERE id = $1 AND status = 'pending'",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Our refund for a Stripe refund: by its id, else by the id of ours its metadata names.
pub async fn find(tx: &mut TenantTx, state: &RefundState) -> Result<Option<RefundId>, sqlx::Error> {
    let ours = state
        .metadata
        .get("refund")
        .and_then(|r| RefundId::parse(r))
        .map(|r| r.as_uuid());
    Ok(sqlx::query_scalar!(
        "SELECT id FROM refunds WHERE stripe_refund = $1 OR id = $2 LIMIT 1",
        state.id,
        ours
    )
    .fetch_optional(tx.conn())
    .await?
    .map(RefundId::from_uuid))
}
