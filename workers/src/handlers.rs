//! Job handlers. Each job runs through [`handle`]: claimed in the delivery log (a repeat of a
//! finished job is a no-op), attempted with exponential backoff, and after the last failed
//! attempt marked dead — never silently dropped.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{AbortError, BoxDynError, Data};
use portal_domain::identity::links::{self, LinkPurpose};
use portal_domain::jobs::{JOB_VERSION, Job, JobEnvelope};
use portal_tenants::Tenant;

use crate::mail::{self, ActionEmail, Branding, MailError};
use crate::{Deps, delivery};

/// Why one attempt failed. The text is stored in the delivery log: categories and codes only.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Permanent(String),
    /// The clinic is suspended: nothing is sent; the job waits for it to reopen.
    #[error("clinic suspended")]
    Held,
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Retry(format!(
            "database: {}",
            e.as_database_error()
                .and_then(|d| d.code())
                .unwrap_or_default()
        ))
    }
}

impl From<MailError> for JobError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Transient(m) => JobError::Retry(m),
            MailError::Permanent(m) | MailError::Refused(m) => JobError::Permanent(m),
        }
    }
}

pub(crate) async fn handle(job: JobEnvelope, deps: Data<Arc<Deps>>) -> Result<(), BoxDynError> {
    let deps: &Deps = &deps;
    let Some(attempts) = delivery::claim(
        &deps.pool,
        &job,
        &deps.config.worker_name,
        deps.config.lease,
    )
    .await?
    else {
        tracing::debug!(job = %job.id, "already finished, or running elsewhere; nothing to do");
        return Ok(());
    };
    // The attempts run beside a heartbeat that renews this worker's lease on the job; if the
    // process dies, both stop together and another worker may take the job over.
    tokio::select! {
        result = attempts_until_done(deps, &job, attempts) => result,
        () = delivery::heartbeat(&deps.pool, &job, &deps.config.worker_name, deps.config.lease / 3) => Ok(()),
    }
}

/// Runs the job until it succeeds or dies; `attempts` is how many failed before.
async fn attempts_until_done(
    deps: &Deps,
    job: &JobEnvelope,
    mut attempts: i32,
) -> Result<(), BoxDynError> {
    loop {
        match run(deps, job).await {
            Err(JobError::Held) => {
                delivery::hold(&deps.pool, job).await?;
                tracing::info!(job = %job.id, kind = %job.kind, "clinic suspended; job held");
                return Ok(());
            }
            Ok(()) => {
                delivery::done(&deps.pool, job).await?;
                tracing::info!(job = %job.id, kind = %job.kind, "job done");
                return Ok(());
            }
            Err(e) => {
                let max = Job::from_parts(&job.kind, job.payload.clone())
                    .map_or(deps.config.max_attempts, |j| {
                        j.max_attempts(deps.config.max_attempts)
                    });
                let last = matches!(e, JobError::Permanent(_)) || attempts + 1 >= max as i32;
                // What giving up means to people (a document shown as failed) is recorded
                // before the delivery is marked dead: whoever waits for the job to end then
                // finds its outcome, never a document still "preparing" behind a dead job.
                if last && let Err(e) = gave_up(deps, job).await {
                    tracing::warn!(job = %job.id, error = %e, "could not record the job's failure");
                }
                attempts = delivery::failed(&deps.pool, job, &e.to_string(), last).await?;
                if last {
                    tracing::error!(job = %job.id, kind = %job.kind, attempts, error = %e, "job is dead");
                    return Err(Box::new(AbortError::new(e)));
                }
                let delay = backoff(deps, attempts);
                tracing::warn!(job = %job.id, kind = %job.kind, attempts, error = %e, ?delay, "job failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// What a job's final failure means to the people waiting on it: a document says it could
/// not be prepared (with its "Try again" button) instead of being prepared forever.
async fn gave_up(deps: &Deps, env: &JobEnvelope) -> Result<(), JobError> {
    if let Ok(
        Job::DocumentRender { document_id }
        | Job::PaymentReceipt {
            document_id: Some(document_id),
            ..
        },
    ) = Job::from_parts(&env.kind, env.payload.clone())
        && let Ok(Some(tenant)) = deps.clinics.get(env.tenant_id).await
    {
        crate::documents::render_failed(deps, &tenant, document_id).await?;
    }
    Ok(())
}

/// `base · 2^(attempt-1)`, capped, with up to 25% jitter so retries of many jobs spread out.
fn backoff(deps: &Deps, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let raw = deps
        .config
        .retry_base
        .saturating_mul(1 << exp)
        .min(deps.config.retry_cap);
    let jitter = rand::random::<f64>() * 0.25;
    raw.mul_f64(1.0 + jitter)
}

async fn run(deps: &Deps, env: &JobEnvelope) -> Result<(), JobError> {
    if env.version != JOB_VERSION {
        return Err(JobError::Permanent(format!(
            "unknown payload version {}",
            env.version
        )));
    }
    let job = Job::from_parts(&env.kind, env.payload.clone())
        .map_err(|_| JobError::Permanent(format!("unknown job {}", env.kind)))?;
    let tenant = deps
        .clinics
        .get(env.tenant_id)
        .await
        .map_err(|_| JobError::Retry("registry lookup failed".into()))?
        .ok_or_else(|| JobError::Permanent("clinic no longer exists".into()))?;
    // A suspended clinic sends nothing; its jobs wait (visible as held) until it reopens. The
    // cached entry may be up to a minute old, so a clinic that looks suspended is read again.
    let tenant = if tenant.is_active() {
        tenant
    } else {
        deps.clinics
            .fresh(env.tenant_id)
            .await
            .map_err(|_| JobError::Retry("registry lookup failed".into()))?
            .ok_or_else(|| JobError::Permanent("clinic no longer exists".into()))?
    };
    if !tenant.is_active() {
        return Err(JobError::Held);
    }
    match job {
        Job::SendInvitation { user_id } => {
            send_link(deps, &tenant, user_id, LinkPurpose::Invitation).await
        }
        Job::SendPasswordReset { user_id } => {
            send_link(deps, &tenant, user_id, LinkPurpose::PasswordReset).await
        }
        Job::AppointmentNotice {
            appointment_id,
            version,
            change,
        } => crate::notices::appointment(deps, &tenant, appointment_id, version, change).await,
        Job::VerifyPhone { patient_id } => {
            crate::notices::phone_code(deps, &tenant, env.id, patient_id).await
        }
        Job::WaitlistOffer { offer_id, channel } => {
            crate::notices::waitlist_offer(deps, &tenant, env.id, offer_id, channel, &job).await
        }
        Job::ResultNotice {
            report_id,
            channel,
            visible_from,
            stage,
        } => {
            crate::results::notice(
                deps,
                &tenant,
                env.id,
                &job,
                report_id,
                channel,
                visible_from,
                stage,
            )
            .await
        }
        Job::DocumentRender { document_id } => {
            crate::documents::render_job(deps, &tenant, document_id).await
        }
        Job::BlobSweep { blob } => crate::documents::sweep_job(deps, &tenant, &blob).await,
        Job::StatementNotice {
            statement_id,
            channel,
        } => crate::billing::notice(deps, &tenant, env.id, &job, statement_id, channel).await,
        Job::PaymentReceipts { payment_ids } => {
            crate::billing::receipts(deps, &tenant, &payment_ids).await
        }
        Job::PaymentReceipt {
            payment_id,
            document_id,
        } => crate::billing::legacy_receipt(deps, &tenant, payment_id, document_id).await,
        Job::StripeInbox {} => crate::stripe_inbox::drain(deps, &tenant).await,
        Job::StripeEvent { event_id } => {
            crate::stripe_inbox::legacy_event(deps, &tenant, &event_id).await
        }
        Job::StripeRefund { refund_id } => {
            crate::payments::send_refund(deps, &tenant, refund_id).await
        }
        Job::StripeReconcile {} => crate::payments::reconcile_clinic(deps, &tenant).await,
        Job::Autopay {} => crate::autopay::run(deps, &tenant).await,
        Job::AutopayFailed { payment_id } => {
            crate::autopay::failed_notice(deps, &tenant, payment_id).await
        }
        Job::Reminder {
            appointment_id,
            version,
            channel,
            ..
        } => {
            crate::reminders::send(
                deps,
                &tenant,
                env.id,
                appointment_id,
                version,
                channel,
                &job,
            )
            .await
        }
    }
}

/// Puts a text that would go out in quiet hours back in the outbox for the morning (a new
/// job; this one ends having sent nothing). `false` when it may go now.
pub(crate) async fn defer_if_quiet(
    deps: &Deps,
    tenant: &Tenant,
    job: &Job,
) -> Result<bool, JobError> {
    let tz = portal_domain::scheduling::clinic_tz(tenant);
    let Some(morning) = portal_domain::scheduling::reminders::quiet_until(deps.clock.now(), tz)
    else {
        return Ok(false);
    };
    let mut tx = deps.tenant_db.begin(tenant).await?;
    portal_domain::jobs::enqueue_many(&mut tx, &[(job.clone(), Some(morning))])
        .await
        .map_err(|_| JobError::Retry("could not defer the text".into()))?;
    tx.commit().await?;
    tracing::info!(kind = %job.kind(), "text deferred past quiet hours");
    Ok(true)
}

/// The clinic's look in its emails.
pub(crate) fn branding(deps: &Deps, tenant: &Tenant) -> Branding {
    Branding {
        clinic_name: tenant.display_name().to_owned(),
        sender_name: tenant.branding().sender_name.clone(),
        primary_color: tenant.branding().primary_color.clone(),
        logo_url: tenant
            .branding()
            .has_logo
            .then(|| deps.links.clinic(tenant.slug(), "/branding/logo")),
    }
}

/// Creates the link token and emails it, in one clinic transaction: if the email cannot be
/// sent, the token is rolled back and the next attempt makes a new one.
async fn send_link(
    deps: &Deps,
    tenant: &Tenant,
    user: portal_domain::ids::UserId,
    purpose: LinkPurpose,
) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let Some((token, to)) = links::issue(&mut tx, user, purpose, now).await? else {
        // The person no longer needs this email (already joined, or account closed).
        tx.commit().await?;
        return Ok(());
    };
    let branding = branding(deps, tenant);
    let name = tenant.display_name();
    let email = match purpose {
        LinkPurpose::Invitation => ActionEmail {
            subject: format!("You're invited to the {name} patient portal"),
            heading: format!("Join {name} online"),
            intro: format!(
                "{name} has invited you to its secure portal. Choose a password to finish setting up your account."
            ),
            action_label: "Set up your account".into(),
            action_url: deps.links.clinic(tenant.slug(), &format!("/invite/{}", token.expose())),
            note: "This link works once and expires in 7 days.".into(),
            branding,
        },
        LinkPurpose::PasswordReset => ActionEmail {
            subject: format!("Reset your {name} portal password"),
            heading: "Reset your password".into(),
            intro: format!(
                "Someone asked to reset the password of your {name} portal account. If it was you, choose a new password."
            ),
            action_label: "Choose a new password".into(),
            action_url: deps.links.clinic(tenant.slug(), &format!("/reset/{}", token.expose())),
            note: "This link works once and expires in 30 minutes. Your current password keeps working until you change it.".into(),
            branding,
        },
    };
    let message = mail::build(&deps.mailer_from, &to, &email, &[])?;
    deps.mailer.send(message).await?;
    tx.commit().await?;
    Ok(())
}
