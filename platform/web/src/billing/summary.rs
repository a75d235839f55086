//! The billing summary (`/billing/summary?by=day|month`): billed, received and refunded for
//! each of the last 30 days or 12 months in the clinic's time zone, as a bar chart (inline
//! SVG) with the same numbers in a table for anyone who cannot see it.

use askama::Template;
use poem::web::{Data, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::Money;
use portal_domain::billing::summary::{self, Period};
use portal_domain::identity::scope::SignedIn;
use portal_domain::scheduling::clinic_tz;

use super::bars_svg::{self, Pair};
use crate::AppState;
use crate::pages::{Chrome, db, render};

struct RowView {
    period: String,
    billed: String,
    received: String,
    refunded: String,
    net: String,
}

#[derive(Template)]
#[template(path = "billing_summary.html")]
struct SummaryPage {
    chrome: Chrome,
    by_month: bool,
    chart: String,
    rows: Vec<RowView>,
    billed: String,
    received: String,
    refunded: String,
    net: String,
}

#[derive(serde::Deserialize)]
pub struct By {
    by: Option<String>,
}

/// An amount on the axis: whole units ("$1,200"), enough for a scale.
fn whole(m: Money) -> String {
    let full = m.to_string();
    match full.split_once('.') {
        // "$1,204.50" → "$1,204"; "1,204.500 KWD" → "1,204 KWD".
        Some((head, tail)) => {
            let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head}{rest}")
        }
        None => full,
    }
}

/// `GET /billing/summary`.
#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<By>,
) -> poem::Result<Response> {
    let (chrome, _me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let period = Period::parse(q.by.as_deref().unwrap_or("day"));
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (currency, buckets) = summary::totals(&mut tx, &scope, period, tz, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let label = |d: chrono::NaiveDate, long: bool| match (period, long) {
        (Period::Month, _) => d.format("%b %Y").to_string(),
        (Period::Day, false) => d.format("%-d %b").to_string(),
        (Period::Day, true) => d.format("%a %-d %b %Y").to_string(),
    };
    let pairs: Vec<Pair> = buckets
        .iter()
        .map(|b| Pair {
            label: label(b.start, false),
            billed: b.billed.minor,
            received: b.received.minor - b.refunded.minor,
        })
        .collect();
    let unit = 10_i64.pow(currency.decimals());
    let chart = bars_svg::render(
        &pairs,
        |m| {
            let amount = Money::new(m, currency);
            if m % unit == 0 {
                whole(amount)
            } else {
                amount.to_string()
            }
        },
        "summary-title",
        "summary-desc",
    );
    let sum = |f: fn(&summary::Bucket) -> i64| Money::new(buckets.iter().map(f).sum(), currency);
    render(&SummaryPage {
        by_month: period == Period::Month,
        chart,
        // Only periods where something happened: thirty empty days are not worth reading.
        rows: buckets
            .iter()
            .rev()
            .filter(|b| b.billed.minor != 0 || b.received.minor != 0 || b.refunded.minor != 0)
            .map(|b| RowView {
                period: label(b.start, true),
                billed: b.billed.to_string(),
                received: b.received.to_string(),
                refunded: b.refunded.to_string(),
                net: Money::new(b.received.minor - b.refunded.minor, currency).to_string(),
            })
            .collect(),
        billed: sum(|b| b.billed.minor).to_string(),
        received: sum(|b| b.received.minor).to_string(),
        refunded: sum(|b| b.refunded.minor).to_string(),
        net: sum(|b| b.received.minor - b.refunded.minor).to_string(),
        chrome,
    })
    .map(IntoResponse::into_response)
}
