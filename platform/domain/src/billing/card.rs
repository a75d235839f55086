//! Card payments through the clinic's own Stripe account: a patient (or someone with the
//! statement's code) starts one, which records a pending payment before Stripe is asked for a
//! Checkout page; Stripe's answer — the page's return, a webhook, or the reconciliation job —
//! settles it. Settling reads the object's current state and is idempotent: the payment row is
//! locked, a succeeded payment is never settled again, and the ledger takes one entry per
//! payment (a unique index), so events delivered twice or out of order change nothing.

use chrono::{DateTime, Utc};
use portal_stripe::{CheckoutState, PaymentState};
use portal_tenants::TenantTx;

use super::payments::{check_amount, payable};
use super::{BillingError, Currency, Money};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::PatientScope;
use crate::ids::{PatientId, PaymentId, StatementId};

/// Stripe's smallest card charge (50 cents in dollars; the same number of minor units is
/// asked of every currency).
pub const MIN_CARD_MINOR: i64 = 50;

/// Who is paying by card.
pub enum Payer<'a> {
    /// The signed-in patient, for their own statement.
    Patient(&'a PatientScope),
    /// Someone with the statement's code, not signed in.
    Guest,
}

/// A card payment recorded and waiting for Stripe's Checkout page.
#[derive(Debug, Clone)]
pub struct CardStart {
    pub payment: PaymentId,
    pub account: String,
    pub amount: Money,
    pub statement_number: i64,
    /// Stripe is to keep the card for the statement's plan's automatic payments
    /// (`plans::save_card_with`).
    pub saves_card: bool,
}

/// Records a pending card payment of `amount_raw` toward a statement. Refused when the clinic
/// does not take cards, the amount is not more than zero and at most what is due, or (for a
/// patient) the statement is not theirs (`NotFound`).
pub async fn start(
    tx: &mut TenantTx,
    payer: Payer<'_>,
    ctx: &AuditContext,
    statement: StatementId,
    amount_raw: &str,
    now: DateTime<Utc>,
) -> Result<CardStart, BillingError> {
    let account = super::setup::charging_account(tx)
        .await?
        .ok_or(BillingError::CardsUnavailable)?;
    let p = payable(tx, statement).await?;
    if let Payer::Patient(scope) = payer
        && scope.patient_id() != p.patient
    {
        return Err(BillingError::NotFound);
    }
    let amount = check_amount(amount_raw, &p)?;
    if amount.minor < MIN_CARD_MINOR {
        return Err(BillingError::field(
            "amount",
            format!(
                "Card payments start at {}. Pay at least that, or pay at the desk.",
                Money::new(MIN_CARD_MINOR, amount.currency)
            ),
        ));
    }
    let number = sqlx::query_scalar!(
        "SELECT number FROM statements WHERE id = $1",
        statement.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    let id = PaymentId::new();
    let payer_code = match payer {
        Payer::Patient(_) => "patient",
        Payer::Guest => "guest",
    };
    sqlx::query!(
        "INSERT INTO payments (id, account_id, statement_id, method, status, amount_minor,
                               currency, payer, created_at)
         VALUES ($1, $2, $3, 'card', 'pending', $4, $5, $6, $7)",
        id.as_uuid(),
        p.account,
        statement.as_uuid(),
        amount.minor,
        p.currency.as_str(),
        payer_code,
        now,
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PaymentStart, "payments")
            .resource(id)
            .patient(p.patient),
    )
    .await?;
    Ok(CardStart {
        payment: id,
        account,
        amount,
        statement_number: number,
        saves_card: false,
    })
}

/// Notes the Checkout page a pending payment waits on.
pub async fn attach_checkout(
    tx: &mut TenantTx,
    payment: PaymentId,
    session: &CheckoutState,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payments SET stripe_checkout_session = $2, checkout_url = $3
         WHERE id = $1 AND status = 'pending'",
        payment.as_uuid(),
        session.id,
        session.url,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Gives up on a payment that never reached Stripe's page (Stripe refused or was down).
pub async fn abandon(
    tx: &mut TenantTx,
    payment: PaymentId,
    failure: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payments SET status = 'canceled', failure = $2
         WHERE id = $1 AND status = 'pending'",
        payment.as_uuid(),
        failure,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A card payment as its pages show it.
#[derive(Debug, Clone)]
pub struct CardPayment {
    pub id: PaymentId,
    pub statement: Option<StatementId>,
    pub patient: PatientId,
    pub status: String,
    pub amount: Money,
    pub checkout_session: Option<String>,
    pub failure: Option<String>,
    /// `patient`, `guest` or `staff`.
    pub payer: String,
}

/// A card payment by id (the return from Checkout names it).
pub async fn payment(tx: &mut TenantTx, id: PaymentId) -> Result<Option<CardPayment>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT p.id, p.statement_id, a.patient_id, p.status, p.amount_minor, p.currency,
                p.stripe_checkout_session, p.failure, p.payer
         FROM payments p JOIN billing_accounts a ON a.id = p.account_id
         WHERE p.id = $1 AND p.method = 'card'",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| CardPayment {
        id,
        statement: r.statement_id.map(StatementId::from_uuid),
        patient: PatientId::from_uuid(r.patient_id),
        status: r.status,
        amount: Money::new(
            r.amount_minor,
            Currency::parse(&r.currency).unwrap_or(Currency::USD),
        ),
        checkout_session: r.stripe_checkout_session,
        failure: r.failure,
        payer: r.payer,
    }))
}

/// Audits that a payment's outcome was shown (to its payer, after Stripe's page).
pub async fn seen(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    payment: &CardPayment,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PaymentView, "payments")
            .resource(payment.id)
            .patient(payment.patient),
    )
    .await
}

/// What settling found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The payment succeeded now (its ledger entry was written).
    Paid,
    /// It had already been settled; nothing changed.
    Already,
    /// Not (yet) paid; the payment's state was brought up to date.
    NotPaid,
    /// No payment of ours matches.
    Unknown,
    /// Stripe took it in another currency than the statement's: left for reconciliation.
    CurrencyMismatch,
}

/// Settles the payment a Checkout Session is for, from the session's current state.
pub async fn apply_checkout(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    session: &CheckoutState,
    now: DateTime<Utc>,
) -> Result<Settled, BillingError> {
    let Some(id) = find(tx, Some(&session.id), None, &session.metadata).await? else {
        return Ok(Settled::Unknown);
    };
    if session.paid {
        let received = session.amount_total.unwrap_or(0);
        let currency = session.currency.as_deref().unwrap_or_default();
        return settle(
            tx,
            ctx,
            id,
            session.payment_intent.as_deref(),
            received,
            currency,
            now,
        )
        .await;
    }
    if session.status == "expired" {
        close(
            tx,
            id,
            "canceled",
            "The payment page expired before anything was paid.",
        )
        .await?;
    }
    Ok(Settled::NotPaid)
}

/// Settles the payment a PaymentIntent is for, from the intent's current state.
pub async fn apply_payment_intent(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    intent: &PaymentState,
    now: DateTime<Utc>,
) -> Result<Settled, BillingError> {
    let Some(id) = find(tx, None, Some(&intent.id), &intent.metadata).await? else {
        return Ok(Settled::Unknown);
    };
    match intent.status.as_str() {
        "succeeded" => {
            let received = intent.amount_received;
            let settled = settle(
                tx,
                ctx,
                id,
                Some(&intent.id),
                received,
                &intent.currency,
                now,
            )
            .await?;
            super::plans::take_card(
                tx,
                ctx,
                id,
                intent.customer.as_deref(),
                intent.payment_method.as_deref(),
                now,
            )
            .await?;
            Ok(settled)
        }
        "canceled" => {
            close(tx, id, "canceled", "The payment was cancelled.").await?;
            Ok(Settled::NotPaid)
        }
        _ => Ok(Settled::NotPaid),
    }
}

/// Our payment for a session or intent: by the ids Stripe gave us, else by the payment id we
/// put in the metadata.
async fn find(
    tx: &mut TenantTx,
    session: Option<&str>,
    intent: Option<&str>,
    metadata: &std::collections::HashMap<String, String>,
) -> Result<Option<PaymentId>, sqlx::Error> {
    // Defence in depth: an object made for another clinic (it names that clinic) is never
    // matched here, whatever its other ids say.
    if metadata
        .get("clinic")
        .is_some_and(|c| *c != tx.tenant_id().to_string())
    {
        return Ok(None);
    }
    let by_meta = metadata
        .get("payment")
        .and_then(|p| PaymentId::parse(p))
        .map(|p| p.as_uuid());
    let id = sqlx::query_scalar!(
        "SELECT id FROM payments
         WHERE method = 'card'
           AND (stripe_checkout_session = $1 OR stripe_payment_intent = $2 OR id = $3)
         LIMIT 1",
        session,
        intent,
        by_meta,
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(id.map(PaymentId::from_uuid))
}

async fn close(
    tx: &mut TenantTx,
    id: PaymentId,
    status: &str,
    failure: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payments SET status = $2, failure = $3 WHERE id = $1 AND status = 'pending'",
        id.as_uuid(),
        status,
        failure,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Marks a payment succeeded with what Stripe received and enters it in the ledger, once.
/// Money that arrived for a statement voided meanwhile, or beyond what was due, is still
/// entered (it was taken): the account shows a credit and reconciliation lists it.
async fn settle(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    id: PaymentId,
    intent: Option<&str>,
    received: i64,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<Settled, BillingError> {
    let row = sqlx::query!(
        "SELECT p.status, p.account_id, p.statement_id, p.currency, a.patient_id
         FROM payments p JOIN billing_accounts a ON a.id = p.account_id
         WHERE p.id = $1 FOR UPDATE OF p",
        id.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if row.status == "succeeded" {
        return Ok(Settled::Already);
    }
    if received <= 0 {
        return Ok(Settled::NotPaid);
    }
    if !currency.eq_ignore_ascii_case(&row.currency) {
        sqlx::query!(
            "UPDATE payments SET failure = $2, stripe_payment_intent = coalesce($3, stripe_payment_intent)
             WHERE id = $1",
            id.as_uuid(),
            format!("Stripe took {currency} for a statement in {}.", row.currency),
            intent,
        )
        .execute(tx.conn())
        .await?;
        return Ok(Settled::CurrencyMismatch);
    }
    sqlx::query!(
        "UPDATE payments SET status = 'succeeded', amount_minor = $2, succeeded_at = $3,
                            stripe_payment_intent = coalesce($4, stripe_payment_intent),
                            failure = NULL
         WHERE id = $1",
        id.as_uuid(),
        received,
        now,
        intent,
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                     statement_id, payment_id, balance_after_minor, created_at)
         VALUES ($1, $2, 0, 'payment', $3, $4, $5, $6, 0, $7)",
        uuid::Uuid::now_v7(),
        row.account_id,
        -received,
        row.currency,
        row.statement_id,
        id.as_uuid(),
        now,
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        &ctx.automatic(),
        now,
        AuditEvent::new(Action::PaymentRecord, "payments")
            .resource(id)
            .patient(PatientId::from_uuid(row.patient_id)),
    )
    .await?;
    super::print::queue_receipts(tx, &[id]).await?;
    if let Some(intent) = intent {
        super::disputes::relink(tx, ctx, intent, now).await?;
    }
    Ok(Settled::Paid)
}
