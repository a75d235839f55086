//! Billing staff's books: the payouts with the payments inside each (`/billing/payouts`), and
//! reconciliation (`/billing/reconciliation`): anything
//! where the clinic's records and Stripe's disagree, each with what fixes it, and a button to
//! check with Stripe now.

use askama::Template;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::{payouts, reconcile};
use portal_domain::identity::scope::SignedIn;
use portal_domain::jobs::{self, Job};
use portal_domain::scheduling::clinic_tz;

use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::{Chrome, db, render, see_other, words};
use crate::request::form_field as field;

struct ItemView {
    label: &'static str,
    action: &'static str,
    reference: String,
    amount: String,
    other: String,
    patient: String,
    statement_href: String,
    statement: String,
    refund_href: String,
}

#[derive(Template)]
#[template(path = "billing_reconciliation.html")]
struct ReconciliationPage {
    chrome: Chrome,
    items: Vec<ItemView>,
    checked: String,
    connected: bool,
    notice: Option<&'static str>,
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /billing/reconciliation`.
#[handler]
pub async fn reconciliation(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (items, checked) = reconcile::items(&mut tx, &scope, &ctx, state.clock.now())
        .await
        .map_err(db)?;
    let connected = portal_domain::billing::setup::read(&mut tx)
        .await
        .map_err(db)?
        .account
        .is_some();
    tx.commit().await.map_err(db)?;
    render(&ReconciliationPage {
        items: items
            .iter()
            .map(|i| ItemView {
                label: i.kind.label(),
                action: i.kind.action(),
                reference: i.reference.clone(),
                amount: i.amount.to_string(),
                other: i.other.map(|o| o.to_string()).unwrap_or_default(),
                patient: i.patient_name.clone().unwrap_or_default(),
                statement_href: i
                    .statement
                    .map(|s| {
                        format!(
                            "/billing/statements/{}",
                            portal_domain::ids::StatementId::from_uuid(s)
                        )
                    })
                    .unwrap_or_default(),
                statement: i
                    .statement_number
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                refund_href: match (i.kind, i.payment) {
                    (reconcile::Kind::PaidOnVoid, Some(p)) => {
                        format!("/billing/payments/{p}/refund")
                    }
                    _ => String::new(),
                },
            })
            .collect(),
        checked: checked.map_or_else(
            || "never".to_owned(),
            |t| {
                t.with_timezone(&tz)
                    .format("%a %-d %b %Y, %-I:%M %p")
                    .to_string()
            },
        ),
        connected,
        notice: match q.done.as_deref() {
            Some("checking") => {
                Some("Checking with Stripe. Reload this page in a minute to see the result.")
            }
            _ => None,
        },
        chrome,
    })
    .map(IntoResponse::into_response)
}

/// `POST /billing/reconciliation/check`: queues a comparison with Stripe now.
#[handler]
pub async fn check(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, _, _) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    jobs::enqueue(&mut tx, &Job::StripeReconcile {})
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other("/billing/reconciliation?done=checking"))
}

struct PayoutLineView {
    kind: String,
    amount: String,
    fee: String,
    net: String,
    patient: String,
    statement: String,
    statement_href: String,
}

struct PayoutView {
    id: String,
    amount: String,
    arrival: String,
    status: String,
    adds_up: bool,
    lines: Vec<PayoutLineView>,
}

#[derive(Template)]
#[template(path = "billing_payouts.html")]
struct PayoutsPage {
    chrome: Chrome,
    payouts: Vec<PayoutView>,
}

fn kind_words(kind: &str) -> String {
    match kind {
        "charge" | "payment" => "Card payment".to_owned(),
        "refund" | "payment_refund" => "Refund".to_owned(),
        "adjustment" => "Adjustment (dispute)".to_owned(),
        other => other.replace('_', " "),
    }
}

/// `GET /billing/payouts`.
#[handler]
pub async fn payouts_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let list = payouts::recent(&mut tx, &scope, &ctx, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&PayoutsPage {
        payouts: list
            .iter()
            .map(|p| PayoutView {
                id: p.id.clone(),
                amount: p.amount.to_string(),
                arrival: words::date(p.arrival),
                status: p.status.clone(),
                adds_up: p.adds_up,
                lines: p
                    .lines
                    .iter()
                    .map(|l| PayoutLineView {
                        kind: kind_words(&l.kind),
                        amount: l.amount.to_string(),
                        fee: l.fee.to_string(),
                        net: l.net.to_string(),
                        patient: l.patient_name.clone().unwrap_or_default(),
                        statement: l
                            .statement_number
                            .map(|n| n.to_string())
                            .unwrap_or_default(),
                        statement_href: l
                            .statement
                            .map(|s| {
                                format!(
                                    "/billing/statements/{}",
                                    portal_domain::ids::StatementId::from_uuid(s)
                                )
                            })
                            .unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        chrome,
    })
    .map(IntoResponse::into_response)
}

/// `GET /billing/payments.csv`: every payment, for the clinic's books. Typed text (names,
/// references) is quoted and never read as a formula; amounts are plain numbers.
#[handler]
pub async fn payments_csv(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = portal_domain::scheduling::clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let rows = portal_domain::billing::payments::export(&mut tx, &scope, &ctx, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let text = crate::pages::admin::csv_field;
    let mut out = String::from(
        "date,statement,patient,method,payer,status,currency,amount,refunded,reference,stripe_payment_intent,stripe_charge,payout\n",
    );
    for r in &rows {
        let line = [
            r.at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
            r.statement_number
                .map(|n| n.to_string())
                .unwrap_or_default(),
            text(&r.patient_name),
            r.method.clone(),
            r.payer.clone(),
            r.status.clone(),
            r.amount.currency.to_string(),
            r.amount.plain(),
            r.refunded.plain(),
            text(r.reference.as_deref().unwrap_or_default()),
            r.stripe_payment_intent.clone().unwrap_or_default(),
            r.stripe_charge.clone().unwrap_or_default(),
            r.payout.clone().unwrap_or_default(),
        ];
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok(out
        .with_content_type("text/csv; charset=utf-8")
        .with_header(
            "content-disposition",
            "attachment; filename=\"payments.csv\"",
        )
        .with_header("cache-control", "no-store")
        .into_response())
}

/// `GET /billing/payouts.csv`: the newest payouts, one row per transaction inside each (the
/// payment's statement and patient where it is one of ours), for the books. Audited per
/// patient named.
#[handler]
pub async fn payouts_csv(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let list = payouts::recent(&mut tx, &scope, &ctx, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let text = crate::pages::admin::csv_field;
    let mut out = String::from(
        "payout,arrival_date,payout_status,payout_amount,adds_up,kind,currency,amount,fee,net,statement,patient\n",
    );
    for p in &list {
        for l in &p.lines {
            let line = [
                p.id.clone(),
                p.arrival.format("%Y-%m-%d").to_string(),
                p.status.clone(),
                p.amount.plain(),
                if p.adds_up { "yes" } else { "no" }.to_owned(),
                l.kind.clone(),
                l.amount.currency.to_string(),
                l.amount.plain(),
                l.fee.plain(),
                l.net.plain(),
                l.statement_number
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                text(l.patient_name.as_deref().unwrap_or_default()),
            ];
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    Ok(out
        .with_content_type("text/csv; charset=utf-8")
        .with_header(
            "content-disposition",
            "attachment; filename=\"payouts.csv\"",
        )
        .with_header("cache-control", "no-store")
        .into_response())
}

struct PaymentRow {
    when: String,
    patient: String,
    statement: String,
    statement_href: String,
    method: &'static str,
    payer: &'static str,
    status: &'static str,
    amount: String,
    refunded: String,
}

#[derive(Template)]
#[template(path = "billing_payments.html")]
struct PaymentsPage {
    chrome: Chrome,
    payments: Vec<PaymentRow>,
}

/// `GET /billing/payments`: the newest 200 payments, every method, with their statements.
#[handler]
pub async fn payments_page(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let rows =
        portal_domain::billing::payments::newest(&mut tx, &scope, &ctx, 200, state.clock.now())
            .await
            .map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&PaymentsPage {
        payments: rows
            .iter()
            .map(|r| PaymentRow {
                when: r
                    .at
                    .with_timezone(&tz)
                    .format("%a %-d %b %Y, %-I:%M %p")
                    .to_string(),
                patient: r.patient_name.clone(),
                statement: r
                    .statement_number
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                statement_href: r
                    .statement
                    .map(|s| format!("/billing/statements/{s}"))
                    .unwrap_or_default(),
                method: match r.method.as_str() {
                    "card" => "Card",
                    "cash" => "Cash",
                    "cheque" => "Cheque",
                    _ => "Other",
                },
                payer: match r.payer.as_str() {
                    "patient" => "The patient, online",
                    "guest" => "Someone with the code",
                    _ => "At the desk",
                },
                status: match r.status.as_str() {
                    "succeeded" => "Received",
                    "pending" => "Processing",
                    "failed" => "Failed",
                    _ => "Cancelled",
                },
                amount: r.amount.to_string(),
                refunded: if r.refunded.minor > 0 {
                    r.refunded.to_string()
                } else {
                    String::new()
                },
            })
            .collect(),
        chrome,
    })
    .map(IntoResponse::into_response)
}
