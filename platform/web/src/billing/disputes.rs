//! Disputes for billing staff (`/billing/disputes`): every card dispute Stripe told us of, with
//! the patient, statement, amount, the bank's reason, where it stands and the day an answer is
//! due. An open one can be accepted here after a check (`POST /billing/disputes/{id}/accept`):
//! the cardholder keeps the money and the patient owes it again. Answering with evidence is
//! done in the clinic's Stripe dashboard, which takes the documents banks ask for.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::{disputes, setup};
use portal_domain::identity::scope::SignedIn;
use portal_domain::scheduling::clinic_tz;
use portal_stripe::StripeError;

use super::{not_found, when};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::confirm::ConfirmAction;
use crate::pages::{Chrome, db, render, render_status, see_other};
use crate::request::form_field as field;

struct DisputeView {
    id: String,
    amount: String,
    reason: String,
    status: &'static str,
    acceptable: bool,
    due: String,
    opened: String,
    patient: String,
    statement: String,
    statement_href: String,
}

#[derive(Template)]
#[template(path = "billing_disputes.html")]
struct DisputesPage {
    chrome: Chrome,
    disputes: Vec<DisputeView>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

async fn page(
    req: &Request,
    state: &AppState,
    notice: Option<String>,
    status: StatusCode,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let found = disputes::list(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let disputes = found
        .iter()
        .map(|d| DisputeView {
            id: d.id.clone(),
            amount: d.amount.to_string(),
            reason: d.reason_label(),
            status: d.status_label(),
            acceptable: d.acceptable(),
            due: d
                .evidence_due_by
                .filter(|_| d.open())
                .map(|t| when(t, tz))
                .unwrap_or_default(),
            opened: when(d.opened_at, tz),
            patient: d
                .patient_name
                .clone()
                .unwrap_or_else(|| "Not matched to a payment".to_owned()),
            statement: d
                .statement_number
                .map(|n| n.to_string())
                .unwrap_or_default(),
            statement_href: d
                .statement
                .map(|s| {
                    format!(
                        "/billing/statements/{}",
                        portal_domain::ids::StatementId::from_uuid(s)
                    )
                })
                .unwrap_or_default(),
        })
        .collect();
    render_status(
        &DisputesPage {
            chrome,
            disputes,
            notice,
        },
        status,
    )
}

/// `GET /billing/disputes`.
#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let notice = match q.done.as_deref() {
        Some("accepted") => {
            Some("The dispute was accepted; the patient owes that amount again.".to_owned())
        }
        _ => None,
    };
    page(req, state, notice, StatusCode::OK).await
}

/// `POST /billing/disputes/{id}/accept`: asks first, then accepts it at Stripe and records
/// what Stripe then says.
#[handler]
pub async fn accept(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
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
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let amount = disputes::acceptable(&mut tx, &id).await.map_err(db)?;
    let account = setup::read(&mut tx).await.map_err(db)?.account;
    tx.commit().await.map_err(db)?;
    let (Some(amount), Some(account)) = (amount, account) else {
        // Gone, or no longer open (decided, or accepted a moment ago): the list says which.
        return Ok(see_other("/billing/disputes"));
    };
    if field(&f, "confirmed") != "1" {
        let ask = ConfirmAction {
            title: "Accept the dispute?".to_owned(),
            question: format!("Accept the cardholder's dispute of {amount}?"),
            details: vec![("Dispute", id.clone())],
            consequence: "The card's bank keeps the money for the cardholder; this cannot be undone. The amount goes back onto the patient's account, to be billed again.".to_owned(),
            action: format!("/billing/disputes/{id}/accept"),
            hidden: vec![("confirmed", "1".to_owned())],
            confirm_label: "Accept the dispute".to_owned(),
            danger: true,
            back: "/billing/disputes".to_owned(),
            back_label: "Disputes".to_owned(),
            error: None,
            chrome,
        };
        return render(&ask).map(IntoResponse::into_response);
    }
    let now = state.clock.now();
    match payments.client.accept_dispute(&account, &id).await {
        Ok(done) => {
            let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
            disputes::apply(
                &mut tx,
                &audit_ctx(req, Some(&me)),
                &done,
                Some(scope.user_id()),
                now,
            )
            .await
            .map_err(db)?;
            disputes::record_accept(&mut tx, &audit_ctx(req, Some(&me)), &id, now)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(see_other("/billing/disputes?done=accepted"))
        }
        Err(StripeError::Unavailable(_)) => {
            page(
                req,
                state,
                Some("Stripe could not be reached, so the dispute was not accepted. Try again in a few minutes.".to_owned()),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await
        }
        Err(e) => {
            let message = match e {
                StripeError::Refused { message, .. } if !message.is_empty() => {
                    format!("Stripe refused: {message}")
                }
                _ => "Stripe refused to accept the dispute.".to_owned(),
            };
            page(req, state, Some(message), StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}
