//! "You have a new statement": by email or text, one job per channel, with no amount and no
//! service in it — only the clinic's name and a link to sign in. A statement voided before
//! the notice went out sends nothing. "We received a payment": by email, when a payment was
//! taken, once its receipt (a PDF in the portal, prepared by the same job) is there, without
//! saying the amount.

use portal_domain::billing::print::receipt_notice_target;
use portal_domain::billing::statements::for_notice;
use portal_domain::ids::{DocumentId, JobId, PaymentId, StatementId};
use portal_domain::jobs::{Channel, Job};
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::{JobError, branding};
use crate::mail::{self, ActionEmail};

pub(crate) async fn notice(
    deps: &Deps,
    tenant: &Tenant,
    job_id: JobId,
    whole: &Job,
    statement: StatementId,
    channel: Channel,
) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let target = for_notice(&mut tx, statement, now).await?;
    tx.commit().await?;
    let Some(t) = target else {
        return Ok(());
    };
    let name = tenant.display_name();
    let text = format!("You have a new statement from {name}. Sign in to see it.");
    match channel {
        Channel::Sms => {
            let Some(phone) = t.phone else {
                return Ok(());
            };
            if crate::handlers::defer_if_quiet(deps, tenant, whole).await? {
                return Ok(());
            }
            let body = format!("{name}: {text} Reply STOP to opt out.");
            crate::texting::send(deps, tenant, &phone, &body, &job_id.to_string()).await?;
        }
        Channel::Email => {
            let Some(to) = t.email else {
                return Ok(());
            };
            let email = ActionEmail {
                branding: branding(deps, tenant),
                subject: format!("A new statement — {name}"),
                heading: "You have a new statement".to_owned(),
                intro: text,
                action_label: "Sign in to see your bills".to_owned(),
                action_url: deps.links.clinic(tenant.slug(), "/bills"),
                note: "For your privacy this message never says what the statement is for."
                    .to_owned(),
            };
            let message = mail::build(&deps.mailer_from, &to, &email, &[])?;
            deps.mailer.send(message).await?;
        }
    }
    Ok(())
}

/// A payment's receipt: its PDF prepared (when the job names it; already prepared on a retry
/// after the email failed), then the notice. A receipt that cannot be printed is marked
/// failed — its page offers "Try again" — and the notice still goes: the payment was received.
pub(crate) async fn receipt(
    deps: &Deps,
    tenant: &Tenant,
    payment: PaymentId,
    document: Option<DocumentId>,
) -> Result<(), JobError> {
    if let Some(doc) = document {
        match crate::documents::render_job(deps, tenant, doc).await {
            Ok(()) => {}
            Err(JobError::Permanent(why)) => {
                tracing::warn!(failure = %why, "a receipt could not be printed");
                crate::documents::render_failed(deps, tenant, doc).await?;
            }
            Err(e) => return Err(e),
        }
    }
    receipt_notice(deps, tenant, payment).await
}

async fn receipt_notice(deps: &Deps, tenant: &Tenant, payment: PaymentId) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let to = receipt_notice_target(&mut tx, payment, now).await?;
    tx.commit().await?;
    let Some(to) = to else {
        return Ok(());
    };
    let name = tenant.display_name();
    let email = ActionEmail {
        branding: branding(deps, tenant),
        subject: format!("Payment received — {name}"),
        heading: "We received a payment".to_owned(),
        intro: format!(
            "{name} received a payment on one of your statements. Thank you. \
             Its receipt is in your portal, with your bills."
        ),
        action_label: "Sign in to see your receipt".to_owned(),
        action_url: deps.links.clinic(tenant.slug(), "/bills"),
        note: "For your privacy this message never says what was paid or for what.".to_owned(),
    };
    let message = mail::build(&deps.mailer_from, &to, &email, &[])?;
    deps.mailer.send(message).await?;
    Ok(())
}
