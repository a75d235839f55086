//! Payments toward a statement. Here: cash and cheques that billing staff take at the desk
//! and record by hand. A payment is more than zero and no more than what is still due, in the
//! statement's currency; it enters the ledger once.

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use super::BillingError;
use super::money::{Currency, Money};
use super::statements::Status;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::BillingScope;
use crate::ids::{PatientId, PaymentId, StatementId};

/// How money was handed over at the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineMethod {
    Cash,
    Cheque,
}

impl OfflineMethod {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "cash" => Some(OfflineMethod::Cash),
            "cheque" => Some(OfflineMethod::Cheque),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OfflineMethod::Cash => "cash",
            OfflineMethod::Cheque => "cheque",
        }
    }
}

/// A desk payment as typed.
#[derive(Debug, Clone, Default)]
pub struct OfflineInput {
    pub amount: String,
    pub method: String,
    pub reference: String,
    /// `YYYY-MM-DD`.
    pub received_on: String,
}

/// The statement's state for taking money, under its row lock.
pub(crate) struct Payable {
    pub account: uuid::Uuid,
    pub patient: PatientId,
    pub currency: Currency,
    pub due: i64,
}

/// Locks an issued statement and reads what is due on it.
pub(crate) async fn payable(tx: &mut TenantTx, id: StatementId) -> Result<Payable, BillingError> {
    let row = sqlx::query!(
        "SELECT s.account_id, s.patient_id, s.status, s.currency,
                coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                          WHERE e.statement_id = s.id), 0)::bigint AS \"due!\"
         FROM statements s WHERE s.id = $1 FOR UPDATE OF s",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    match Status::parse_stored(&row.status) {
        Status::Issued => {}
        Status::Void => return Err(BillingError::Voided),
        Status::Draft => return Err(BillingError::NotIssued),
    }
    Ok(Payable {
        account: row.account_id,
        patient: PatientId::from_uuid(row.patient_id),
        currency: Currency::parse(&row.currency).unwrap_or(Currency::USD),
        due: row.due,
    })
}

/// Checks an amount against what is due: more than zero, no more than the rest.
pub(crate) fn check_amount(raw: &str, p: &Payable) -> Result<Money, BillingError> {
    let amount =
        Money::parse(raw, p.currency).map_err(|e| BillingError::field("amount", e.to_string()))?;
    if p.due <= 0 {
        return Err(BillingError::NothingDue);
    }
    if amount.minor == 0 {
        return Err(BillingError::field(
            "amount",
            "Enter an amount more than zero.",
        ));
    }
    if amount.minor > p.due {
        return Err(BillingError::field(
            "amount",
            format!(
                "That is more than the {} still due. Enter {} or less.",
                Money::new(p.due, p.currency),
                Money::new(p.due, p.currency)
            ),
        ));
    }
    Ok(amount)
}

/// Records cash or a cheque taken for a statement.
pub async fn record_offline(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    statement: StatementId,
    input: &OfflineInput,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(PaymentId, Money), BillingError> {
    let p = payable(tx, statement).await?;
    let method = OfflineMethod::parse(&input.method)
        .ok_or_else(|| BillingError::field("method", "Choose cash or cheque."))?;
    let amount = check_amount(&input.amount, &p)?;
    let reference = input.reference.trim();
    if method == OfflineMethod::Cheque && reference.is_empty() {
        return Err(BillingError::field(
            "reference",
            "Enter the cheque's number.",
        ));
    }
    if reference.chars().count() > 60 || reference.chars().any(char::is_control) {
        return Err(BillingError::field(
            "reference",
            "Keep the reference to one line of at most 60 characters.",
        ));
    }
    let received_on = match NaiveDate::parse_from_str(input.received_on.trim(), "%Y-%m-%d") {
        Ok(d) if d > today => {
            return Err(BillingError::field(
                "received_on",
                "The day it was received cannot be in the future.",
            ));
        }
        Ok(d) => d,
        Err(_) => {
            return Err(BillingError::field(
                "received_on",
                "Enter the day it was received, like 2026-11-02.",
            ));
        }
    };
    let id = PaymentId::new();
    sqlx::query!(
        "INSERT INTO payments (id, account_id, statement_id, method, status, amount_minor,
                               currency, payer, reference, received_on, recorded_by,
                               created_at, succeeded_at)
         VALUES ($1, $2, $3, $4, 'succeeded', $5, $6, 'staff', $7, $8, $9, $10, $10)",
        id.as_uuid(),
        p.account,
        statement.as_uuid(),
        method.as_str(),
        amount.minor,
        p.currency.as_str(),
        (!reference.is_empty()).then_some(reference),
        received_on,
        scope.user_id().as_uuid(),
        now,
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                     statement_id, payment_id, balance_after_minor, created_by,
                                     created_at)
         VALUES ($1, $2, 0, 'payment', $3, $4, $5, $6, 0, $7, $8)",
        uuid::Uuid::now_v7(),
        p.account,
        -amount.minor,
        p.currency.as_str(),
        statement.as_uuid(),
        id.as_uuid(),
        scope.user_id().as_uuid(),
        now,
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PaymentRecord, "payments")
            .resource(id)
            .patient(p.patient),
    )
    .await?;
    super::print::queue_receipts(tx, &[id]).await?;
    Ok((id, amount))
}

/// One payment in the export.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub at: DateTime<Utc>,
    pub statement_number: Option<i64>,
    pub patient_name: String,
    pub method: String,
    pub payer: String,
    pub status: String,
    pub amount: Money,
    pub refunded: Money,
    pub reference: Option<String>,
    pub stripe_payment_intent: Option<String>,
    pub stripe_charge: Option<String>,
    pub payout: Option<String>,
    pub patient: PatientId,
    pub id: PaymentId,
    pub statement: Option<StatementId>,
}

/// Every payment (newest first, up to 50,000) with its statement, patient, Stripe ids and the
/// payout that paid it out, for the billing office's books. Audited per patient shown.
pub async fn export(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    newest(tx, scope, ctx, 50_000, now).await
}

/// The newest `limit` payments, as [`export`] describes them, for the console's list.
pub async fn newest(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.id, s.id AS "statement_id?",
                  coalesce(p.succeeded_at, p.created_at) AS "at!", s.number AS "number?",
                  pt.given_name || ' ' || pt.family_name AS "name!", a.patient_id, p.method,
                  p.payer, p.status, p.amount_minor, p.refunded_minor, p.currency, p.reference,
                  p.stripe_payment_intent, p.stripe_charge,
                  (SELECT l.payout_id FROM payout_lines l WHERE l.payment_id = p.id
                   AND l.kind IN ('charge', 'payment') LIMIT 1) AS payout
           FROM payments p
           JOIN billing_accounts a ON a.id = p.account_id
           JOIN patients pt ON pt.id = a.patient_id
           LEFT JOIN statements s ON s.id = p.statement_id
           ORDER BY p.created_at DESC, p.id DESC
           LIMIT $1"#,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    let out: Vec<ExportRow> = rows
        .into_iter()
        .map(|r| {
            let currency = Currency::parse(&r.currency).unwrap_or(Currency::USD);
            ExportRow {
                at: r.at,
                statement_number: r.number,
                patient_name: r.name,
                method: r.method,
                payer: r.payer,
                status: r.status,
                amount: Money::new(r.amount_minor, currency),
                refunded: Money::new(r.refunded_minor, currency),
                reference: r.reference,
                stripe_payment_intent: r.stripe_payment_intent,
                stripe_charge: r.stripe_charge,
                payout: r.payout,
                patient: PatientId::from_uuid(r.patient_id),
                id: PaymentId::from_uuid(r.id),
                statement: r.statement_id.map(StatementId::from_uuid),
            }
        })
        .collect();
    let shown: Vec<PatientId> = out.iter().map(|r| r.patient).collect();
    audit::record_list(tx, ctx, now, Action::PaymentList, "payments", shown).await?;
    Ok(out)
}
