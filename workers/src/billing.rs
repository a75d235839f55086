//! "You have a new statement": by email or text, one job per channel, with no amount and no
//! service in it — only the clinic's name and a link to sign in. A statement voided before
//! the notice went out sends nothing. "We received a payment": by email, when a payment was
//! taken (one job for a batch of payments), without saying the amount; the receipt itself is
//! printed when someone opens it in the portal.

use portal_domain::billing::print::{
    receipt_notice_targets, receipts_noticed, receipts_noticed_alone,
};
use portal_domain::billing::statements::for_notice;
use portal_domain::ids::{DocumentId, JobId, PaymentId, StatementId};
use portal_domain::jobs::{Channel, Job};
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::{JobError, branding};
use crate::mail::{self, ActionEmail, MailError};

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

/// "We received a payment", by email, to each patient with payments of the batch not told
/// yet: one email for all of one address's payments (a patient who paid three statements at
/// once hears it once). Those with no address to send to are marked told first, together;
/// each address's payments once its email is sent, or refused for good for that one address
/// (every [`MARK_EVERY`] addresses, and at the end). Any other failure (the server refusing for now, refusing everything — its login,
/// our sender — or unreachable) leaves those payments untold and the others still go (until
/// three fail in a row: then it is the server); the job then fails with the first such
/// failure, and its retry tells only the rest. A job killed between a send and its mark
/// sends those emails again: at least once, never silently lost.
pub(crate) async fn receipts(
    deps: &Deps,
    tenant: &Tenant,
    payments: &[PaymentId],
) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let targets = receipt_notice_targets(&mut tx, payments, now).await?;
    let mut nowhere = Vec::new();
    let mut by_address: Vec<(String, Vec<PaymentId>)> = Vec::new();
    for (payment, to) in targets {
        match to {
            None => nowhere.push(payment),
            Some(to) => match by_address.iter_mut().find(|(a, _)| *a == to) {
                Some((_, theirs)) => theirs.push(payment),
                None => by_address.push((to, vec![payment])),
            },
        }
    }
    receipts_noticed(&mut tx, &nowhere, now).await?;
    tx.commit().await?;
    let mut failed = None;
    let mut in_a_row = 0;
    // Told but not marked yet: marked every few addresses, and before the job ends either way.
    let mut told: Vec<PaymentId> = Vec::new();
    let mut addresses_told = 0;
    for (to, theirs) in by_address {
        match receipt_notice(deps, tenant, &to).await {
            Ok(()) => in_a_row = 0,
            Err(e) if e.is_recipient_refused() => {
                tracing::warn!(failure = %e, "a payment-received email was refused for good");
            }
            Err(e) => {
                failed.get_or_insert(e);
                // Three in a row: the server, not one address (and not worth a timeout each).
                in_a_row += 1;
                if in_a_row == 3 {
                    break;
                }
                continue;
            }
        }
        told.extend(theirs);
        addresses_told += 1;
        if addresses_told % MARK_EVERY == 0 {
            receipts_noticed_alone(&deps.tenant_db, tenant, &told, deps.clock.now()).await?;
            told.clear();
        }
    }
    receipts_noticed_alone(&deps.tenant_db, tenant, &told, deps.clock.now()).await?;
    failed.map_or(Ok(()), |e| Err(e.into()))
}

/// Addresses told between two marks: a job killed in between sends at most these again, and a
/// batch of a hundred payments needs a handful of marking transactions instead of one each.
const MARK_EVERY: usize = 8;

/// A job queued before receipts were printed on demand: its receipt prepared (when it names
/// one; a receipt that cannot be printed is marked failed, and its page offers "Try again"),
/// then the notice as [`receipts`] sends it.
pub(crate) async fn legacy_receipt(
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
    receipts(deps, tenant, &[payment]).await
}

async fn receipt_notice(deps: &Deps, tenant: &Tenant, to: &str) -> Result<(), MailError> {
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
    let message = mail::build(&deps.mailer_from, to, &email, &[])?;
    deps.mailer.send(message).await?;
    Ok(())
}
