//! Payment plans on the statement pages. Billing staff set one up (`POST
//! /billing/statements/{id}/plan`: how many monthly instalments, from which date) and end it
//! (`…/plan/end`, after a check); the patient sees the instalments on `/bills/{id}`, pays the
//! next one by card with the choice of saving the card for the rest (see `pay.rs`), and turns
//! automatic payments off (`POST /bills/{id}/autopay/off`, after a check).

use chrono::NaiveDate;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::BillingError;
use portal_domain::billing::plans::{self, InstalmentState, Plan};
use portal_domain::billing::statements;
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::{PlanId, StatementId};
use portal_domain::scheduling::clinic_tz;

use super::not_found;
use super::staff::{Typed, refused};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::confirm::ConfirmAction;
use crate::pages::scheduling_view::today;
use crate::pages::{db, render, see_other, words};
use crate::request::form_field as field;

/// One instalment, as words.
pub struct InstalmentView {
    pub number: i32,
    pub due_on: String,
    pub amount: String,
    /// `paid`, `overdue`, `due` or `upcoming` (the tag's class).
    pub state: &'static str,
    pub state_label: String,
}

/// A statement's plan, as words.
pub struct PlanView {
    pub id: String,
    pub count: usize,
    pub total: String,
    pub instalments: Vec<InstalmentView>,
    pub autopay: bool,
    pub autopay_since: String,
    /// Why the saved card's last automatic charge failed.
    pub declined: String,
    /// The next instalment not paid in full: its number, date and what is left of it.
    pub next: Option<(i32, String, String)>,
}

impl PlanView {
    pub fn of(p: &Plan, tz: chrono_tz::Tz, today: NaiveDate) -> Self {
        PlanView {
            id: p.id.to_string(),
            count: p.instalments.len(),
            total: p.total.to_string(),
            instalments: p
                .instalments
                .iter()
                .map(|i| {
                    let (state, state_label) = match i.state(today) {
                        InstalmentState::Paid => ("paid", "Paid".to_owned()),
                        InstalmentState::Overdue if i.paid.minor > 0 => {
                            ("overdue", format!("Overdue: {} left", i.left()))
                        }
                        InstalmentState::Overdue => ("overdue", "Overdue".to_owned()),
                        InstalmentState::DueToday => ("due", "Due today".to_owned()),
                        InstalmentState::Upcoming if i.paid.minor > 0 => {
                            ("upcoming", format!("{} left", i.left()))
                        }
                        InstalmentState::Upcoming => ("upcoming", "Upcoming".to_owned()),
                    };
                    InstalmentView {
                        number: i.seq,
                        due_on: words::date(i.due_on),
                        amount: i.amount.to_string(),
                        state,
                        state_label,
                    }
                })
                .collect(),
            autopay: p.autopay.is_some(),
            autopay_since: p
                .autopay
                .as_ref()
                .map(|a| super::when(a.since, tz))
                .unwrap_or_default(),
            declined: p
                .autopay
                .as_ref()
                .and_then(|a| a.declined.clone())
                .unwrap_or_default(),
            next: p
                .next_unpaid()
                .map(|i| (i.seq, words::date(i.due_on), i.left().to_string())),
        }
    }
}

/// `POST /billing/statements/{id}/plan`: billing staff set up a plan.
#[handler]
pub async fn create(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let (count, first) = (field(&f, "count"), field(&f, "first_due"));
    let now = state.clock.now();
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let made = plans::create(
        &mut tx,
        &scope,
        &ctx,
        id,
        count,
        first,
        today(clinic_tz(&chrome.tenant), now),
        now,
    )
    .await;
    match made {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/billing/statements/{id}?done=plan")))
        }
        Err(e) => {
            drop(tx);
            let typed = Typed {
                plan_count: count.to_owned(),
                plan_first: first.to_owned(),
                ..Typed::default()
            };
            refused(req, state, chrome, &me, &scope, id, e, "count", typed).await
        }
    }
}

/// `POST /billing/statements/{id}/plan/end`: asks, then ends the plan.
#[handler]
pub async fn end(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let plan = PlanId::parse(field(&f, "plan")).ok_or_else(not_found)?;
    let now = state.clock.now();
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    if field(&f, "confirmed") != "1" {
        let s = statements::for_staff(&mut tx, &scope, &ctx, id, now)
            .await
            .map_err(db)?
            .ok_or_else(not_found)?;
        tx.commit().await.map_err(db)?;
        let p = s
            .plan
            .as_ref()
            .filter(|p| p.id == plan)
            .ok_or_else(not_found)?;
        let page = ConfirmAction {
            title: format!("End the payment plan of statement {}?", s.summary.number),
            question: format!(
                "End the payment plan of statement {} for {}?",
                s.summary.number, s.summary.patient_name
            ),
            details: vec![
                ("Instalments", p.instalments.len().to_string()),
                ("Still due", s.summary.due.to_string()),
                (
                    "Automatic payments",
                    if p.autopay.is_some() { "On" } else { "Off" }.to_owned(),
                ),
            ],
            consequence: "What is still due stays due by the statement's date, and no card is charged automatically any more.".to_owned(),
            action: format!("/billing/statements/{id}/plan/end"),
            hidden: vec![("plan", plan.to_string()), ("confirmed", "1".to_owned())],
            confirm_label: "End the plan".to_owned(),
            danger: true,
            back: format!("/billing/statements/{id}"),
            back_label: format!("Statement {}", s.summary.number),
            error: None,
            chrome,
        };
        return render(&page).map(IntoResponse::into_response);
    }
    match plans::end(&mut tx, &scope, &ctx, id, plan, now).await {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!(
                "/billing/statements/{id}?done=plan_ended"
            )))
        }
        // Ended already (pressed twice, or by a colleague): the page shows it as it is.
        Err(BillingError::NotFound) => Ok(see_other(&format!("/billing/statements/{id}"))),
        Err(e) => Err(db(e)),
    }
}

/// `POST /bills/{id}/autopay/off`: asks, then turns automatic payments off.
#[handler]
pub async fn autopay_off(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let now = state.clock.now();
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    // Another patient's statement is 404, asked or confirmed.
    let s = statements::own(&mut tx, &scope, &ctx, id, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    if field(&f, "confirmed") != "1" {
        tx.commit().await.map_err(db)?;
        if s.plan.as_ref().is_none_or(|p| p.autopay.is_none()) {
            return Ok(see_other(&format!("/bills/{id}")));
        }
        let page = ConfirmAction {
            title: "Turn off automatic payments?".to_owned(),
            question: format!(
                "Stop paying statement {}'s instalments automatically?",
                s.summary.number
            ),
            details: vec![("Still due", s.summary.due.to_string())],
            consequence: "Your card is not charged again for this plan. Each instalment is still due on its date, and you pay it yourself.".to_owned(),
            action: format!("/bills/{id}/autopay/off"),
            hidden: vec![("confirmed", "1".to_owned())],
            confirm_label: "Turn off automatic payments".to_owned(),
            danger: true,
            back: format!("/bills/{id}"),
            back_label: format!("Statement {}", s.summary.number),
            error: None,
            chrome,
        };
        return render(&page).map(IntoResponse::into_response);
    }
    match plans::stop_autopay(&mut tx, &scope, &ctx, id, now).await {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/bills/{id}?done=autopay_off")))
        }
        // Off already, or not their statement: the statement page says how things stand
        // (and answers 404 for another's).
        Err(BillingError::NotFound) => Ok(see_other(&format!("/bills/{id}"))),
        Err(e) => Err(db(e)),
    }
}
