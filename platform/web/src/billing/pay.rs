//! A patient pays their own statement by card: `/bills/{id}/pay` asks how much (all that is
//! due, or part), then says exactly what will happen, then records a pending payment and sends
//! them to Stripe's Checkout page; `/bills/{id}/paid` is where Stripe sends them back, and says
//! whether the money arrived.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::card::{self, Payer};
use portal_domain::billing::{BillingError, Money, plans, setup, statements};
use portal_domain::identity::scope::{PatientScope, SignedIn};
use portal_domain::ids::{PaymentId, StatementId};

use super::{checkout, not_found};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::confirm::ConfirmAction;
use crate::pages::{Chrome, FormErrors, db, render, render_status, see_other};
use crate::request::form_field as field;

#[derive(Template)]
#[template(path = "bill_pay.html")]
struct PayPage {
    chrome: Chrome,
    id: String,
    number: i64,
    due: String,
    amount: String,
    errors: FormErrors,
    /// The statement has a payment plan whose automatic payments this card could take on.
    offer_autopay: bool,
    autopay: bool,
}

/// Whether the card paid now may be saved for the plan's automatic payments: there is a plan,
/// and it has no saved card, or its card was declined.
fn can_save_card(s: &statements::Statement) -> bool {
    s.plan
        .as_ref()
        .is_some_and(|p| p.autopay.as_ref().is_none_or(|a| a.declined.is_some()))
}

#[derive(serde::Deserialize)]
pub struct PayQuery {
    /// `1`: pay the plan's next instalment (the amount is what is left of it).
    instalment: Option<String>,
}

/// The patient's statement if it can take a card payment now: theirs, issued, something due,
/// and the clinic taking cards.
async fn payable_statement(
    req: &Request,
    state: &AppState,
    chrome: &Chrome,
    me: &SignedIn,
    scope: &PatientScope,
    id: StatementId,
) -> poem::Result<Option<statements::Statement>> {
    let ctx = audit_ctx(req, Some(me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let s = statements::own(&mut tx, scope, &ctx, id, state.clock.now())
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let cards = setup::read(&mut tx).await.map_err(db)?.charges_enabled;
    tx.commit().await.map_err(db)?;
    let open = s.summary.status == statements::Status::Issued && s.summary.due.minor > 0;
    Ok((open && cards && state.stripe.is_some()).then_some(s))
}

fn pay_page(
    chrome: Chrome,
    s: &statements::Statement,
    amount: String,
    autopay: bool,
    errors: FormErrors,
) -> PayPage {
    PayPage {
        chrome,
        offer_autopay: can_save_card(s),
        autopay,
        id: s.summary.id.to_string(),
        number: s.summary.number,
        due: s.summary.due.to_string(),
        amount,
        errors,
    }
}

/// `GET /bills/{id}/pay`.
#[handler]
pub async fn form(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Query(q): Query<PayQuery>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let Some(s) = payable_statement(req, state, &chrome, &me, &scope, id).await? else {
        return Ok(see_other(&format!("/bills/{id}")));
    };
    let next = s.plan.as_ref().and_then(|p| p.next_unpaid());
    let amount = match (q.instalment.as_deref(), next) {
        (Some("1"), Some(i)) => {
            Money::new(i.left().minor.min(s.summary.due.minor), s.currency).plain()
        }
        _ => s.summary.due.plain(),
    };
    // Saving the card is offered, never ticked for the patient: it is their choice.
    render(&pay_page(chrome, &s, amount, false, FormErrors::default()))
        .map(IntoResponse::into_response)
}

/// `POST /bills/{id}/pay`: checks the amount and asks; confirmed, records the payment and goes
/// to Stripe.
#[handler]
pub async fn start(
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
    let Some(s) = payable_statement(req, state, &chrome, &me, &scope, id).await? else {
        return Ok(see_other(&format!("/bills/{id}")));
    };
    let typed = field(&f, "amount").to_owned();
    let autopay = field(&f, "autopay") == "1" && can_save_card(&s);
    let refuse = |chrome: Chrome, message: String| {
        render_status(
            &pay_page(
                chrome,
                &s,
                typed.clone(),
                autopay,
                FormErrors::one("amount", message),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let amount = match Money::parse(&typed, s.currency) {
        Ok(m) if m.minor == 0 => return refuse(chrome, "Enter an amount more than zero.".into()),
        Ok(m) if m.minor > s.summary.due.minor => {
            return refuse(
                chrome,
                format!(
                    "That is more than the {} still due. Enter {} or less.",
                    s.summary.due, s.summary.due
                ),
            );
        }
        Ok(m) => m,
        Err(e) => return refuse(chrome, e.to_string()),
    };
    let clinic = chrome.tenant.display_name().to_owned();
    if field(&f, "confirmed") != "1" {
        let page = ConfirmAction {
            title: "Check your payment".to_owned(),
            question: format!(
                "Pay {amount} to {clinic} for statement {}?",
                s.summary.number
            ),
            details: {
                let mut d = vec![
                    ("Statement", s.summary.number.to_string()),
                    ("Still due", s.summary.due.to_string()),
                    ("You pay now", amount.to_string()),
                ];
                if autopay {
                    d.push((
                        "Automatic payments",
                        "Stripe keeps this card, and it is charged each following instalment on its due date".to_owned(),
                    ));
                }
                d
            },
            consequence: format!(
                "Next you enter your card on Stripe's secure payment page. {clinic} never sees your card number."
            ),
            action: format!("/bills/{id}/pay"),
            hidden: vec![
                ("amount", amount.plain()),
                ("autopay", if autopay { "1" } else { "" }.to_owned()),
                ("confirmed", "1".to_owned()),
            ],
            confirm_label: "Continue to payment".to_owned(),
            danger: false,
            back: format!("/bills/{id}"),
            back_label: format!("Statement {}", s.summary.number),
            error: None,
            chrome,
        };
        return render(&page).map(IntoResponse::into_response);
    }
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let started = card::start(
        &mut tx,
        Payer::Patient(&scope),
        &ctx,
        id,
        &amount.plain(),
        state.clock.now(),
    )
    .await;
    let started = match started {
        Ok(mut started) => {
            if let Some(plan) = s.plan.as_ref().filter(|_| autopay) {
                plans::save_card_with(&mut tx, started.payment, plan.id)
                    .await
                    .map_err(db)?;
                started.saves_card = true;
            }
            tx.commit().await.map_err(db)?;
            started
        }
        Err(BillingError::NotFound) => return Err(not_found()),
        Err(BillingError::Database(e)) => return Err(db(e)),
        Err(e) => return refuse(chrome, e.to_string()),
    };
    let success = format!("/bills/{id}/paid?payment={}", started.payment);
    match checkout::launch(
        state,
        &chrome.tenant,
        &started,
        &success,
        &format!("/bills/{id}"),
    )
    .await?
    {
        Ok(url) => Ok(see_other(&url)),
        Err(words) => refuse(chrome, words),
    }
}

#[derive(serde::Deserialize)]
pub struct Returned {
    payment: Option<String>,
}

#[derive(Template)]
#[template(path = "payment_result.html")]
pub(crate) struct ResultPage {
    pub chrome: Chrome,
    /// `succeeded`, `pending`, `failed` or `canceled`.
    pub status: String,
    pub amount: String,
    pub clinic: String,
    pub failure: String,
    pub back: String,
    pub back_label: String,
}

/// `GET /bills/{id}/paid?payment=…`: back from Stripe.
#[handler]
pub async fn returned(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Query(q): Query<Returned>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let pid = q
        .payment
        .as_deref()
        .and_then(PaymentId::parse)
        .ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let payment = card::payment(&mut tx, pid)
        .await
        .map_err(db)?
        .filter(|p| p.patient == scope.patient_id() && p.statement == Some(id))
        .ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    card::seen(&mut tx, &ctx, &payment, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let payment = checkout::after_return(state, &chrome.tenant, &ctx, payment).await?;
    render(&ResultPage {
        status: payment.status.clone(),
        amount: payment.amount.to_string(),
        clinic: chrome.tenant.display_name().to_owned(),
        failure: payment.failure.clone().unwrap_or_default(),
        back: format!("/bills/{id}"),
        back_label: "Back to the statement".to_owned(),
        chrome,
    })
    .map(IntoResponse::into_response)
}
