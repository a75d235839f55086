//! Sending a payer to Stripe's Checkout page for a card payment already recorded as pending
//! (`billing::card::start`), and reading the outcome when they come back. The idempotency key
//! is the payment's own id, so a retried request makes the same page, never a second one.

use std::collections::HashMap;

use portal_domain::audit::AuditContext;
use portal_domain::billing::card::{self, CardPayment, CardStart};
use portal_domain::billing::setup;
use portal_tenants::Tenant;

use crate::AppState;

/// The Checkout page's address, or words for the payer saying nothing was charged.
pub async fn launch(
    state: &AppState,
    tenant: &Tenant,
    start: &CardStart,
    success_path: &str,
    cancel_path: &str,
) -> poem::Result<Result<String, String>> {
    let Some(payments) = &state.stripe else {
        return Ok(Err(unavailable_words()));
    };
    let key = format!("payment-{}-checkout", start.payment);
    let description = format!(
        "Statement {} — {}",
        start.statement_number,
        tenant.display_name()
    );
    let metadata = HashMap::from([
        ("payment".to_owned(), start.payment.to_string()),
        ("clinic".to_owned(), tenant.id().to_string()),
    ]);
    let success = state.links.clinic(tenant.slug(), success_path);
    let cancel = state.links.clinic(tenant.slug(), cancel_path);
    let made = payments
        .client
        .create_checkout(portal_stripe::NewCheckout {
            account: &start.account,
            idempotency_key: &key,
            amount_minor: start.amount.minor,
            currency: start.amount.currency.as_str(),
            description: &description,
            success_url: &success,
            cancel_url: &cancel,
            reference: &start.payment.to_string(),
            metadata,
            save_card: start.saves_card,
        })
        .await;
    let mut tx = state
        .tenant_db
        .begin(tenant)
        .await
        .map_err(crate::internal)?;
    let out = match made {
        Ok(session) => {
            card::attach_checkout(&mut tx, start.payment, &session)
                .await
                .map_err(crate::internal)?;
            session.url.ok_or_else(unavailable_words)
        }
        Err(e) => {
            tracing::warn!(error = %e, payment = %start.payment, "Checkout could not be made");
            let (stored, words) = match &e {
                portal_stripe::StripeError::Refused { .. } => (
                    "Stripe refused to start the payment.",
                    "Card payment could not be started for this amount, and nothing was charged. Please pay at the desk or call the clinic.".to_owned(),
                ),
                _ => ("Stripe could not be reached.", unavailable_words()),
            };
            card::abandon(&mut tx, start.payment, stored)
                .await
                .map_err(crate::internal)?;
            Err(words)
        }
    };
    tx.commit().await.map_err(crate::internal)?;
    Ok(out)
}

pub fn unavailable_words() -> String {
    "Card payment is not available just now, and nothing was charged. Please try again in a few minutes.".to_owned()
}

/// A payment's state after the payer came back from Checkout: if it is still pending, Stripe
/// is asked (the webhook may not have arrived yet) and the answer applied, idempotently.
pub async fn after_return(
    state: &AppState,
    tenant: &Tenant,
    ctx: &AuditContext,
    payment: CardPayment,
) -> poem::Result<CardPayment> {
    let (Some(payments), Some(session), "pending") = (
        &state.stripe,
        payment.checkout_session.clone(),
        payment.status.as_str(),
    ) else {
        return Ok(payment);
    };
    let mut tx = state
        .tenant_db
        .begin(tenant)
        .await
        .map_err(crate::internal)?;
    let account = setup::read(&mut tx).await.map_err(crate::internal)?.account;
    tx.commit().await.map_err(crate::internal)?;
    let Some(account) = account else {
        return Ok(payment);
    };
    let Ok(now_state) = payments.client.checkout(&account, &session).await else {
        // The webhook will settle it; the page says it is being confirmed.
        return Ok(payment);
    };
    let mut tx = state
        .tenant_db
        .begin(tenant)
        .await
        .map_err(crate::internal)?;
    card::apply_checkout(&mut tx, ctx, &now_state, state.clock.now())
        .await
        .map_err(crate::internal)?;
    let fresh = card::payment(&mut tx, payment.id)
        .await
        .map_err(crate::internal)?;
    tx.commit().await.map_err(crate::internal)?;
    Ok(fresh.unwrap_or(payment))
}
