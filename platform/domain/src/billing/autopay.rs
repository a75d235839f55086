//! Autopay: on each instalment's due date (the clinic's date) a worker charges the card the
//! patient saved for the plan, off-session, on the clinic's Stripe account.
//!
//! A charge is written down first, as a pending card payment and an attempt (one per
//! instalment and card), and committed before Stripe is asked; the Stripe call's idempotency
//! key is that payment's id. So two workers, or one run twice, charge an instalment once; a
//! worker killed while Stripe worked sends the same request again on its next run and gets
//! back the charge Stripe already made. A declined card marks the payment failed, tells the
//! patient (by email, with no amount), and is not tried again for that instalment until the
//! patient saves another card.

use chrono::{DateTime, NaiveDate, Utc};
use portal_stripe::PaymentState;
use portal_tenants::TenantTx;

use super::card::{self, MIN_CARD_MINOR};
use super::{BillingError, Currency, Money};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::ids::{PatientId, PaymentId, StatementId};
use crate::jobs::{self, Job};

/// One automatic charge to send to Stripe.
#[derive(Debug, Clone)]
pub struct Charge {
    pub payment: PaymentId,
    /// The clinic's connected account.
    pub account: String,
    pub customer: String,
    pub payment_method: String,
    pub amount: Money,
    pub statement_number: i64,
}

impl Charge {
    /// The Stripe idempotency key: the same for every try of this charge.
    pub fn idempotency_key(&self) -> String {
        format!("payment-{}-autopay", self.payment)
    }
}

/// Writes down today's automatic charges (one per plan whose instalments due by `today` are
/// not paid, unless its card was already tried for that instalment) and returns every charge
/// still waiting for Stripe's answer, the new ones and any an earlier run left.
pub async fn due_charges(
    tx: &mut TenantTx,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Charge>, BillingError> {
    let Some(account) = super::setup::charging_account(tx).await? else {
        return Ok(Vec::new());
    };
    let plans = sqlx::query!(
        r#"SELECT pl.id, pl.statement_id, s.account_id, s.patient_id, s.currency,
                  pl.autopay_customer AS "customer!", pl.autopay_payment_method AS "card!",
                  coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                            WHERE e.statement_id = s.id), 0)::bigint AS "due!",
                  EXISTS (SELECT 1 FROM autopay_attempts a JOIN payments p ON p.id = a.payment_id
                          WHERE a.plan_id = pl.id AND p.status = 'pending') AS "in_flight!"
           FROM payment_plans pl JOIN statements s ON s.id = pl.statement_id
           WHERE pl.status = 'active' AND pl.autopay_payment_method IS NOT NULL
             AND s.status = 'issued'
           ORDER BY pl.id
           FOR UPDATE OF pl"#
    )
    .fetch_all(tx.conn())
    .await?;
    for p in plans {
        if p.in_flight || p.due <= 0 {
            continue;
        }
        let statement = StatementId::from_uuid(p.statement_id);
        let Some(plan) = super::plans::active(tx, statement, p.due).await? else {
            continue;
        };
        let Some((seq, owed)) = plan.owed_by(today) else {
            continue;
        };
        // Stripe takes no card charge under its minimum; what little is left waits for the
        // patient (the statement page shows it due).
        let amount = owed.min(p.due);
        if amount < MIN_CARD_MINOR {
            continue;
        }
        let tried = sqlx::query_scalar!(
            "SELECT EXISTS (SELECT 1 FROM autopay_attempts
                            WHERE plan_id = $1 AND seq = $2 AND payment_method = $3) AS \"x!\"",
            p.id,
            seq,
            p.card,
        )
        .fetch_one(tx.conn())
        .await?;
        if tried {
            continue;
        }
        let payment = PaymentId::new();
        sqlx::query!(
            "INSERT INTO payments (id, account_id, statement_id, method, status, amount_minor,
                                   currency, payer, created_at)
             VALUES ($1, $2, $3, 'card', 'pending', $4, $5, 'autopay', $6)",
            payment.as_uuid(),
            p.account_id,
            p.statement_id,
            amount,
            p.currency,
            now,
        )
        .execute(tx.conn())
        .await?;
        sqlx::query!(
            "INSERT INTO autopay_attempts (plan_id, seq, customer, payment_method, payment_id,
                                           created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            p.id,
            seq,
            p.customer,
            p.card,
            payment.as_uuid(),
            now,
        )
        .execute(tx.conn())
        .await?;
        audit::record(
            tx,
            &AuditContext::default(),
            now,
            AuditEvent::new(Action::AutopayCharge, "payments")
                .resource(payment)
                .patient(PatientId::from_uuid(p.patient_id)),
        )
        .await?;
    }
    let waiting = sqlx::query!(
        "SELECT p.id, p.amount_minor, p.currency, a.customer, a.payment_method, s.number
         FROM autopay_attempts a
         JOIN payments p ON p.id = a.payment_id
         JOIN statements s ON s.id = p.statement_id
         WHERE p.status = 'pending'
         ORDER BY a.created_at"
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(waiting
        .into_iter()
        .map(|w| Charge {
            payment: PaymentId::from_uuid(w.id),
            account: account.clone(),
            customer: w.customer,
            payment_method: w.payment_method,
            amount: Money::new(
                w.amount_minor,
                Currency::parse(&w.currency).unwrap_or(Currency::USD),
            ),
            statement_number: w.number,
        })
        .collect())
}

/// How Stripe answered an automatic charge.
pub enum Outcome<'a> {
    /// The PaymentIntent as Stripe made it.
    Intent(&'a PaymentState),
    /// The card was declined or Stripe refused the charge, in words for the patient.
    Failed(String),
}

/// Applies Stripe's answer: a succeeded charge settles the payment (once, with its ledger
/// entry and receipt); anything else marks it failed and queues the patient's notice, once.
pub async fn finish(
    tx: &mut TenantTx,
    payment: PaymentId,
    outcome: Outcome<'_>,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let ctx = AuditContext::default();
    let failure = match outcome {
        Outcome::Intent(intent) if intent.status == "succeeded" => {
            card::apply_payment_intent(tx, &ctx, intent, now).await?;
            return Ok(());
        }
        Outcome::Intent(intent) if intent.status == "processing" => return Ok(()),
        Outcome::Intent(_) => {
            "Your bank asked to confirm this payment, which cannot be done automatically."
                .to_owned()
        }
        Outcome::Failed(words) => words,
    };
    let failed = sqlx::query_scalar!(
        "UPDATE payments SET status = 'failed', failure = $2
         WHERE id = $1 AND status = 'pending' RETURNING id",
        payment.as_uuid(),
        failure,
    )
    .fetch_optional(tx.conn())
    .await?;
    if failed.is_some() {
        jobs::enqueue(
            tx,
            &Job::AutopayFailed {
                payment_id: payment,
            },
        )
        .await?;
    }
    Ok(())
}

/// Where the failure notice goes (the patient's email, if they take email), audited; `None`
/// when the payment did not fail or the patient takes no email.
pub async fn notice_target(
    tx: &mut TenantTx,
    payment: PaymentId,
    now: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT a.patient_id, pt.email, pt.reminder_email
         FROM payments p
         JOIN billing_accounts a ON a.id = p.account_id
         JOIN patients pt ON pt.id = a.patient_id
         WHERE p.id = $1 AND p.status = 'failed' AND p.payer = 'autopay'",
        payment.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    audit::record(
        tx,
        &AuditContext::default(),
        now,
        AuditEvent::new(Action::AutopayNotice, "payments")
            .resource(payment)
            .patient(PatientId::from_uuid(r.patient_id)),
    )
    .await?;
    Ok(r.email.filter(|_| r.reminder_email))
}
