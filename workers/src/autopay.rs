//! Autopay: charges the cards patients saved for their payment plans when instalments fall
//! due (the clinic's date), then tells the patient when a charge failed. What to charge is
//! written down before Stripe is asked (`billing::autopay`), so this job may run twice, on two
//! workers, or be killed half-way: each charge goes to Stripe under the same key every time.

use std::collections::HashMap;

use portal_domain::billing::autopay::{self, Outcome};
use portal_domain::ids::PaymentId;
use portal_stripe::{SavedCardCharge, StripeError};
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::{JobError, branding};
use crate::mail::{self, ActionEmail};

pub(crate) async fn run(deps: &Deps, tenant: &Tenant) -> Result<(), JobError> {
    let Some(stripe) = &deps.stripe else {
        return Ok(());
    };
    let now = deps.clock.now();
    let today = now
        .with_timezone(&portal_domain::scheduling::clinic_tz(tenant))
        .date_naive();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let charges = autopay::due_charges(&mut tx, today, now).await?;
    tx.commit().await?;
    let mut unreachable = false;
    for c in charges {
        let key = c.idempotency_key();
        // Only stored facts go into the request, so a resend under the same key is the same
        // request (a renamed clinic would otherwise make Stripe refuse the key).
        let description = format!("Statement {} (payment plan)", c.statement_number);
        let answer = match &c.intent {
            Some(intent) => stripe.payment_intent(&c.account, intent).await,
            None => {
                stripe
                    .charge_saved_card(SavedCardCharge {
                        account: &c.account,
                        idempotency_key: &key,
                        amount_minor: c.amount.minor,
                        currency: c.amount.currency.as_str(),
                        customer: &c.customer,
                        payment_method: &c.payment_method,
                        description: &description,
                        metadata: HashMap::from([
                            ("payment".to_owned(), c.payment.to_string()),
                            ("clinic".to_owned(), tenant.id().to_string()),
                        ]),
                    })
                    .await
            }
        };
        let failed_words;
        let outcome = match &answer {
            Ok(intent) => Outcome::Intent(intent),
            Err(e) if e.is_temporary() => {
                // Left pending: the next try sends the same request under the same key.
                tracing::warn!(error = %e, payment = %c.payment, "autopay charge not answered");
                let mut tx = deps.tenant_db.begin(tenant).await?;
                autopay::release(&mut tx, c.payment).await?;
                tx.commit().await?;
                unreachable = true;
                continue;
            }
            Err(StripeError::Declined { message, .. }) => {
                failed_words = format!("Your card was declined: {message}");
                Outcome::Failed(failed_words)
            }
            Err(e) => {
                tracing::warn!(error = %e, payment = %c.payment, "autopay charge refused");
                Outcome::Failed("The card could not be charged automatically.".to_owned())
            }
        };
        let mut tx = deps.tenant_db.begin(tenant).await?;
        autopay::finish(&mut tx, c.payment, outcome, now).await?;
        tx.commit().await?;
    }
    if unreachable {
        return Err(JobError::Retry(
            "Stripe did not answer an autopay charge".into(),
        ));
    }
    Ok(())
}

/// "An automatic payment did not go through": by email, with no amount, pointing to the bills.
pub(crate) async fn failed_notice(
    deps: &Deps,
    tenant: &Tenant,
    payment: PaymentId,
) -> Result<(), JobError> {
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let to = autopay::notice_target(&mut tx, payment, deps.clock.now()).await?;
    tx.commit().await?;
    let Some(to) = to else {
        return Ok(());
    };
    let name = tenant.display_name();
    let email = ActionEmail {
        branding: branding(deps, tenant),
        subject: format!("An automatic payment did not go through — {name}"),
        heading: "Your automatic payment did not go through".to_owned(),
        intro: format!(
            "{name} tried to take a payment-plan instalment from the card you saved, and the \
             payment did not go through. Nothing was taken. You can pay it yourself, or save \
             another card, from your bills."
        ),
        action_label: "Sign in to see your bills".to_owned(),
        action_url: deps.links.clinic(tenant.slug(), "/bills"),
        note: "For your privacy this message never says what was due or for what.".to_owned(),
    };
    let message = mail::build(&deps.mailer_from, &to, &email, &[])?;
    deps.mailer.send(message).await?;
    Ok(())
}
