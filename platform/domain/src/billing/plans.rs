//! Payment plans: billing staff split what is due on an issued statement into instalments a
//! month apart; the patient pays them by hand, or saves a card while paying one and lets a
//! worker charge it on each due date (autopay, `billing::autopay`).
//!
//! What each instalment has been paid is not stored. It follows from what is still due on the
//! statement (its ledger), taken in due-date order: a payment at the desk, by a guest or by
//! card, a refund or a chargeback moves the plan exactly as it moves the statement.

use chrono::{DateTime, Months, NaiveDate, Utc};
use portal_tenants::TenantTx;

use super::card::MIN_CARD_MINOR;
use super::payments::payable;
use super::{BillingError, Currency, Money};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{BillingScope, PatientScope};
use crate::ids::{PaymentId, PlanId, StatementId};

/// The most instalments a plan may have (two years, monthly).
pub const MAX_INSTALMENTS: u32 = 24;

/// Where an instalment stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstalmentState {
    Paid,
    /// Its date has passed and some of it is unpaid.
    Overdue,
    /// Due today, not (all) paid.
    DueToday,
    Upcoming,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Instalment {
    pub seq: i32,
    pub due_on: NaiveDate,
    pub amount: Money,
    /// How much of it the statement's payments cover.
    pub paid: Money,
}

impl Instalment {
    pub fn left(&self) -> Money {
        Money::new(self.amount.minor - self.paid.minor, self.amount.currency)
    }

    pub fn state(&self, today: NaiveDate) -> InstalmentState {
        if self.paid.minor >= self.amount.minor {
            InstalmentState::Paid
        } else if self.due_on < today {
            InstalmentState::Overdue
        } else if self.due_on == today {
            InstalmentState::DueToday
        } else {
            InstalmentState::Upcoming
        }
    }
}

/// Automatic payments of a plan by a saved card.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Autopay {
    pub since: DateTime<Utc>,
    /// Why the last automatic charge of this card failed, if it did: the card is not tried
    /// again for that instalment until the patient saves another.
    pub declined: Option<String>,
}

/// A statement's active payment plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub id: PlanId,
    pub version: i32,
    pub total: Money,
    pub instalments: Vec<Instalment>,
    pub autopay: Option<Autopay>,
    pub created_at: DateTime<Utc>,
}

impl Plan {
    /// The first instalment not paid in full.
    pub fn next_unpaid(&self) -> Option<&Instalment> {
        self.instalments
            .iter()
            .find(|i| i.paid.minor < i.amount.minor)
    }

    /// What autopay takes on `today`: the latest instalment due by then (a charge is tried
    /// once per instalment date and card), and what is left of every instalment due by then,
    /// so a declined one is caught up on the next date.
    pub fn owed_by(&self, today: NaiveDate) -> Option<(i32, i64)> {
        let due: Vec<&Instalment> = self
            .instalments
            .iter()
            .filter(|i| i.due_on <= today && i.paid.minor < i.amount.minor)
            .collect();
        let latest = due.last()?;
        Some((latest.seq, due.iter().map(|i| i.left().minor).sum()))
    }
}

/// Splits `total` into `count` instalments a month apart from `first`; the odd cents go on
/// the first ones, so no two differ by more than one cent. A date past the end of a shorter
/// month falls on its last day (31 January, 28 February, 31 March).
pub fn schedule(total: i64, count: u32, first: NaiveDate) -> Vec<(NaiveDate, i64)> {
    let n = i64::from(count.max(1));
    let (base, odd) = (total / n, total % n);
    (0..count.max(1))
        .map(|k| {
            let day = first
                .checked_add_months(Months::new(k))
                .unwrap_or(NaiveDate::MAX);
            (day, base + i64::from(i64::from(k) < odd))
        })
        .collect()
}

/// Gives each instalment its part of `paid`, in due-date order.
fn spread(rows: &[(i32, NaiveDate, i64)], paid: i64, currency: Currency) -> Vec<Instalment> {
    let mut left = paid.max(0);
    rows.iter()
        .map(|&(seq, due_on, amount)| {
            let covers = left.min(amount);
            left -= covers;
            Instalment {
                seq,
                due_on,
                amount: Money::new(amount, currency),
                paid: Money::new(covers, currency),
            }
        })
        .collect()
}

/// The statement's active plan, with `due_now` (what is still due on the statement) spread
/// over its instalments.
pub(crate) async fn active(
    tx: &mut TenantTx,
    statement: StatementId,
    due_now: i64,
) -> Result<Option<Plan>, sqlx::Error> {
    let Some(p) = sqlx::query!(
        "SELECT id, version, total_minor, currency, autopay_payment_method, autopay_since,
                created_at
         FROM payment_plans WHERE statement_id = $1 AND status = 'active'",
        statement.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let currency = Currency::parse(&p.currency).unwrap_or(Currency::USD);
    let rows: Vec<(i32, NaiveDate, i64)> = sqlx::query!(
        "SELECT seq, due_on, amount_minor FROM plan_instalments WHERE plan_id = $1 ORDER BY seq",
        p.id
    )
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|r| (r.seq, r.due_on, r.amount_minor))
    .collect();
    let autopay = match (&p.autopay_payment_method, p.autopay_since) {
        (Some(card), Some(since)) => {
            // Only the card's latest charge counts: a decline followed by a success is over.
            let declined = sqlx::query!(
                "SELECT p.status, p.failure
                 FROM autopay_attempts a JOIN payments p ON p.id = a.payment_id
                 WHERE a.plan_id = $1 AND a.payment_method = $2
                 ORDER BY a.created_at DESC LIMIT 1",
                p.id,
                card,
            )
            .fetch_optional(tx.conn())
            .await?
            .filter(|l| l.status == "failed")
            .map(|l| {
                l.failure
                    .unwrap_or_else(|| "The payment did not go through.".to_owned())
            });
            Some(Autopay { since, declined })
        }
        _ => None,
    };
    Ok(Some(Plan {
        id: PlanId::from_uuid(p.id),
        version: p.version,
        total: Money::new(p.total_minor, currency),
        instalments: spread(&rows, p.total_minor - due_now.max(0), currency),
        autopay,
        created_at: p.created_at,
    }))
}

/// Billing staff set up a plan for an issued statement with something due: `count_raw`
/// monthly instalments from `first_raw` (`YYYY-MM-DD`, today or later, within a year).
#[allow(clippy::too_many_arguments)]
pub async fn create(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    statement: StatementId,
    count_raw: &str,
    first_raw: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<PlanId, BillingError> {
    let p = payable(tx, statement).await?;
    if p.due <= 0 {
        return Err(BillingError::NothingDue);
    }
    let has_plan = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM payment_plans WHERE statement_id = $1 AND status = 'active')
           AS \"x!\"",
        statement.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if has_plan {
        return Err(BillingError::field(
            "count",
            "This statement already has a payment plan. End it before setting up another.",
        ));
    }
    let count = count_raw
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (2..=MAX_INSTALMENTS).contains(n))
        .ok_or_else(|| {
            BillingError::field(
                "count",
                format!("Choose between 2 and {MAX_INSTALMENTS} instalments."),
            )
        })?;
    let first = NaiveDate::parse_from_str(first_raw.trim(), "%Y-%m-%d").map_err(|_| {
        BillingError::field(
            "first_due",
            "Enter the first due date as year, month and day, such as 2027-01-15.",
        )
    })?;
    if first < today {
        return Err(BillingError::field(
            "first_due",
            "The first instalment cannot be due in the past.",
        ));
    }
    if first > today + chrono::Days::new(366) {
        return Err(BillingError::field(
            "first_due",
            "The first instalment must be due within a year.",
        ));
    }
    if p.due / i64::from(count) < MIN_CARD_MINOR {
        return Err(BillingError::field(
            "count",
            format!(
                "Each instalment would be less than {}. Choose fewer instalments.",
                Money::new(MIN_CARD_MINOR, p.currency)
            ),
        ));
    }
    let id = PlanId::new();
    sqlx::query!(
        "INSERT INTO payment_plans (id, statement_id, total_minor, currency, status, created_by,
                                    created_at)
         VALUES ($1, $2, $3, $4, 'active', $5, $6)",
        id.as_uuid(),
        statement.as_uuid(),
        p.due,
        p.currency.as_str(),
        scope.user_id().as_uuid(),
        now,
    )
    .execute(tx.conn())
    .await?;
    let plan = schedule(p.due, count, first);
    let seqs: Vec<i32> = (1..=plan.len() as i32).collect();
    let days: Vec<NaiveDate> = plan.iter().map(|(d, _)| *d).collect();
    let amounts: Vec<i64> = plan.iter().map(|(_, a)| *a).collect();
    sqlx::query!(
        "INSERT INTO plan_instalments (plan_id, seq, due_on, amount_minor)
         SELECT $1, * FROM unnest($2::int[], $3::date[], $4::bigint[])",
        id.as_uuid(),
        &seqs,
        &days,
        &amounts,
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PlanCreate, "payment_plans")
            .resource(id)
            .patient(p.patient),
    )
    .await?;
    Ok(id)
}

/// Billing staff end a statement's plan (what is due stays due; autopay stops with it).
pub async fn end(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    statement: StatementId,
    plan: PlanId,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let patient = sqlx::query_scalar!(
        "UPDATE payment_plans pl SET status = 'ended', ended_at = $3, ended_by = $4,
                end_reason = 'Ended by billing staff.', version = pl.version + 1
         FROM statements s
         WHERE pl.id = $1 AND pl.statement_id = $2 AND s.id = pl.statement_id
           AND pl.status = 'active'
         RETURNING s.patient_id",
        plan.as_uuid(),
        statement.as_uuid(),
        now,
        scope.user_id().as_uuid(),
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PlanEnd, "payment_plans")
            .resource(plan)
            .patient(crate::ids::PatientId::from_uuid(patient)),
    )
    .await?;
    Ok(())
}

/// A voided statement's plan ends with it (called by `statements::void`).
pub(crate) async fn end_with_statement(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    statement: StatementId,
    patient: crate::ids::PatientId,
    by: crate::ids::UserId,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let ended = sqlx::query_scalar!(
        "UPDATE payment_plans SET status = 'ended', ended_at = $2, ended_by = $3,
                end_reason = 'The statement was voided.', version = version + 1
         WHERE statement_id = $1 AND status = 'active'
         RETURNING id",
        statement.as_uuid(),
        now,
        by.as_uuid(),
    )
    .fetch_optional(tx.conn())
    .await?;
    if let Some(plan) = ended {
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::PlanEnd, "payment_plans")
                .resource(PlanId::from_uuid(plan))
                .patient(patient),
        )
        .await?;
    }
    Ok(())
}

/// Notes that a card payment the patient is starting should save its card for the plan's
/// automatic payments (it does once the payment succeeds with a card Stripe kept).
pub async fn save_card_with(
    tx: &mut TenantTx,
    payment: PaymentId,
    plan: PlanId,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payments SET saves_card_for = $2 WHERE id = $1 AND status = 'pending'",
        payment.as_uuid(),
        plan.as_uuid(),
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// After a card payment succeeded: if it was made to save its card for a plan, and Stripe
/// kept the card (a customer and a payment method), the plan's autopay uses it from now on.
/// Once per payment: the same payment read again changes nothing.
pub(crate) async fn take_card(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    payment: PaymentId,
    customer: Option<&str>,
    payment_method: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (Some(customer), Some(card)) = (customer, payment_method) else {
        return Ok(());
    };
    // Once per payment: the payment is marked as it hands its card over, so reading it again
    // (a repeated event, the reconciliation job) changes nothing.
    let taken = sqlx::query!(
        "WITH p AS (
             UPDATE payments SET card_taken_at = $4
             WHERE id = $1 AND status = 'succeeded' AND payer = 'patient'
               AND saves_card_for IS NOT NULL AND card_taken_at IS NULL
             RETURNING saves_card_for, statement_id, account_id)
         UPDATE payment_plans pl
         SET autopay_customer = $2, autopay_payment_method = $3, autopay_since = $4,
             version = pl.version + 1
         FROM p JOIN billing_accounts a ON a.id = p.account_id
         WHERE pl.id = p.saves_card_for AND pl.statement_id = p.statement_id
           AND pl.status = 'active'
         RETURNING pl.id, a.patient_id",
        payment.as_uuid(),
        customer,
        card,
        now,
    )
    .fetch_optional(tx.conn())
    .await?;
    if let Some(t) = taken {
        audit::record(
            tx,
            &ctx.automatic(),
            now,
            AuditEvent::new(Action::AutopayOn, "payment_plans")
                .resource(PlanId::from_uuid(t.id))
                .patient(crate::ids::PatientId::from_uuid(t.patient_id)),
        )
        .await?;
    }
    Ok(())
}

/// The patient turns off automatic payments of their statement's plan (the card is
/// forgotten here; paying by hand goes on as before).
pub async fn stop_autopay(
    tx: &mut TenantTx,
    scope: &PatientScope,
    ctx: &AuditContext,
    statement: StatementId,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let plan = sqlx::query_scalar!(
        "UPDATE payment_plans pl
         SET autopay_customer = NULL, autopay_payment_method = NULL, autopay_since = NULL,
             version = pl.version + 1
         FROM statements s
         WHERE pl.statement_id = s.id AND s.id = $1 AND s.patient_id = $2
           AND pl.status = 'active' AND pl.autopay_payment_method IS NOT NULL
         RETURNING pl.id",
        statement.as_uuid(),
        scope.patient_id().as_uuid(),
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AutopayOff, "payment_plans")
            .resource(PlanId::from_uuid(plan))
            .patient(scope.patient_id()),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_schedule_adds_up_with_the_odd_cents_first_and_month_ends_kept() {
        let plan = schedule(10_000, 3, day("2027-01-31"));
        assert_eq!(
            plan,
            vec![
                (day("2027-01-31"), 3_334),
                (day("2027-02-28"), 3_333),
                (day("2027-03-31"), 3_333),
            ]
        );
        assert_eq!(plan.iter().map(|(_, a)| a).sum::<i64>(), 10_000);
    }

    #[test]
    fn payments_cover_instalments_in_order_and_autopay_catches_up() {
        let rows = [
            (1, day("2027-01-10"), 5_000),
            (2, day("2027-02-10"), 5_000),
            (3, day("2027-03-10"), 5_000),
        ];
        let plan = Plan {
            id: PlanId::new(),
            version: 1,
            total: Money::new(15_000, Currency::USD),
            instalments: spread(&rows, 6_000, Currency::USD),
            autopay: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let states: Vec<_> = plan
            .instalments
            .iter()
            .map(|i| i.state(day("2027-02-10")))
            .collect();
        assert_eq!(
            states,
            [
                InstalmentState::Paid,
                InstalmentState::DueToday,
                InstalmentState::Upcoming
            ]
        );
        assert_eq!(plan.next_unpaid().map(|i| i.seq), Some(2));
        assert_eq!(plan.instalments[1].left().minor, 4_000);
        // Nothing due yet before the second date; on the third, both the rest of the second
        // and the whole third.
        assert_eq!(plan.owed_by(day("2027-02-09")), None);
        assert_eq!(plan.owed_by(day("2027-03-10")), Some((3, 9_000)));
    }
}
