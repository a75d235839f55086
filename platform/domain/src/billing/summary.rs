//! The billing office's day/month summary: for each of the last 30 days or 12 months, in the
//! clinic's own time zone, what was billed (statements issued), received (payments taken, by
//! card or at the desk) and refunded, in the clinic's currency. Totals only: no patient is
//! named, so nothing here is a read of one patient's data.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::money::{Currency, Money};
use crate::identity::scope::BillingScope;

/// How long each bar is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn parse(raw: &str) -> Period {
        if raw == "month" {
            Period::Month
        } else {
            Period::Day
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// How many periods the summary shows.
    pub fn count(self) -> u32 {
        match self {
            Period::Day => 30,
            Period::Month => 12,
        }
    }

    /// The first day of the period holding `day`.
    fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first day of the period `n` periods before the one starting `start`.
    fn back(self, start: NaiveDate, n: u32) -> NaiveDate {
        match self {
            Period::Day => start - chrono::Days::new(u64::from(n)),
            Period::Month => start.checked_sub_months(Months::new(n)).unwrap_or(start),
        }
    }
}

/// One bar: a period and its totals.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The period's first day, in the clinic's time zone.
    pub start: NaiveDate,
    pub billed: Money,
    pub received: Money,
    pub refunded: Money,
}

/// The last [`Period::count`] periods up to and including the one holding `now`, oldest first,
/// every period present (zero when nothing happened).
pub async fn totals(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    period: Period,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<(Currency, Vec<Bucket>), sqlx::Error> {
    let currency = super::clinic_currency(tx).await?;
    let last = period.start_of(now.with_timezone(&tz).date_naive());
    let first = period.back(last, period.count() - 1);
    let rows = sqlx::query!(
        r#"WITH events AS (
             SELECT 'billed' AS what, e.created_at AS at, e.amount_minor AS amount
             FROM ledger_entries e WHERE e.kind = 'charge' AND e.currency = $1
           UNION ALL
             SELECT 'received', p.succeeded_at, p.amount_minor
             FROM payments p WHERE p.status = 'succeeded' AND p.currency = $1
           UNION ALL
             SELECT 'refunded', r.succeeded_at, r.amount_minor
             FROM refunds r WHERE r.status = 'succeeded' AND r.currency = $1
           )
           SELECT date_trunc($2, at AT TIME ZONE $3)::date AS "start!", what AS "what!",
                  sum(amount)::bigint AS "total!"
           FROM events
           WHERE at IS NOT NULL AND (at AT TIME ZONE $3)::date >= $4
           GROUP BY 1, 2"#,
        currency.as_str(),
        period.code(),
        tz.name(),
        first,
    )
    .fetch_all(tx.conn())
    .await?;
    let money = |m: i64| Money::new(m, currency);
    let buckets = (0..period.count())
        .map(|i| {
            let start = period.back(last, period.count() - 1 - i);
            let total = |what: &str| {
                rows.iter()
                    .filter(|r| r.start == start && r.what == what)
                    .map(|r| r.total)
                    .sum::<i64>()
            };
            Bucket {
                start,
                billed: money(total("billed")),
                received: money(total("received")),
                refunded: money(total("refunded")),
            }
        })
        .collect();
    Ok((currency, buckets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_step_back_by_whole_days_and_months() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        assert_eq!(
            Period::Month.start_of(d),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
        assert_eq!(
            Period::Month.back(Period::Month.start_of(d), 11),
            NaiveDate::from_ymd_opt(2025, 4, 1).unwrap()
        );
        assert_eq!(
            Period::Day.back(d, 29),
            NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
        );
        assert_eq!(Period::parse("month"), Period::Month);
        assert_eq!(Period::parse("anything"), Period::Day);
    }
}
