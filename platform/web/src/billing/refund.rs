//! `/billing/payments/{id}/refund`: billing staff refund all or part of a card payment. The
//! page asks how much and why, then says exactly what will happen; confirmed, the refund is
//! recorded, sent to Stripe with the refund's own id as its key, and entered in the ledger when
//! Stripe says it succeeded. Stripe out of reach: the refund waits and a job sends it again
//! with the same key.

use std::collections::HashMap;

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::refunds::{self, Refundable};
use portal_domain::billing::{BillingError, Money, setup};
use portal_domain::identity::scope::{BillingScope, SignedIn};
use portal_domain::ids::{PaymentId, RefundId};
use portal_stripe::StripeError;

use super::not_found;
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::confirm::ConfirmAction;
use crate::pages::{Chrome, FormErrors, db, render, render_status, see_other};
use crate::request::form_field as field;

#[derive(Template)]
#[template(path = "billing_refund.html")]
struct RefundPage {
    chrome: Chrome,
    id: String,
    back: String,
    patient: String,
    paid: String,
    left: String,
    amount: String,
    reason: String,
    errors: FormErrors,
}

fn back_of(r: &Refundable) -> String {
    r.statement.map_or_else(
        || "/billing".to_owned(),
        |s| format!("/billing/statements/{s}"),
    )
}

fn page(
    chrome: Chrome,
    r: &Refundable,
    amount: String,
    reason: String,
    errors: FormErrors,
) -> RefundPage {
    RefundPage {
        chrome,
        id: r.payment.to_string(),
        back: back_of(r),
        patient: r.patient_name.clone(),
        paid: r.amount.to_string(),
        left: r.left.to_string(),
        amount,
        reason,
        errors,
    }
}

async fn load(
    req: &Request,
    state: &AppState,
    chrome: &Chrome,
    me: &SignedIn,
    scope: &BillingScope,
    raw: &str,
) -> poem::Result<Refundable> {
    let id = PaymentId::parse(raw).ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let r = refunds::view(&mut tx, scope, &ctx, id, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    r.ok_or_else(not_found)
}

/// `GET /billing/payments/{id}/refund`.
#[handler]
pub async fn form(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let r = load(req, state, &chrome, &me, &scope, &raw).await?;
    let amount = r.left.plain();
    render(&page(
        chrome,
        &r,
        amount,
        String::new(),
        FormErrors::default(),
    ))
    .map(IntoResponse::into_response)
}

/// `POST /billing/payments/{id}/refund`.
#[handler]
pub async fn refund(
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
    let Some(payments) = state.stripe.clone() else {
        return Err(not_found());
    };
    let r = load(req, state, &chrome, &me, &scope, &raw).await?;
    let typed = field(&f, "amount").to_owned();
    let reason = field(&f, "reason").trim().to_owned();
    let refuse = |chrome: Chrome, field_name: &'static str, message: String| {
        render_status(
            &page(
                chrome,
                &r,
                typed.clone(),
                reason.clone(),
                FormErrors::one(field_name, message),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let amount = match Money::parse(&typed, r.left.currency) {
        Ok(m) if m.minor == 0 => {
            return refuse(chrome, "amount", "Enter an amount more than zero.".into());
        }
        Ok(m) if m.minor > r.left.minor => {
            return refuse(
                chrome,
                "amount",
                format!(
                    "That is more than the {} that can be refunded on this payment.",
                    r.left
                ),
            );
        }
        Ok(m) => m,
        Err(e) => return refuse(chrome, "amount", e.to_string()),
    };
    if field(&f, "confirmed") != "1" {
        let ask = ConfirmAction {
            title: "Check the refund".to_owned(),
            question: format!("Refund {amount} to {}'s card?", r.patient_name),
            details: vec![
                ("Payment", r.amount.to_string()),
                ("Can be refunded", r.left.to_string()),
                (
                    "Reason",
                    if reason.is_empty() {
                        "—".to_owned()
                    } else {
                        reason.clone()
                    },
                ),
            ],
            consequence: format!(
                "Stripe sends {amount} back to the card; it reaches the patient in 5 to 10 days. The amount goes back onto the patient's account."
            ),
            action: format!("/billing/payments/{}/refund", r.payment),
            // The refund's id, chosen now: the same form sent twice makes one refund.
            hidden: vec![
                ("amount", amount.plain()),
                ("reason", reason.clone()),
                ("refund", RefundId::new().to_string()),
                ("confirmed", "1".to_owned()),
            ],
            confirm_label: "Refund".to_owned(),
            danger: true,
            back: back_of(&r),
            back_label: "Back to the statement".to_owned(),
            error: None,
            chrome,
        };
        return render(&ask).map(IntoResponse::into_response);
    }
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let refund_id = RefundId::parse(field(&f, "refund")).unwrap_or_default();
    let back = back_of(&r);
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let Some(account) = setup::read(&mut tx).await.map_err(db)?.account else {
        return Err(not_found());
    };
    let started = refunds::start(
        &mut tx,
        &scope,
        &ctx,
        refund_id,
        r.payment,
        &amount.plain(),
        &reason,
        now,
    )
    .await;
    let started = match started {
        Ok(Some(s)) => {
            tx.commit().await.map_err(db)?;
            s
        }
        // The same confirmation sent again: that refund is already on its way.
        Ok(None) => return Ok(see_other(&format!("{back}?done=refunded"))),
        Err(BillingError::Database(e)) => return Err(db(e)),
        Err(BillingError::NotFound) => return Err(not_found()),
        Err(e) => {
            let field_name = e.field_name().unwrap_or("amount");
            return refuse(chrome, field_name, e.to_string());
        }
    };
    let key = format!("refund-{}", started.refund);
    let meta = HashMap::from([("refund".to_owned(), started.refund.to_string())]);
    match payments
        .client
        .refund(
            &account,
            &key,
            &started.payment_intent,
            started.amount.minor,
            meta,
        )
        .await
    {
        Ok(done) => {
            let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
            refunds::finish(&mut tx, &ctx, started.refund, &done, now)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("{back}?done=refunded")))
        }
        // Its job (queued with it) sends it again with the same key.
        Err(StripeError::Unavailable(why)) => {
            tracing::warn!(refund = %started.refund, why, "refund waits: Stripe out of reach");
            Ok(see_other(&format!("{back}?done=refund_queued")))
        }
        Err(e) => {
            let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
            refunds::fail(&mut tx, started.refund).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            let message = match e {
                StripeError::Refused { message, .. } | StripeError::Declined { message, .. }
                    if !message.is_empty() =>
                {
                    format!("Stripe refused the refund: {message}")
                }
                _ => "Stripe refused the refund.".to_owned(),
            };
            refuse(chrome, "amount", message)
        }
    }
}
