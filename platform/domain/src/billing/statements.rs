//! Statements: drafted by billing staff line by line, issued (which charges the patient's
//! account what the lines leave to the patient and tells the patient, with no amount in the
//! message), and voided (which takes the charge back). A draft is never shown to the patient.
//! What is due on a statement is the sum of its ledger entries, so it is always what the
//! ledger says.

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use super::lines::NewLine;
use super::money::{Currency, Money};
use super::{BillingError, accounts};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{BillingScope, PatientScope};
use crate::ids::{DocumentId, PatientId, PaymentId, StatementId};
use crate::jobs::{self, Channel, Job};

/// Where a statement is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Issued,
    Void,
}

impl Status {
    pub(crate) fn parse_stored(raw: &str) -> Status {
        Self::parse(raw)
    }

    fn parse(raw: &str) -> Status {
        match raw {
            "draft" => Status::Draft,
            "issued" => Status::Issued,
            _ => Status::Void,
        }
    }

    /// As stored and as the API says it.
    pub fn code(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Issued => "issued",
            Status::Void => "void",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Draft => "Draft",
            Status::Issued => "Issued",
            Status::Void => "Voided",
        }
    }
}

/// A statement as lists show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatementSummary {
    pub id: StatementId,
    pub number: i64,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub status: Status,
    pub issued_at: Option<DateTime<Utc>>,
    pub due_on: Option<NaiveDate>,
    /// What the patient was asked to pay when it was issued.
    pub issued: Option<Money>,
    /// What is still due (negative: paid more than is owed now, e.g. after a void).
    pub due: Money,
    pub created_at: DateTime<Utc>,
}

impl StatementSummary {
    /// Issued and not yet paid in full.
    pub fn is_open(&self) -> bool {
        self.status == Status::Issued && self.due.minor > 0
    }
}

/// One line item.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    pub id: uuid::Uuid,
    pub service_date: NaiveDate,
    pub description: String,
    pub code: Option<String>,
    pub charge: Money,
    pub insurance_paid: Money,
    pub adjustment: Money,
    pub patient: Money,
}

/// A payment as a statement shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaymentLine {
    pub id: PaymentId,
    pub method: String,
    pub payer: String,
    pub status: String,
    pub amount: Money,
    pub refunded: Money,
    /// Taken back by a dispute the clinic lost.
    pub disputed: Money,
    /// A cardholder disputes it (not won): it cannot be refunded.
    pub in_dispute: bool,
    pub reference: Option<String>,
    pub at: DateTime<Utc>,
    /// Its receipt (a PDF document of the patient), once someone opened it.
    pub receipt: Option<DocumentId>,
}

impl PaymentLine {
    pub fn method_label(&self) -> &'static str {
        match self.method.as_str() {
            "card" => "Card",
            "cash" => "Cash",
            "cheque" => "Cheque",
            _ => "Other",
        }
    }
}

/// A statement with its lines, totals and payments.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Statement {
    pub summary: StatementSummary,
    pub currency: Currency,
    pub version: i32,
    pub void_reason: Option<String>,
    pub voided_at: Option<DateTime<Utc>>,
    /// The code for paying without signing in, as printed (`K7QF-M2X9-PA4D`).
    pub guest_code: Option<String>,
    pub lines: Vec<Line>,
    pub total_charges: Money,
    pub total_insurance: Money,
    pub total_adjustments: Money,
    /// What the lines leave to the patient (for a draft, what issuing would charge).
    pub total_patient: Money,
    pub paid: Money,
    pub payments: Vec<PaymentLine>,
    /// Its active payment plan, if it has one.
    pub plan: Option<super::plans::Plan>,
}

/// Statements, newest first: one patient's (`Some`), or every patient's (`None`, the billing
/// work queue: the 200 newest not voided). Patients never see drafts.
pub(crate) async fn summaries(
    tx: &mut TenantTx,
    patient: Option<PatientId>,
    with_drafts: bool,
) -> Result<Vec<StatementSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT s.id, s.number, s.patient_id, s.status, s.currency, s.issued_at, s.due_on,
                  s.issued_minor, s.created_at,
                  p.given_name || ' ' || p.family_name AS "patient_name!",
                  coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                            WHERE e.statement_id = s.id), 0)::bigint AS "due!"
           FROM statements s JOIN patients p ON p.id = s.patient_id
           WHERE ($1::uuid IS NULL OR s.patient_id = $1)
             AND ($2 OR s.status <> 'draft')
             AND ($1::uuid IS NOT NULL OR s.status <> 'void')
           ORDER BY s.created_at DESC, s.id DESC
           LIMIT 200"#,
        patient.map(|p| p.as_uuid()),
        with_drafts,
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let currency = Currency::parse(&r.currency).unwrap_or(Currency::USD);
            StatementSummary {
                id: StatementId::from_uuid(r.id),
                number: r.number,
                patient_id: PatientId::from_uuid(r.patient_id),
                patient_name: r.patient_name,
                status: Status::parse(&r.status),
                issued_at: r.issued_at,
                due_on: r.due_on,
                issued: r.issued_minor.map(|m| Money::new(m, currency)),
                due: Money::new(r.due, currency),
                created_at: r.created_at,
            }
        })
        .collect())
}

/// The billing work queue: drafts to finish and statements still owed, every patient.
pub async fn work_queue(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<StatementSummary>, sqlx::Error> {
    let all = summaries(tx, None, true).await?;
    let shown: Vec<_> = all
        .into_iter()
        .filter(|s| s.status == Status::Draft || s.is_open())
        .collect();
    audit::record_list(
        tx,
        ctx,
        now,
        Action::StatementList,
        "statements",
        shown.iter().map(|s| s.patient_id),
    )
    .await?;
    Ok(shown)
}

/// One statement whole. `patient` limits it to that patient's (and hides drafts).
pub(crate) async fn read(
    tx: &mut TenantTx,
    id: StatementId,
    patient: Option<PatientId>,
) -> Result<Option<Statement>, sqlx::Error> {
    let Some(head) = sqlx::query!(
        r#"SELECT s.id, s.number, s.patient_id, s.status, s.currency, s.issued_at, s.due_on,
                  s.issued_minor, s.created_at, s.version, s.void_reason, s.voided_at,
                  s.guest_code, p.given_name || ' ' || p.family_name AS "patient_name!",
                  coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                            WHERE e.statement_id = s.id), 0)::bigint AS "due!"
           FROM statements s JOIN patients p ON p.id = s.patient_id
           WHERE s.id = $1 AND ($2::uuid IS NULL OR (s.patient_id = $2 AND s.status <> 'draft'))"#,
        id.as_uuid(),
        patient.map(|p| p.as_uuid()),
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let currency = Currency::parse(&head.currency).unwrap_or(Currency::USD);
    let money = |m: i64| Money::new(m, currency);
    let lines: Vec<Line> = sqlx::query!(
        "SELECT id, service_date, description, code, charge_minor, insurance_paid_minor,
                adjustment_minor, patient_minor AS \"patient_minor!\"
         FROM statement_lines WHERE statement_id = $1 ORDER BY position",
        id.as_uuid()
    )
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|r| Line {
        id: r.id,
        service_date: r.service_date,
        description: r.description,
        code: r.code,
        charge: money(r.charge_minor),
        insurance_paid: money(r.insurance_paid_minor),
        adjustment: money(r.adjustment_minor),
        patient: money(r.patient_minor),
    })
    .collect();
    let payments: Vec<PaymentLine> = sqlx::query!(
        r#"SELECT p.id, p.method, p.payer, p.status, p.amount_minor, p.refunded_minor,
                  p.disputed_minor, p.reference, coalesce(p.succeeded_at, p.created_at) AS "at!",
                  d.id AS "receipt?",
                  EXISTS (SELECT 1 FROM disputes dp WHERE dp.payment_id = p.id
                          AND dp.status NOT IN ('won', 'warning_closed', 'prevented'))
                    AS "in_dispute!"
           FROM payments p
           LEFT JOIN documents d ON d.kind = 'receipt' AND d.subject_id = p.id
           WHERE p.statement_id = $1 ORDER BY p.created_at, p.id"#,
        id.as_uuid()
    )
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|r| PaymentLine {
        id: PaymentId::from_uuid(r.id),
        method: r.method,
        payer: r.payer,
        status: r.status,
        amount: money(r.amount_minor),
        refunded: money(r.refunded_minor),
        disputed: money(r.disputed_minor),
        in_dispute: r.in_dispute,
        reference: r.reference,
        at: r.at,
        receipt: r.receipt.map(DocumentId::from_uuid),
    })
    .collect();
    let plan = super::plans::active(tx, id, head.due).await?;
    let sum = |f: fn(&Line) -> i64| money(lines.iter().map(f).sum());
    let paid = payments
        .iter()
        .filter(|p| p.status == "succeeded")
        .map(|p| p.amount.minor - p.refunded.minor - p.disputed.minor)
        .sum();
    Ok(Some(Statement {
        summary: StatementSummary {
            id,
            number: head.number,
            patient_id: PatientId::from_uuid(head.patient_id),
            patient_name: head.patient_name,
            status: Status::parse(&head.status),
            issued_at: head.issued_at,
            due_on: head.due_on,
            issued: head.issued_minor.map(money),
            due: money(head.due),
            created_at: head.created_at,
        },
        currency,
        version: head.version,
        void_reason: head.void_reason,
        voided_at: head.voided_at,
        guest_code: head.guest_code.as_deref().map(super::guest::display),
        total_charges: sum(|l| l.charge.minor),
        total_insurance: sum(|l| l.insurance_paid.minor),
        total_adjustments: sum(|l| l.adjustment.minor),
        total_patient: sum(|l| l.patient.minor),
        lines,
        paid: money(paid),
        payments,
        plan,
    }))
}

async fn audit_view(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    now: DateTime<Utc>,
    s: &Statement,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::StatementView, "statements")
            .resource(s.summary.id)
            .patient(s.summary.patient_id),
    )
    .await
}

/// The patient's own statement (issued or voided; never a draft, never another's).
pub async fn own(
    tx: &mut TenantTx,
    scope: &PatientScope,
    ctx: &AuditContext,
    id: StatementId,
    now: DateTime<Utc>,
) -> Result<Option<Statement>, sqlx::Error> {
    let found = read(tx, id, Some(scope.patient_id())).await?;
    if let Some(s) = &found {
        audit_view(tx, ctx, now, s).await?;
    }
    Ok(found)
}

/// Any statement of the clinic, for billing staff.
pub async fn for_staff(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    id: StatementId,
    now: DateTime<Utc>,
) -> Result<Option<Statement>, sqlx::Error> {
    let found = read(tx, id, None).await?;
    if let Some(s) = &found {
        audit_view(tx, ctx, now, s).await?;
    }
    Ok(found)
}

/// Starts a draft statement for a patient. `None`: no such patient.
pub async fn create_draft(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Option<StatementId>, BillingError> {
    let Some((account, currency)) = accounts::ensure(tx, patient, now).await? else {
        return Ok(None);
    };
    let id = StatementId::new();
    sqlx::query!(
        "INSERT INTO statements (id, account_id, patient_id, status, currency, created_by,
                                 created_at)
         VALUES ($1, $2, $3, 'draft', $4, $5, $6)",
        id.as_uuid(),
        account.as_uuid(),
        patient.as_uuid(),
        currency.as_str(),
        scope.user_id().as_uuid(),
        now,
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::StatementCreate, "statements")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(Some(id))
}

/// The statement's row, locked, checked against the version the person saw.
struct Locked {
    patient: PatientId,
    status: Status,
    currency: Currency,
    account: uuid::Uuid,
}

async fn lock(
    tx: &mut TenantTx,
    id: StatementId,
    seen_version: Option<i32>,
) -> Result<Locked, BillingError> {
    let row = sqlx::query!(
        "SELECT patient_id, status, version, currency, account_id FROM statements
         WHERE id = $1 FOR UPDATE",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    if seen_version.is_some_and(|v| v != row.version) {
        return Err(BillingError::Stale);
    }
    Ok(Locked {
        patient: PatientId::from_uuid(row.patient_id),
        status: Status::parse(&row.status),
        currency: Currency::parse(&row.currency).unwrap_or(Currency::USD),
        account: row.account_id,
    })
}

fn draft_only(l: &Locked) -> Result<(), BillingError> {
    match l.status {
        Status::Draft => Ok(()),
        Status::Void => Err(BillingError::Voided),
        Status::Issued => Err(BillingError::NotDraft),
    }
}

async fn bump(
    tx: &mut TenantTx,
    id: StatementId,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
    action: Action,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE statements SET version = version + 1 WHERE id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(action, "statements")
            .resource(id)
            .patient(patient),
    )
    .await
}

/// The clinic's currency for a draft's lines (the statement's own).
pub async fn currency_of(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    id: StatementId,
) -> Result<Option<Currency>, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        "SELECT currency FROM statements WHERE id = $1",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .map(|c| Currency::parse(&c).unwrap_or(Currency::USD)))
}

/// Adds a line to a draft, made against the version the person saw.
pub async fn add_line(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    id: StatementId,
    seen_version: i32,
    line: &NewLine,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let locked = lock(tx, id, Some(seen_version)).await?;
    draft_only(&locked)?;
    let count = sqlx::query_scalar!(
        "SELECT count(*) AS \"n!\" FROM statement_lines WHERE statement_id = $1",
        id.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if count >= 100 {
        return Err(BillingError::field(
            "description",
            "A statement holds at most 100 lines. Issue this one and start another.",
        ));
    }
    sqlx::query!(
        "INSERT INTO statement_lines (id, statement_id, position, service_date, description,
                                      code, charge_minor, insurance_paid_minor, adjustment_minor)
         VALUES ($1, $2, (SELECT coalesce(max(position), 0) + 1 FROM statement_lines
                          WHERE statement_id = $2), $3, $4, $5, $6, $7, $8)",
        uuid::Uuid::now_v7(),
        id.as_uuid(),
        line.service_date,
        line.description,
        line.code,
        line.charge,
        line.insurance_paid,
        line.adjustment,
    )
    .execute(tx.conn())
    .await?;
    bump(tx, id, ctx, locked.patient, now, Action::StatementUpdate).await?;
    Ok(())
}

/// Takes a line off a draft.
pub async fn remove_line(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    id: StatementId,
    seen_version: i32,
    line: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let locked = lock(tx, id, Some(seen_version)).await?;
    draft_only(&locked)?;
    let gone = sqlx::query!(
        "DELETE FROM statement_lines WHERE id = $1 AND statement_id = $2",
        line,
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    if gone.rows_affected() == 0 {
        return Err(BillingError::NotFound);
    }
    bump(tx, id, ctx, locked.patient, now, Action::StatementUpdate).await?;
    Ok(())
}

/// Issues a draft: charges the account what the lines leave to the patient, sets the due
/// date, and queues the patient's notices (email and text; no amount in either).
pub async fn issue(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    id: StatementId,
    seen_version: i32,
    due_on: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Money, BillingError> {
    issue_as(
        tx,
        ctx,
        id,
        Some(seen_version),
        due_on,
        Some(scope.user_id()),
        now,
    )
    .await
}

/// Issues a draft for a person (`by`) or for the clinic's billing system through the API
/// (`None`, the key is on the statement).
pub(crate) async fn issue_as(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    id: StatementId,
    seen_version: Option<i32>,
    due_on: NaiveDate,
    by: Option<crate::ids::UserId>,
    now: DateTime<Utc>,
) -> Result<Money, BillingError> {
    let by = by.map(|u| u.as_uuid());
    let locked = lock(tx, id, seen_version).await?;
    draft_only(&locked)?;
    let totals = sqlx::query!(
        "SELECT count(*) AS \"lines!\", coalesce(sum(patient_minor), 0)::bigint AS \"patient!\"
         FROM statement_lines WHERE statement_id = $1",
        id.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if totals.lines == 0 {
        return Err(BillingError::NoLines);
    }
    sqlx::query!(
        "UPDATE statements SET status = 'issued', issued_minor = $2, issued_at = $3,
                               issued_by = $4, due_on = $5, guest_code = $6,
                               version = version + 1
         WHERE id = $1",
        id.as_uuid(),
        totals.patient,
        now,
        by,
        due_on,
        super::guest::new_code(),
    )
    .execute(tx.conn())
    .await?;
    if totals.patient > 0 {
        sqlx::query!(
            "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                         statement_id, balance_after_minor, created_by,
                                         created_at)
             VALUES ($1, $2, 0, 'charge', $3, $4, $5, 0, $6, $7)",
            uuid::Uuid::now_v7(),
            locked.account,
            totals.patient,
            locked.currency.as_str(),
            id.as_uuid(),
            by,
            now,
        )
        .execute(tx.conn())
        .await?;
    }
    jobs::enqueue_many(
        tx,
        &[Channel::Email, Channel::Sms].map(|channel| {
            (
                Job::StatementNotice {
                    statement_id: id,
                    channel,
                },
                None,
            )
        }),
    )
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::StatementIssue, "statements")
            .resource(id)
            .patient(locked.patient),
    )
    .await?;
    Ok(Money::new(totals.patient, locked.currency))
}

/// Voids a statement: a draft is simply set aside; an issued one's charge is taken back by a
/// `void` entry, so what was paid on it becomes a credit on the account (to refund or to put
/// toward another statement).
pub async fn void(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    id: StatementId,
    seen_version: i32,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let locked = lock(tx, id, Some(seen_version)).await?;
    if locked.status == Status::Void {
        return Err(BillingError::Voided);
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(BillingError::field(
            "reason",
            "Say why the statement is voided; the patient's account keeps it.",
        ));
    }
    if reason.chars().count() > 300 || reason.chars().any(char::is_control) {
        return Err(BillingError::field(
            "reason",
            "Keep the reason to one line of at most 300 characters.",
        ));
    }
    let charged = sqlx::query_scalar!(
        "SELECT amount_minor FROM ledger_entries WHERE statement_id = $1 AND kind = 'charge'",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE statements SET status = 'void', voided_at = $2, voided_by = $3, void_reason = $4,
                               version = version + 1
         WHERE id = $1",
        id.as_uuid(),
        now,
        scope.user_id().as_uuid(),
        reason,
    )
    .execute(tx.conn())
    .await?;
    super::plans::end_with_statement(tx, ctx, id, locked.patient, scope.user_id(), now).await?;
    if let Some(charged) = charged {
        sqlx::query!(
            "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                         statement_id, balance_after_minor, created_by,
                                         created_at)
             VALUES ($1, $2, 0, 'void', $3, $4, $5, 0, $6, $7)",
            uuid::Uuid::now_v7(),
            locked.account,
            -charged,
            locked.currency.as_str(),
            id.as_uuid(),
            scope.user_id().as_uuid(),
            now,
        )
        .execute(tx.conn())
        .await?;
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::StatementVoid, "statements")
            .resource(id)
            .patient(locked.patient),
    )
    .await?;
    Ok(())
}

/// Whom to tell about an issued statement, by the patient's own choice of channels. `None`
/// (send nothing) when it was voided since or the patient chose neither.
pub struct NoticeTarget {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The worker's read before a new-statement notice (audited as the clinic's system).
pub async fn for_notice(
    tx: &mut TenantTx,
    id: StatementId,
    now: DateTime<Utc>,
) -> Result<Option<NoticeTarget>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT s.patient_id, p.email, p.reminder_email, p.reminder_sms,
                CASE WHEN p.phone_verified_at IS NOT NULL THEN p.phone END AS phone
         FROM statements s JOIN patients p ON p.id = s.patient_id
         WHERE s.id = $1 AND s.status = 'issued'",
        id.as_uuid()
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
        AuditEvent::new(Action::StatementNotice, "statements")
            .resource(id)
            .patient(PatientId::from_uuid(r.patient_id)),
    )
    .await?;
    Ok(Some(NoticeTarget {
        email: r.email.filter(|_| r.reminder_email),
        phone: r.phone.filter(|_| r.reminder_sms),
    }))
}
