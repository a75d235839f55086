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
    /// The PaymentIntent Stripe made for it, once an answer named one: it is read back
    /// rather than asked for again.
    pub intent: Option<String>,
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
                  EXISTS (SELECT 1 FROM payments p
                          WHERE p.statement_id = s.id AND p.status = 'pending'
                            AND (p.payer = 'autopay' OR p.created_at > $1::timestamptz - interval '1 day'))
                    AS "in_flight!"
           FROM payment_plans pl JOIN statements s ON s.id = pl.statement_id
           WHERE pl.status = 'active' AND pl.autopay_payment_method IS NOT NULL
             AND s.status = 'issued'
           ORDER BY pl.id
           FOR UPDATE OF pl"#,
        now,
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
    // Every charge still waiting that no other worker has in hand (a lease), locked so two
    // runs never take the same one.
    let waiting = sqlx::query!(
        r#"SELECT p.id, p.amount_minor, p.currency, p.stripe_payment_intent, a.customer,
                  a.payment_method, a.sent_at, s.number, s.status AS statement_status,
                  pl.status AS plan_status, pl.autopay_payment_method,
                  coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                            WHERE e.statement_id = s.id), 0)::bigint AS "due!"
           FROM autopay_attempts a
           JOIN payments p ON p.id = a.payment_id
           JOIN statements s ON s.id = p.statement_id
           JOIN payment_plans pl ON pl.id = a.plan_id
           WHERE p.status = 'pending' AND (a.sending_until IS NULL OR a.sending_until < $1)
           ORDER BY a.created_at
           FOR UPDATE OF a SKIP LOCKED"#,
        now,
    )
    .fetch_all(tx.conn())
    .await?;
    let mut charges = Vec::new();
    for w in waiting {
        let payment = PaymentId::from_uuid(w.id);
        let fits = w.plan_status == "active"
            && w.autopay_payment_method.as_deref() == Some(w.payment_method.as_str())
            && w.statement_status == "issued"
            && w.amount_minor <= w.due;
        match w.sent_at {
            // Never sent, and no longer right (the plan ended, autopay was turned off or the
            // card changed, the statement was voided or paid meanwhile): dropped, not sent.
            None if !fits => {
                sqlx::query!(
                    "UPDATE payments SET status = 'canceled',
                            failure = 'No longer due when it was to be charged.'
                     WHERE id = $1 AND status = 'pending'",
                    w.id
                )
                .execute(tx.conn())
                .await?;
                continue;
            }
            // Sent a day ago and never answered with an intent: Stripe may have forgotten the
            // key, so asking again could charge twice. Left to reconciliation, which finds the
            // charge by our payment id in its metadata if Stripe made one.
            Some(sent)
                if w.stripe_payment_intent.is_none()
                    && now - sent > chrono::Duration::hours(23) =>
            {
                tracing::warn!(payment = %payment, "autopay charge unanswered for a day; left to reconciliation");
                continue;
            }
            _ => {}
        }
        sqlx::query!(
            "UPDATE autopay_attempts SET sent_at = coalesce(sent_at, $2),
                    sending_until = $2 + interval '2 minutes'
             WHERE payment_id = $1",
            w.id,
            now,
        )
        .execute(tx.conn())
        .await?;
        charges.push(Charge {
            payment,
            account: account.clone(),
            customer: w.customer,
            payment_method: w.payment_method,
            amount: Money::new(
                w.amount_minor,
                Currency::parse(&w.currency).unwrap_or(Currency::USD),
            ),
            statement_number: w.number,
            intent: w.stripe_payment_intent,
        });
    }
    Ok(charges)
}

/// Hands a charge back after Stripe could not be reached, so the job's next try (not only
/// once the lease runs out) sends it again.
pub async fn release(tx: &mut TenantTx, payment: PaymentId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE autopay_attempts SET sending_until = NULL WHERE payment_id = $1",
        payment.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// How Stripe answered an automatic charge.
pub enum Outcome<'a> {
    /// The PaymentIntent as Stripe made it.
    Intent(&'a PaymentState),
    /// The card was declined or Stripe refused the charge, in words for the patient.
    Failed(String),
}

/// Applies Stripe's answer: a succeeded charge settles the payment (once, with its ledger
/// entry and the email that says it arrived); anything else marks it failed and queues the
/// patient's notice, once.
pub async fn finish(
    tx: &mut TenantTx,
    payment: PaymentId,
    outcome: Outcome<'_>,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let ctx = AuditContext::default();
    if let Outcome::Intent(intent) = &outcome {
        // Noted at once, so a later run reads this intent back instead of asking again.
        sqlx::query!(
            "UPDATE payments SET stripe_payment_intent = coalesce(stripe_payment_intent, $2)
             WHERE id = $1",
            payment.as_uuid(),
            intent.id,
        )
        .execute(tx.conn())
        .await?;
    }
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
        "UPDATE payments p SET status = 'failed', failure = $2
         FROM billing_accounts a
         WHERE p.id = $1 AND p.status = 'pending' AND a.id = p.account_id
         RETURNING a.patient_id",
        payment.as_uuid(),
        failure,
    )
    .fetch_optional(tx.conn())
    .await?;
    if let Some(patient) = failed {
        audit::record(
            tx,
            &ctx,
            now,
            AuditEvent::new(Action::AutopayDeclined, "payments")
                .resource(payment)
                .patient(PatientId::from_uuid(patient)),
        )
        .await?;
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
