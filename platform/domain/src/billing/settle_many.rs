//! Settling a burst of card payments at once: the common case of the clinic's Stripe drain — a
//! `payment_intent.succeeded` for a pending payment of ours, in the statement's currency — done
//! for a whole batch in a fixed handful of statements instead of about ten round trips a
//! payment. It writes exactly what settling one payment writes (`card::apply_payment_intent`):
//! the payment marked succeeded, one ledger entry, the audit rows, and the job that tells the
//! patients (one for the batch).
//! Anything less common (another clinic's object, a payment that keeps a card for a plan, a
//! currency that differs, an intent matching no payment or the same payment as another intent
//! of the batch) is left to the one-at-a-time path, which the caller runs for what is returned
//! as not taken.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use portal_stripe::PaymentState;
use portal_tenants::TenantTx;

use super::BillingError;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::ids::{PatientId, PaymentId};

/// Settles every intent of `intents` it can (see the module's doc); `taken[i]` says whether
/// `intents[i]` was dealt with here (settled now, or found already settled).
pub async fn succeeded(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    intents: &[&PaymentState],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, BillingError> {
    let mut taken = vec![false; intents.len()];
    let clinic = tx.tenant_id().to_string();
    // The intents this path may take, by their index.
    let mut ids = Vec::new();
    let mut metas = Vec::new();
    let mut which = Vec::new();
    for (i, intent) in intents.iter().enumerate() {
        let ours = intent.metadata.get("clinic").is_none_or(|c| *c == clinic);
        if intent.status == "succeeded" && intent.amount_received > 0 && ours {
            ids.push(intent.id.clone());
            metas.push(
                intent
                    .metadata
                    .get("payment")
                    .and_then(|p| PaymentId::parse(p))
                    .map(|p| p.as_uuid()),
            );
            which.push(i as i64);
        }
    }
    if which.is_empty() {
        return Ok(taken);
    }
    // Each intent's payment (as `card::find` matches it), the payments locked in id order.
    // Their accounts are locked next by the ledger's trigger in Stripe's order, as one at a
    // time would; the drain's lanes keep accounts apart, and a deadlock with what else touches
    // an account (lane 0's refunds and disputes) rolls the batch back, which is then applied
    // one event at a time.
    let rows = sqlx::query!(
        r#"SELECT i.k AS "k!", p.id, p.status, p.account_id, p.statement_id, p.currency,
                  p.saves_card_for IS NOT NULL AS "saves_card!", a.patient_id
           FROM unnest($1::text[], $2::uuid[], $3::int8[]) AS i(intent, meta, k)
           JOIN payments p ON p.method = 'card'
                          AND (p.stripe_payment_intent = i.intent OR p.id = i.meta)
           JOIN billing_accounts a ON a.id = p.account_id
           ORDER BY p.id
           FOR UPDATE OF p"#,
        &ids,
        &metas as &[Option<uuid::Uuid>],
        &which,
    )
    .fetch_all(tx.conn())
    .await?;
    // An intent that matched more than one payment, or a payment more than one intent, goes
    // the one-at-a-time way.
    let mut per_intent: HashMap<i64, usize> = HashMap::new();
    let mut per_payment: HashMap<uuid::Uuid, usize> = HashMap::new();
    for r in &rows {
        *per_intent.entry(r.k).or_default() += 1;
        *per_payment.entry(r.id).or_default() += 1;
    }
    let mut settle = Vec::new();
    for r in &rows {
        if per_intent[&r.k] != 1 || per_payment[&r.id] != 1 {
            continue;
        }
        let intent = intents[r.k as usize];
        if r.status == "succeeded" {
            // Already settled, and (no card to keep) nothing else would change.
            if !r.saves_card {
                taken[r.k as usize] = true;
            }
            continue;
        }
        if r.saves_card || !intent.currency.eq_ignore_ascii_case(&r.currency) {
            continue;
        }
        settle.push((r, intent));
    }
    if settle.is_empty() {
        return Ok(taken);
    }
    // Entered in Stripe's order (the batch's), as one at a time would have.
    settle.sort_by_key(|(r, _)| r.k);
    let pay: Vec<uuid::Uuid> = settle.iter().map(|(r, _)| r.id).collect();
    let received: Vec<i64> = settle.iter().map(|(_, i)| i.amount_received).collect();
    let intent_ids: Vec<String> = settle.iter().map(|(_, i)| i.id.clone()).collect();
    sqlx::query!(
        "UPDATE payments p SET status = 'succeeded', amount_minor = u.amount, succeeded_at = $4,
                               stripe_payment_intent = u.intent, failure = NULL
         FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS u(id, amount, intent)
         WHERE p.id = u.id",
        &pay,
        &received,
        &intent_ids,
        now,
    )
    .execute(tx.conn())
    .await?;
    let entries: Vec<uuid::Uuid> = settle.iter().map(|_| uuid::Uuid::now_v7()).collect();
    let accounts: Vec<uuid::Uuid> = settle.iter().map(|(r, _)| r.account_id).collect();
    let credits: Vec<i64> = received.iter().map(|r| -r).collect();
    let currencies: Vec<String> = settle.iter().map(|(r, _)| r.currency.clone()).collect();
    let statements: Vec<Option<uuid::Uuid>> = settle.iter().map(|(r, _)| r.statement_id).collect();
    sqlx::query!(
        "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                     statement_id, payment_id, balance_after_minor, created_at)
         SELECT e.id, e.account, 0, 'payment', e.amount, e.currency, e.statement, e.payment, 0, $7
         FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::uuid[], $6::uuid[])
              WITH ORDINALITY AS e(id, account, amount, currency, statement, payment, n)
         ORDER BY e.n",
        &entries,
        &accounts,
        &credits,
        &currencies,
        &statements as &[Option<uuid::Uuid>],
        &pay,
        now,
    )
    .execute(tx.conn())
    .await?;
    let patients: Vec<PatientId> = settle
        .iter()
        .map(|(r, _)| PatientId::from_uuid(r.patient_id))
        .collect();
    let system = ctx.automatic();
    let recorded: Vec<AuditEvent> = settle
        .iter()
        .zip(&patients)
        .map(|((r, _), patient)| {
            AuditEvent::new(Action::PaymentRecord, "payments")
                .resource(PaymentId::from_uuid(r.id))
                .patient(*patient)
        })
        .collect();
    audit::record_many(tx, &system, now, &recorded).await?;
    let taken_ids: Vec<PaymentId> = pay.iter().map(|p| PaymentId::from_uuid(*p)).collect();
    super::print::queue_receipts(tx, &taken_ids).await?;
    relink(tx, ctx, &intent_ids, now).await?;
    for (r, _) in &settle {
        taken[r.k as usize] = true;
    }
    Ok(taken)
}

/// Disputes that arrived before their payment was ours to name, linked now (`disputes::relink`);
/// one look for the whole batch, since they are rare.
async fn relink(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    intents: &[String],
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let waiting = sqlx::query_scalar!(
        r#"SELECT DISTINCT payment_intent AS "intent!" FROM disputes
           WHERE payment_intent = ANY($1) AND payment_id IS NULL"#,
        intents,
    )
    .fetch_all(tx.conn())
    .await?;
    for intent in waiting {
        super::disputes::relink(tx, ctx, &intent, now).await?;
    }
    Ok(())
}
