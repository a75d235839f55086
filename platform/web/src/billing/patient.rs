//! The patient's bills: `/bills` (what they owe, their statements, newest first) and one
//! statement (`/bills/{id}`) with its lines and payments. Drafts are never shown; another
//! patient's statement is 404.

use askama::Template;
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::{accounts, statements};
use portal_domain::clinic::ClinicProfile;
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::StatementId;
use portal_domain::scheduling::clinic_tz;

use super::{StatementView, SummaryView, not_found};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::pages::scheduling_view::today;
use crate::pages::{Chrome, db, render};

#[derive(Template)]
#[template(path = "bills.html")]
struct BillsPage {
    chrome: Chrome,
    balance: String,
    owes: bool,
    credit: bool,
    open: Vec<SummaryView>,
    past: Vec<SummaryView>,
    call_us: String,
}

/// `GET /bills`.
#[handler]
pub async fn bills(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let account = accounts::own(&mut tx, &scope, &ctx, state.clock.now())
        .await
        .map_err(db)?;
    let profile = ClinicProfile::load(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let (open, past): (Vec<_>, Vec<_>) = account.statements.iter().partition(|s| s.is_open());
    render(&BillsPage {
        balance: account.balance.to_string(),
        owes: account.balance.minor > 0,
        credit: account.balance.minor < 0,
        open: open.iter().map(|s| SummaryView::of(s, tz)).collect(),
        past: past.iter().map(|s| SummaryView::of(s, tz)).collect(),
        call_us: profile.call_us(chrome.tenant.display_name()),
        chrome,
    })
    .map(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "bill.html")]
struct BillPage {
    chrome: Chrome,
    s: StatementView,
    call_us: String,
    /// The clinic takes cards and something is due.
    can_pay: bool,
    notice: Option<&'static str>,
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /bills/{id}`.
#[handler]
pub async fn bill(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let s = statements::own(&mut tx, &scope, &ctx, id, state.clock.now())
        .await
        .map_err(db)?;
    let profile = ClinicProfile::load(&mut tx).await.map_err(db)?;
    let cards = portal_domain::billing::setup::read(&mut tx)
        .await
        .map_err(db)?
        .charges_enabled;
    tx.commit().await.map_err(db)?;
    let s = s.ok_or_else(not_found)?;
    let can_pay = cards
        && state.stripe.is_some()
        && s.summary.status == statements::Status::Issued
        && s.summary.due.minor > 0;
    let notice = match q.done.as_deref() {
        Some("autopay_off") => Some("Automatic payments are off. Pay each instalment by its date."),
        _ => None,
    };
    render(&BillPage {
        can_pay,
        notice,
        s: StatementView::of(&s, tz, today(tz, state.clock.now())),
        call_us: profile.call_us(chrome.tenant.display_name()),
        chrome,
    })
    .map(IntoResponse::into_response)
}
