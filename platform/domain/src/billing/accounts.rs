//! A patient's billing account: its balance and its ledger. The account is made the first time
//! the clinic bills the patient, in the clinic's currency.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::money::{Currency, Money};
use super::statements::{self, StatementSummary};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{BillingScope, PatientScope};
use crate::ids::{AccountId, PatientId, PaymentId, StatementId};

/// The patient's account, made in the clinic's currency if it does not exist yet. Returns its
/// id and currency. `None`: no such patient.
pub(crate) async fn ensure(
    tx: &mut TenantTx,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Option<(AccountId, Currency)>, sqlx::Error> {
    let currency = super::clinic_currency(tx).await?;
    let row = sqlx::query!(
        "WITH made AS (
             INSERT INTO billing_accounts (id, patient_id, currency, created_at)
             SELECT $1, p.id, $3, $4 FROM patients p WHERE p.id = $2
             ON CONFLICT (patient_id) DO NOTHING
             RETURNING id, currency)
         SELECT id AS \"id!\", currency AS \"currency!\" FROM made
         UNION ALL
         SELECT id, currency FROM billing_accounts WHERE patient_id = $2",
        AccountId::new().as_uuid(),
        patient.as_uuid(),
        currency.as_str(),
        now,
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| {
        (
            AccountId::from_uuid(r.id),
            Currency::parse(&r.currency).unwrap_or(currency),
        )
    }))
}

/// One line of the ledger as staff read it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub seq: i64,
    pub kind: String,
    pub amount: Money,
    pub balance_after: Money,
    pub statement_number: Option<i64>,
    pub statement_id: Option<StatementId>,
    pub payment_id: Option<PaymentId>,
    pub at: DateTime<Utc>,
}

impl Entry {
    /// What the entry was, in words.
    pub fn label(&self) -> &'static str {
        match self.kind.as_str() {
            "charge" => "Statement issued",
            "payment" => "Payment",
            "refund" => "Refund",
            "void" => "Statement voided",
            "chargeback" => "Payment taken back by the card's bank",
            _ => "Entry",
        }
    }
}

/// A patient's account as a page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Account {
    pub patient_id: PatientId,
    pub patient_name: String,
    pub balance: Money,
    pub statements: Vec<StatementSummary>,
    /// Newest first (staff only; empty for the patient).
    pub entries: Vec<Entry>,
}

/// The signed-in patient's account: balance and their issued statements (never drafts).
pub async fn own(
    tx: &mut TenantTx,
    scope: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Account, sqlx::Error> {
    let patient = scope.patient_id();
    let account = read(tx, patient, false).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::StatementList, "statements").patient(patient),
    )
    .await?;
    match account {
        Some(a) => Ok(a),
        // Never billed: an empty account in the clinic's currency.
        None => Ok(Account {
            patient_id: patient,
            patient_name: String::new(),
            balance: Money::new(0, super::clinic_currency(tx).await?),
            statements: Vec::new(),
            entries: Vec::new(),
        }),
    }
}

/// A patient's account for billing staff: drafts included, with the whole ledger. `None`: no
/// such patient in this clinic.
pub async fn for_staff(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Option<Account>, sqlx::Error> {
    let name = sqlx::query_scalar!(
        "SELECT given_name || ' ' || family_name AS \"name!\" FROM patients WHERE id = $1",
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(name) = name else {
        return Ok(None);
    };
    let account = match read(tx, patient, true).await? {
        Some(a) => a,
        None => Account {
            patient_id: patient,
            patient_name: String::new(),
            balance: Money::new(0, super::clinic_currency(tx).await?),
            statements: Vec::new(),
            entries: Vec::new(),
        },
    };
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::BillingAccountView, "billing_accounts").patient(patient),
    )
    .await?;
    Ok(Some(Account {
        patient_name: name,
        ..account
    }))
}

async fn read(
    tx: &mut TenantTx,
    patient: PatientId,
    staff: bool,
) -> Result<Option<Account>, sqlx::Error> {
    let Some(head) = sqlx::query!(
        "SELECT id, currency, balance_minor FROM billing_accounts WHERE patient_id = $1",
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let currency = Currency::parse(&head.currency).unwrap_or(Currency::USD);
    let statements = statements::summaries(tx, Some(patient), staff).await?;
    let entries = if staff {
        sqlx::query!(
            "SELECT e.seq, e.kind, e.amount_minor, e.balance_after_minor, e.statement_id,
                    e.payment_id, e.created_at, s.number AS \"number?\"
             FROM ledger_entries e LEFT JOIN statements s ON s.id = e.statement_id
             WHERE e.account_id = $1
             ORDER BY e.seq DESC LIMIT 500",
            head.id
        )
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .map(|r| Entry {
            seq: r.seq,
            kind: r.kind,
            amount: Money::new(r.amount_minor, currency),
            balance_after: Money::new(r.balance_after_minor, currency),
            statement_number: r.number,
            statement_id: r.statement_id.map(StatementId::from_uuid),
            payment_id: r.payment_id.map(PaymentId::from_uuid),
            at: r.created_at,
        })
        .collect()
    } else {
        Vec::new()
    };
    Ok(Some(Account {
        patient_id: patient,
        patient_name: String::new(),
        balance: Money::new(head.balance_minor, currency),
        statements,
        entries,
    }))
}
