//! Reconciliation: Stripe's side of every card payment kept beside ours (`stripe_payments`,
//! refreshed by the reconciliation job and by every webhook's worker), and the list of
//! anything that does not match, each with what to do about it. The list is one query over
//! local tables, so it loads as fast with 100,000 payments as with ten.

use chrono::{DateTime, TimeZone, Utc};
use portal_stripe::PaymentState;
use portal_tenants::TenantTx;

use super::{Currency, Money};
use crate::audit::{self, Action, AuditContext};
use crate::identity::scope::BillingScope;
use crate::ids::{PatientId, PaymentId};

/// A PaymentIntent's final states: it never leaves them.
fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "canceled")
}

/// Keeps Stripe's view of these PaymentIntents, and notes each succeeded one's charge on our
/// payment (the charge that took the money: an earlier copy may name a failed attempt's).
/// Copies carried by events may be older than what is kept: a final state is never replaced
/// by one that is not, and of one intent seen twice in `intents` the later (or final) copy
/// counts.
pub async fn mirror(
    tx: &mut TenantTx,
    intents: &[PaymentState],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut latest: Vec<&PaymentState> = Vec::with_capacity(intents.len());
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for i in intents {
        match at.get(i.id.as_str()) {
            Some(&k) if is_final(&latest[k].status) && !is_final(&i.status) => {}
            Some(&k) => latest[k] = i,
            None => {
                at.insert(&i.id, latest.len());
                latest.push(i);
            }
        }
    }
    let intents = latest;
    if intents.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = intents.iter().map(|i| i.id.clone()).collect();
    let statuses: Vec<String> = intents.iter().map(|i| i.status.clone()).collect();
    let amounts: Vec<i64> = intents.iter().map(|i| i.amount).collect();
    let received: Vec<i64> = intents.iter().map(|i| i.amount_received).collect();
    let currencies: Vec<String> = intents.iter().map(|i| i.currency.clone()).collect();
    let ours: Vec<Option<uuid::Uuid>> = intents
        .iter()
        .map(|i| {
            i.metadata
                .get("payment")
                .and_then(|p| PaymentId::parse(p))
                .map(|p| p.as_uuid())
        })
        .collect();
    let created: Vec<DateTime<Utc>> = intents
        .iter()
        .map(|i| Utc.timestamp_opt(i.created, 0).single().unwrap_or(now))
        .collect();
    let charges: Vec<Option<String>> = intents.iter().map(|i| i.latest_charge.clone()).collect();
    sqlx::query!(
        "WITH i AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[],
                                  $6::uuid[], $7::timestamptz[], $8::text[])
                 AS i(id, status, amount, received, currency, ours, created, charge)
         ), mirrored AS (
             INSERT INTO stripe_payments (id, status, amount_minor, received_minor, currency,
                                          payment_id, created, seen_at)
             SELECT i.id, i.status, i.amount, i.received, i.currency, p.id, i.created, $9
             FROM i LEFT JOIN payments p ON p.id = i.ours
             ON CONFLICT (id) DO UPDATE
             SET status = EXCLUDED.status, amount_minor = EXCLUDED.amount_minor,
                 received_minor = EXCLUDED.received_minor,
                 payment_id = coalesce(EXCLUDED.payment_id, stripe_payments.payment_id),
                 seen_at = EXCLUDED.seen_at
             WHERE stripe_payments.status NOT IN ('succeeded', 'canceled')
                OR EXCLUDED.status IN ('succeeded', 'canceled')
         )
         UPDATE payments p SET stripe_charge = i.charge
         FROM i WHERE p.id = i.ours AND i.charge IS NOT NULL AND p.stripe_charge IS NULL
                  AND i.status = 'succeeded'",
        &ids,
        &statuses,
        &amounts,
        &received,
        &currencies,
        &ours as &[Option<uuid::Uuid>],
        &created,
        &charges as &[Option<String>],
        now,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Notes that the clinic's payments were just compared with Stripe's whole list (a payment
/// Stripe has never heard of is listed only after such a check).
pub async fn mark_checked(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE payment_settings SET reconciled_at = $1", now)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Stripe took money that names no payment of ours.
    StripeOnly,
    /// Our payment says paid; Stripe says otherwise (or has not got it).
    NotPaidAtStripe,
    /// Both say paid, but not the same amount.
    AmountDiffers,
    /// Money taken for a statement voided since: a credit to refund or move.
    PaidOnVoid,
    /// Stripe took another currency than the statement's.
    CurrencyDiffers,
    /// A refund still waiting for Stripe after an hour.
    RefundStuck,
    /// A payout whose transactions do not add up to it.
    PayoutOff,
    /// A statement paid beyond what it asked (two payers at once, say).
    Overpaid,
    /// A cardholder disputes a payment and the clinic has not answered yet.
    DisputeOpen,
    /// A dispute of a payment this clinic has no record of (yet).
    DisputeUnmatched,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::StripeOnly => "Stripe payment with no statement",
            Kind::NotPaidAtStripe => "Paid here, not at Stripe",
            Kind::AmountDiffers => "Amounts differ",
            Kind::PaidOnVoid => "Paid on a voided statement",
            Kind::CurrencyDiffers => "Paid in another currency",
            Kind::RefundStuck => "Refund not confirmed",
            Kind::PayoutOff => "Payout does not add up",
            Kind::Overpaid => "Paid more than was due",
            Kind::DisputeOpen => "Disputed by the cardholder",
            Kind::DisputeUnmatched => "Dispute of an unknown payment",
        }
    }

    /// What fixes it.
    pub fn action(self) -> &'static str {
        match self {
            Kind::StripeOnly => {
                "Find it in the clinic's Stripe dashboard: record it on the patient's statement, or refund it there."
            }
            Kind::NotPaidAtStripe => {
                "Check the payment in Stripe. If it failed, void the statement's payment by voiding and re-issuing the statement."
            }
            Kind::AmountDiffers => {
                "Compare with Stripe; refund the difference or issue a statement for it."
            }
            Kind::PaidOnVoid => "Refund the payment, or issue a new statement it pays toward.",
            Kind::CurrencyDiffers => "Refund it in Stripe and ask the patient to pay again.",
            Kind::RefundStuck => {
                "Open the payment in Stripe to see why the refund has not gone through."
            }
            Kind::PayoutOff => {
                "Open the payout in Stripe: a fee, dispute or adjustment is missing here."
            }
            Kind::Overpaid => "Refund the difference from one of the statement's card payments.",
            Kind::DisputeOpen => {
                "Answer it with evidence in the clinic's Stripe dashboard before it is due, or accept it under Disputes (the patient then owes it again)."
            }
            Kind::DisputeUnmatched => {
                "Check with Stripe now: once the payment is found here the dispute joins it. If Stripe has no statement for it either, find it in the clinic's Stripe dashboard."
            }
        }
    }
}

/// One difference.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: Kind,
    /// Stripe's id (pi_, po_, re_) or ours.
    pub reference: String,
    pub amount: Money,
    /// What Stripe says, when it differs.
    pub other: Option<Money>,
    pub patient: Option<PatientId>,
    pub patient_name: Option<String>,
    pub statement: Option<uuid::Uuid>,
    pub statement_number: Option<i64>,
    /// Our payment, where it has one (for a refund's page).
    pub payment: Option<PaymentId>,
}

/// Everything that does not match, newest first (at most 500), and when Stripe was last
/// checked.
pub async fn items(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<(Vec<Item>, Option<DateTime<Utc>>), sqlx::Error> {
    let rows = sqlx::query!(
        r#"WITH checked AS (SELECT reconciled_at FROM payment_settings),
           -- The card payments that differ from Stripe, found first over the two tables
           -- alone (the rest is joined to the few found, not to every payment).
           differs AS MATERIALIZED (
             SELECT p.id, p.account_id, p.statement_id, p.stripe_payment_intent,
                    p.amount_minor, p.currency, p.succeeded_at, sp.id AS sp_id,
                    sp.status AS sp_status, sp.received_minor
             FROM payments p
             LEFT JOIN stripe_payments sp ON sp.id = p.stripe_payment_intent
             CROSS JOIN checked
             WHERE p.method = 'card' AND p.status = 'succeeded'
               AND ((sp.id IS NULL AND checked.reconciled_at > p.succeeded_at)
                    OR sp.status <> 'succeeded' OR sp.received_minor <> p.amount_minor)),
           -- What is due on each statement, from the ledger in one pass.
           dues AS (
             SELECT statement_id, sum(amount_minor)::bigint AS due FROM ledger_entries
             WHERE statement_id IS NOT NULL GROUP BY statement_id)
           SELECT kind AS "kind!", reference AS "reference!", amount AS "amount!",
                  currency AS "currency!", other, patient_id, patient_name, statement_id,
                  statement_number, payment_id, at AS "at!"
           FROM (
             SELECT 'stripe_only' AS kind, sp.id AS reference, sp.received_minor AS amount,
                    sp.currency::text AS currency, NULL::bigint AS other, NULL::uuid AS patient_id,
                    NULL::text AS patient_name, NULL::uuid AS statement_id,
                    NULL::bigint AS statement_number, NULL::uuid AS payment_id, sp.created AS at
             FROM stripe_payments sp
             WHERE sp.status = 'succeeded' AND sp.payment_id IS NULL
           UNION ALL
             SELECT CASE WHEN m.sp_id IS NULL OR m.sp_status <> 'succeeded'
                         THEN 'not_paid_at_stripe' ELSE 'amount_differs' END,
                    m.stripe_payment_intent, m.amount_minor, m.currency::text, m.received_minor,
                    a.patient_id, pt.given_name || ' ' || pt.family_name, s.id, s.number, m.id,
                    m.succeeded_at
             FROM differs m
             JOIN billing_accounts a ON a.id = m.account_id
             JOIN patients pt ON pt.id = a.patient_id
             LEFT JOIN statements s ON s.id = m.statement_id
           UNION ALL
             SELECT 'paid_on_void', coalesce(p.stripe_payment_intent, p.id::text),
                    p.amount_minor - p.refunded_minor - p.disputed_minor, p.currency::text,
                    NULL, a.patient_id,
                    pt.given_name || ' ' || pt.family_name, s.id, s.number, p.id, p.succeeded_at
             FROM payments p
             JOIN statements s ON s.id = p.statement_id AND s.status = 'void'
             JOIN billing_accounts a ON a.id = p.account_id
             JOIN patients pt ON pt.id = a.patient_id
             WHERE p.status = 'succeeded'
               AND p.amount_minor > p.refunded_minor + p.disputed_minor
           UNION ALL
             SELECT 'currency_differs', coalesce(p.stripe_payment_intent, p.id::text),
                    p.amount_minor, p.currency::text, NULL, a.patient_id,
                    pt.given_name || ' ' || pt.family_name, s.id, s.number, p.id, p.created_at
             FROM payments p
             JOIN billing_accounts a ON a.id = p.account_id
             JOIN patients pt ON pt.id = a.patient_id
             LEFT JOIN statements s ON s.id = p.statement_id
             WHERE p.status = 'pending' AND p.failure LIKE 'Stripe took %'
           UNION ALL
             SELECT 'refund_stuck', coalesce(r.stripe_refund, r.id::text), r.amount_minor,
                    r.currency::text, NULL, a.patient_id, pt.given_name || ' ' || pt.family_name,
                    s.id, s.number, p.id, r.created_at
             FROM refunds r
             JOIN payments p ON p.id = r.payment_id
             JOIN billing_accounts a ON a.id = p.account_id
             JOIN patients pt ON pt.id = a.patient_id
             LEFT JOIN statements s ON s.id = p.statement_id
             WHERE r.status = 'pending' AND r.created_at < $1
           UNION ALL
             SELECT 'payout_off', po.id, po.amount_minor, po.currency::text, po.lines_net_minor,
                    NULL, NULL, NULL, NULL, NULL, po.recorded_at
             FROM payouts po WHERE po.lines_net_minor <> po.amount_minor
           UNION ALL
             SELECT 'overpaid', 'Statement ' || s.number, -d.due, s.currency::text, NULL,
                    s.patient_id, pt.given_name || ' ' || pt.family_name, s.id, s.number, NULL,
                    s.issued_at
             FROM dues d
             JOIN statements s ON s.id = d.statement_id
             JOIN patients pt ON pt.id = s.patient_id
             WHERE s.status = 'issued' AND d.due < 0
           UNION ALL
             SELECT 'dispute_open', dp.id, dp.amount_minor, dp.currency::text, NULL,
                    a.patient_id, pt.given_name || ' ' || pt.family_name, s.id, s.number, p.id,
                    dp.opened_at
             FROM disputes dp
             LEFT JOIN payments p ON p.id = dp.payment_id
             LEFT JOIN billing_accounts a ON a.id = p.account_id
             LEFT JOIN patients pt ON pt.id = a.patient_id
             LEFT JOIN statements s ON s.id = p.statement_id
             WHERE dp.status IN ('needs_response', 'warning_needs_response')
           UNION ALL
             SELECT 'dispute_unmatched', dp.id, dp.amount_minor, dp.currency::text, NULL, NULL,
                    NULL, NULL, NULL, NULL, dp.opened_at
             FROM disputes dp WHERE dp.payment_id IS NULL
           ) x
           ORDER BY at DESC
           LIMIT 500"#,
        now - chrono::Duration::hours(1),
    )
    .fetch_all(tx.conn())
    .await?;
    let checked = sqlx::query_scalar!("SELECT reconciled_at FROM payment_settings")
        .fetch_one(tx.conn())
        .await?;
    let items: Vec<Item> = rows
        .into_iter()
        .map(|r| {
            let currency = Currency::parse(&r.currency).unwrap_or(Currency::USD);
            Item {
                kind: match r.kind.as_str() {
                    "stripe_only" => Kind::StripeOnly,
                    "not_paid_at_stripe" => Kind::NotPaidAtStripe,
                    "amount_differs" => Kind::AmountDiffers,
                    "paid_on_void" => Kind::PaidOnVoid,
                    "currency_differs" => Kind::CurrencyDiffers,
                    "refund_stuck" => Kind::RefundStuck,
                    "overpaid" => Kind::Overpaid,
                    "dispute_open" => Kind::DisputeOpen,
                    "dispute_unmatched" => Kind::DisputeUnmatched,
                    _ => Kind::PayoutOff,
                },
                reference: r.reference,
                amount: Money::new(r.amount, currency),
                other: r.other.map(|o| Money::new(o, currency)),
                patient: r.patient_id.map(PatientId::from_uuid),
                patient_name: r.patient_name,
                statement: r.statement_id,
                statement_number: r.statement_number,
                payment: r.payment_id.map(PaymentId::from_uuid),
            }
        })
        .collect();
    audit::record_list(
        tx,
        ctx,
        now,
        Action::ReconciliationView,
        "payments",
        items.iter().filter_map(|i| i.patient),
    )
    .await?;
    Ok((items, checked))
}
