//! Payouts: what Stripe paid into the clinic's bank, with the transactions inside each one —
//! charges and refunds matched to our payments (and so to statements and patients), fees,
//! disputes and adjustments as they are. A payout whose transactions do not add up to it is
//! listed by reconciliation.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use portal_stripe::{BalanceLine, PayoutState};
use portal_tenants::TenantTx;

use super::{Currency, Money};
use crate::audit::{self, Action, AuditContext};
use crate::identity::scope::BillingScope;
use crate::ids::PatientId;

/// Records a payout and its transactions (again: a payout event delivered twice replaces the
/// same rows).
pub async fn record(
    tx: &mut TenantTx,
    payout: &PayoutState,
    lines: &[BalanceLine],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // The payout's own transaction (type `payout`) is the money leaving; the rest are what it
    // pays out.
    let inside: Vec<&BalanceLine> = lines.iter().filter(|l| l.kind != "payout").collect();
    let net: i64 = inside.iter().map(|l| l.net).sum();
    let arrival = Utc
        .timestamp_opt(payout.arrival_date, 0)
        .single()
        .map_or_else(|| now.date_naive(), |t| t.date_naive());
    sqlx::query!(
        "INSERT INTO payouts (id, amount_minor, currency, status, arrival_date, lines_net_minor,
                              recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
             amount_minor = EXCLUDED.amount_minor, lines_net_minor = EXCLUDED.lines_net_minor,
             recorded_at = EXCLUDED.recorded_at",
        payout.id,
        payout.amount,
        payout.currency,
        payout.status,
        arrival,
        net,
        now,
    )
    .execute(tx.conn())
    .await?;
    let txn: Vec<String> = inside.iter().map(|l| l.id.clone()).collect();
    let kinds: Vec<String> = inside.iter().map(|l| l.kind.clone()).collect();
    let amounts: Vec<i64> = inside.iter().map(|l| l.amount).collect();
    let fees: Vec<i64> = inside.iter().map(|l| l.fee).collect();
    let nets: Vec<i64> = inside.iter().map(|l| l.net).collect();
    let sources: Vec<Option<String>> = inside.iter().map(|l| l.source.clone()).collect();
    sqlx::query!(
        "INSERT INTO payout_lines (payout_id, txn_id, kind, amount_minor, fee_minor, net_minor,
                                   source, payment_id)
         SELECT $1, l.txn, l.kind, l.amount, l.fee, l.net, l.source,
                coalesce(p.id, r.payment_id)
         FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::text[])
              AS l(txn, kind, amount, fee, net, source)
         LEFT JOIN payments p ON p.stripe_charge = l.source
         LEFT JOIN refunds r ON r.stripe_refund = l.source
         ON CONFLICT (payout_id, txn_id) DO UPDATE SET payment_id = EXCLUDED.payment_id",
        payout.id,
        &txn,
        &kinds,
        &amounts,
        &fees,
        &nets,
        &sources as &[Option<String>],
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One transaction of a payout, as the page shows it.
#[derive(Debug, Clone)]
pub struct Line {
    pub kind: String,
    pub amount: Money,
    pub fee: Money,
    pub net: Money,
    pub patient: Option<PatientId>,
    pub patient_name: Option<String>,
    pub statement: Option<uuid::Uuid>,
    pub statement_number: Option<i64>,
}

/// A payout with its transactions.
#[derive(Debug, Clone)]
pub struct Payout {
    pub id: String,
    pub amount: Money,
    pub status: String,
    pub arrival: NaiveDate,
    pub adds_up: bool,
    pub lines: Vec<Line>,
}

/// The newest payouts (up to 50) with their transactions.
pub async fn recent(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Payout>, sqlx::Error> {
    let heads = sqlx::query!(
        "SELECT id, amount_minor, currency, status, arrival_date, lines_net_minor
         FROM payouts ORDER BY arrival_date DESC, id DESC LIMIT 50"
    )
    .fetch_all(tx.conn())
    .await?;
    let ids: Vec<String> = heads.iter().map(|h| h.id.clone()).collect();
    let lines = sqlx::query!(
        r#"SELECT l.payout_id, l.kind, l.amount_minor, l.fee_minor, l.net_minor,
                  a.patient_id AS "patient_id?", pt.given_name || ' ' || pt.family_name AS name,
                  s.id AS "statement_id?", s.number AS "number?"
           FROM payout_lines l
           LEFT JOIN payments p ON p.id = l.payment_id
           LEFT JOIN billing_accounts a ON a.id = p.account_id
           LEFT JOIN patients pt ON pt.id = a.patient_id
           LEFT JOIN statements s ON s.id = p.statement_id
           WHERE l.payout_id = ANY($1)
           ORDER BY l.payout_id, l.txn_id"#,
        &ids
    )
    .fetch_all(tx.conn())
    .await?;
    let out: Vec<Payout> = heads
        .into_iter()
        .map(|h| {
            let currency = Currency::parse(&h.currency).unwrap_or(Currency::USD);
            let money = |m: i64| Money::new(m, currency);
            Payout {
                lines: lines
                    .iter()
                    .filter(|l| l.payout_id == h.id)
                    .map(|l| Line {
                        kind: l.kind.clone(),
                        amount: money(l.amount_minor),
                        fee: money(l.fee_minor),
                        net: money(l.net_minor),
                        patient: l.patient_id.map(PatientId::from_uuid),
                        patient_name: l.name.clone(),
                        statement: l.statement_id,
                        statement_number: l.number,
                    })
                    .collect(),
                adds_up: h.lines_net_minor == h.amount_minor,
                id: h.id,
                amount: money(h.amount_minor),
                status: h.status,
                arrival: h.arrival_date,
            }
        })
        .collect();
    let shown: Vec<PatientId> = out
        .iter()
        .flat_map(|p| p.lines.iter().filter_map(|l| l.patient))
        .collect();
    audit::record_list(tx, ctx, now, Action::PayoutList, "payouts", shown).await?;
    Ok(out)
}
