//! Statements and receipts on paper: what their PDFs say, and asking for them. A statement's
//! PDF is asked for by the patient (their own) or by billing staff (any issued or voided
//! statement, to post); a payment's receipt is printed when the patient or billing staff first
//! open it, and the transaction that takes a payment queues only the notice that says a
//! payment arrived.
//! Both print from the bills alone: the workers never read the health record for them.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use portal_tenants::{Tenant, TenantDb, TenantTx};

use super::money::{Currency, Money};
use super::statements::{self, Status};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::documents::Kind;
use crate::documents::printout::{Paragraph, Section};
use crate::documents::store::{self, DocumentError};
use crate::identity::scope::{BillingScope, PatientScope};
use crate::ids::{DocumentId, PatientId, PaymentId, StatementId};
use crate::jobs::{self, Job};

/// Who asks for a statement's PDF.
pub enum Asker<'a> {
    Patient(&'a PatientScope),
    Billing(&'a BillingScope),
}

/// Queues the PDF of a statement (issued or voided; a draft is not printed): the document and
/// whose it is. Another patient's statement, or a draft, is `NotFound`.
pub async fn request_statement(
    tx: &mut TenantTx,
    who: Asker<'_>,
    ctx: &AuditContext,
    id: StatementId,
    now: DateTime<Utc>,
) -> Result<(DocumentId, PatientId), DocumentError> {
    let (only, by) = match who {
        Asker::Patient(me) => (Some(me.patient_id()), me.user_id()),
        Asker::Billing(staff) => (None, staff.user_id()),
    };
    let patient = sqlx::query_scalar!(
        "SELECT patient_id FROM statements
         WHERE id = $1 AND status <> 'draft' AND ($2::uuid IS NULL OR patient_id = $2)",
        id.as_uuid(),
        only.map(|p| p.as_uuid()),
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)?;
    let patient = PatientId::from_uuid(patient);
    let doc = store::request_billing(tx, ctx, patient, Kind::Statement, id.as_uuid(), by, now)
        .await?
        .ok_or(DocumentError::NotFound)?;
    Ok((doc, patient))
}

/// Queues the email that tells each payment's patient the payment was received: one job for
/// all the payments just taken (a desk payment, a card payment settling, a drain's batch).
/// Their receipts are printed only when someone opens them ([`request_receipt`]).
pub(crate) async fn queue_receipts(
    tx: &mut TenantTx,
    payments: &[PaymentId],
) -> Result<(), jobs::EnqueueError> {
    if payments.is_empty() {
        return Ok(());
    }
    jobs::enqueue(
        tx,
        &Job::PaymentReceipts {
            payment_ids: payments.to_vec(),
        },
    )
    .await?;
    Ok(())
}

/// A payment's receipt as a PDF document of its patient: the one already made, or a new one
/// queued to print (audited as the asker's request). Only a payment that was taken has one;
/// another patient's payment, or one not taken, is `NotFound`.
pub async fn request_receipt(
    tx: &mut TenantTx,
    who: Asker<'_>,
    ctx: &AuditContext,
    payment: PaymentId,
    now: DateTime<Utc>,
) -> Result<(DocumentId, PatientId), DocumentError> {
    let (only, by) = match who {
        Asker::Patient(me) => (Some(me.patient_id()), me.user_id()),
        Asker::Billing(staff) => (None, staff.user_id()),
    };
    let found = sqlx::query!(
        r#"SELECT a.patient_id, d.id AS "document?"
           FROM payments p
           JOIN billing_accounts a ON a.id = p.account_id
           LEFT JOIN documents d ON d.kind = 'receipt' AND d.subject_id = p.id
           WHERE p.id = $1 AND p.status = 'succeeded'
             AND ($2::uuid IS NULL OR a.patient_id = $2)"#,
        payment.as_uuid(),
        only.map(|p| p.as_uuid()),
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)?;
    let patient = PatientId::from_uuid(found.patient_id);
    if let Some(doc) = found.document {
        return Ok((DocumentId::from_uuid(doc), patient));
    }
    let made =
        store::request_billing(tx, ctx, patient, Kind::Receipt, payment.as_uuid(), by, now).await?;
    let doc = match made {
        Some(doc) => doc,
        // Someone else asked for it at the same moment: theirs is the one.
        None => sqlx::query_scalar!(
            "SELECT id FROM documents WHERE kind = 'receipt' AND subject_id = $1",
            payment.as_uuid()
        )
        .fetch_one(tx.conn())
        .await
        .map(DocumentId::from_uuid)?,
    };
    Ok((doc, patient))
}

/// Who is to be told that these payments of the clinic were received and not told yet: each
/// payment with the email address the notice goes to (`None` when the patient has none or
/// does not want email), audited as the clinic's system. A payment gone or no longer taken is
/// left out.
pub async fn receipt_notice_targets(
    tx: &mut TenantTx,
    payments: &[PaymentId],
    now: DateTime<Utc>,
) -> Result<Vec<(PaymentId, Option<String>)>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = payments.iter().map(|p| p.as_uuid()).collect();
    let rows = sqlx::query!(
        "SELECT p.id, a.patient_id, pt.email, pt.reminder_email
         FROM payments p
         JOIN billing_accounts a ON a.id = p.account_id
         JOIN patients pt ON pt.id = a.patient_id
         WHERE p.id = ANY($1) AND p.status = 'succeeded' AND p.receipt_noticed_at IS NULL
         ORDER BY p.id",
        &ids
    )
    .fetch_all(tx.conn())
    .await?;
    let read: Vec<AuditEvent> = rows
        .iter()
        .map(|r| {
            AuditEvent::new(Action::ReceiptNotice, "payments")
                .resource(PaymentId::from_uuid(r.id))
                .patient(PatientId::from_uuid(r.patient_id))
        })
        .collect();
    audit::record_many(tx, &AuditContext::default(), now, &read).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let to = r.email.filter(|_| r.reminder_email);
            (PaymentId::from_uuid(r.id), to)
        })
        .collect())
}

/// Marks these payments' notices as sent, in a transaction of its own whose commit does not
/// wait for the disk (`synchronous_commit` off for it alone). One is made after every few
/// emails sent, and a mark lost in a database crash (the last fraction of a second's) costs
/// only those emails sent a second time — never a payment, an event, an audit row or a record.
pub async fn receipts_noticed_alone(
    db: &TenantDb,
    tenant: &Tenant,
    payments: &[PaymentId],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if payments.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin(tenant).await?;
    sqlx::query_scalar!("SELECT set_config('synchronous_commit', 'off', true)")
        .fetch_one(tx.conn())
        .await?;
    receipts_noticed(&mut tx, payments, now).await?;
    tx.commit().await
}

/// Marks these payments' notices as sent (or as having nowhere to go), so a retry of their job
/// does not send them again.
pub async fn receipts_noticed(
    tx: &mut TenantTx,
    payments: &[PaymentId],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if payments.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = payments.iter().map(|p| p.as_uuid()).collect();
    sqlx::query!(
        "UPDATE payments SET receipt_noticed_at = $2
         WHERE id = ANY($1) AND receipt_noticed_at IS NULL",
        &ids,
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Where a printed statement sends someone to pay.
#[derive(Debug, Clone)]
pub struct PayLinks {
    /// The patient's bills, signed in.
    pub bills: String,
    /// The page for paying with a statement's code, without an account.
    pub guest: String,
}

/// The sections of a statement's or a receipt's PDF. `None`: its subject is gone (it cannot
/// be printed again the same way).
pub async fn sections(
    tx: &mut TenantTx,
    kind: Kind,
    subject: uuid::Uuid,
    links: &PayLinks,
    tz: Tz,
) -> Result<Option<Vec<Section>>, sqlx::Error> {
    match kind {
        Kind::Statement => statement(tx, StatementId::from_uuid(subject), links, tz).await,
        Kind::Receipt => receipt(tx, PaymentId::from_uuid(subject), tz).await,
        _ => Ok(None),
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

fn local_day(t: DateTime<Utc>, tz: Tz) -> String {
    day(t.with_timezone(&tz).date_naive())
}

fn words(heading: &str, body: String) -> Paragraph {
    Paragraph {
        heading: heading.to_owned(),
        body,
    }
}

fn method_label(method: &str) -> &'static str {
    match method {
        "card" => "Card",
        "cash" => "Cash",
        "cheque" => "Cheque",
        _ => "Other",
    }
}

async fn statement(
    tx: &mut TenantTx,
    id: StatementId,
    links: &PayLinks,
    tz: Tz,
) -> Result<Option<Vec<Section>>, sqlx::Error> {
    let Some(s) = statements::read(tx, id, None).await? else {
        return Ok(None);
    };
    let head = &s.summary;
    let mut sections = vec![Section {
        heading: format!("Statement {}", head.number),
        columns: vec!["Issued".into(), "Pay by".into(), "Status".into()],
        rows: vec![vec![
            head.issued_at.map(|t| local_day(t, tz)).unwrap_or_default(),
            head.due_on.map(day).unwrap_or_default(),
            head.status.label().to_owned(),
        ]],
        ..Section::default()
    }];
    let mut rows: Vec<Vec<String>> = s
        .lines
        .iter()
        .map(|l| {
            vec![
                day(l.service_date),
                l.description.clone(),
                l.code.clone().unwrap_or_default(),
                l.charge.to_string(),
                l.insurance_paid.to_string(),
                l.adjustment.to_string(),
                l.patient.to_string(),
            ]
        })
        .collect();
    rows.push(vec![
        String::new(),
        "Total".into(),
        String::new(),
        s.total_charges.to_string(),
        s.total_insurance.to_string(),
        s.total_adjustments.to_string(),
        s.total_patient.to_string(),
    ]);
    sections.push(Section {
        heading: "Services".into(),
        columns: [
            "Date",
            "Service",
            "Code",
            "Charge",
            "Insurance paid",
            "Adjustment",
            "You owe",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        ..Section::default()
    });
    sections.push(Section {
        heading: "Payments".into(),
        columns: ["Date", "How", "Amount", "Refunded", "Taken back"]
            .map(String::from)
            .to_vec(),
        rows: s
            .payments
            .iter()
            .filter(|p| p.status == "succeeded")
            .map(|p| {
                vec![
                    local_day(p.at, tz),
                    p.method_label().to_owned(),
                    p.amount.to_string(),
                    if p.refunded.minor > 0 {
                        p.refunded.to_string()
                    } else {
                        String::new()
                    },
                    if p.disputed.minor > 0 {
                        p.disputed.to_string()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect(),
        empty: "No payments yet.".into(),
        ..Section::default()
    });
    let mut due = vec![words(
        "Amount due",
        Money::new(head.due.minor.max(0), s.currency).to_string(),
    )];
    if head.due.minor < 0 {
        due.push(words(
            "In credit",
            format!(
                "{} more was paid than is owed; the clinic will refund or apply it.",
                Money::new(-head.due.minor, s.currency)
            ),
        ));
    }
    if head.status == Status::Void {
        due = vec![words(
            "Voided",
            format!(
                "This statement was voided{}; nothing is owed on it.",
                s.void_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        )];
    }
    sections.push(Section {
        heading: "What you owe".into(),
        paragraphs: due,
        ..Section::default()
    });
    if head.status == Status::Issued && head.due.minor > 0 {
        let mut how = vec![words(
            "Online, signed in",
            format!("Sign in at {} and choose this statement.", links.bills),
        )];
        if let Some(code) = &s.guest_code {
            how.push(words(
                "Online, without an account",
                format!("Go to {} and enter the code {code}.", links.guest),
            ));
        }
        how.push(words(
            "At the clinic",
            "By card, cash or cheque at the front desk.".into(),
        ));
        sections.push(Section {
            heading: "How to pay".into(),
            paragraphs: how,
            ..Section::default()
        });
    }
    Ok(Some(sections))
}

async fn receipt(
    tx: &mut TenantTx,
    id: PaymentId,
    tz: Tz,
) -> Result<Option<Vec<Section>>, sqlx::Error> {
    let Some(p) = sqlx::query!(
        r#"SELECT p.method, p.amount_minor, p.refunded_minor, p.disputed_minor, p.currency,
                  p.reference,
                  p.received_on, coalesce(p.succeeded_at, p.created_at) AS "at!",
                  s.number, s.status AS statement_status,
                  coalesce((SELECT sum(e.amount_minor) FROM ledger_entries e
                            WHERE e.statement_id = s.id), 0)::bigint AS "due!"
           FROM payments p JOIN statements s ON s.id = p.statement_id
           WHERE p.id = $1 AND p.status = 'succeeded'"#,
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let currency = Currency::parse(&p.currency).unwrap_or(Currency::USD);
    let money = |m: i64| Money::new(m, currency);
    let received = p
        .received_on
        .map(day)
        .unwrap_or_else(|| local_day(p.at, tz));
    let mut how = method_label(&p.method).to_owned();
    if let Some(r) = p.reference.filter(|r| !r.is_empty()) {
        how = format!("{how} ({r})");
    }
    let mut sections = vec![Section {
        heading: "Payment received".into(),
        columns: ["Received", "How", "Statement", "Amount"]
            .map(String::from)
            .to_vec(),
        rows: vec![vec![
            received,
            how,
            p.number.to_string(),
            money(p.amount_minor).to_string(),
        ]],
        ..Section::default()
    }];
    let mut said = Vec::new();
    if p.refunded_minor > 0 {
        said.push(words(
            "Refunded",
            format!("{} of this payment was refunded.", money(p.refunded_minor)),
        ));
    }
    if p.disputed_minor > 0 {
        said.push(words(
            "Taken back",
            format!(
                "{} of this payment was taken back by the card's bank after a dispute.",
                money(p.disputed_minor)
            ),
        ));
    }
    let left = if p.statement_status == "void" {
        "That statement was voided.".to_owned()
    } else if p.due > 0 {
        format!("{} is still due on statement {}.", money(p.due), p.number)
    } else {
        format!("Nothing more is due on statement {}.", p.number)
    };
    said.push(words("Your statement now", left));
    sections.push(Section {
        heading: "Thank you".into(),
        paragraphs: said,
        ..Section::default()
    });
    Ok(Some(sections))
}

/// Is `id` a statement's or receipt's PDF of `patient`, or a photo of their insurance card?
/// Billing staff reach only those, never the patient's other documents.
async fn is_bill_document(
    tx: &mut TenantTx,
    patient: PatientId,
    id: DocumentId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM documents
                          WHERE id = $1 AND patient_id = $2
                            AND kind IN ('statement', 'receipt', 'insurance_card'))
                  AS "found!""#,
        id.as_uuid(),
        patient.as_uuid()
    )
    .fetch_one(tx.conn())
    .await
}

/// A statement's or receipt's PDF of a patient, for billing staff (audited).
pub async fn document_for_billing(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<store::Document>, sqlx::Error> {
    if !is_bill_document(tx, patient, id).await? {
        return Ok(None);
    }
    store::one(tx, ctx, patient, id, now).await
}

/// Its content, for billing staff (audited).
pub async fn download_for_billing(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<store::Download>, sqlx::Error> {
    if !is_bill_document(tx, patient, id).await? {
        return Ok(None);
    }
    store::download(tx, ctx, patient, id, now).await
}

/// Queues a failed statement or receipt again, for billing staff.
pub async fn retry_for_billing(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<(), DocumentError> {
    if !is_bill_document(tx, patient, id).await? {
        return Err(DocumentError::NotFound);
    }
    store::retry_of(tx, patient, ctx, id, now).await
}
