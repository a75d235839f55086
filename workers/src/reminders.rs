//! Sending one reminder. The visit is read again first: a reminder whose visit was cancelled,
//! moved (version changed) or has passed sends nothing, and the patient's current channel
//! choices and SMS opt-out are honoured. Messages name the clinic and the time, never the
//! reason, the provider or the kind of visit.

use portal_domain::ids::{AppointmentId, JobId};
use portal_domain::jobs::Channel;
use portal_domain::scheduling::appointments::for_notice;
use portal_domain::scheduling::{AppointmentStatus, clinic_tz, local_label};
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::{JobError, branding};
use crate::mail::{self, ActionEmail};
use crate::sms::SmsError;

impl From<SmsError> for JobError {
    fn from(e: SmsError) -> Self {
        match e {
            SmsError::Transient(m) => JobError::Retry(m),
            SmsError::Permanent(m) => JobError::Permanent(m),
        }
    }
}

pub(crate) async fn send(
    deps: &Deps,
    tenant: &Tenant,
    job: JobId,
    id: AppointmentId,
    version: i32,
    channel: Channel,
    whole: &portal_domain::jobs::Job,
) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let target = for_notice(&mut tx, id, now).await?;
    tx.commit().await?;
    let Some(t) = target else {
        return Ok(());
    };
    let a = &t.appointment;
    if a.status != AppointmentStatus::Booked || a.version != version || a.starts_at <= now {
        tracing::debug!(appointment = %id, "reminder is stale; nothing sent");
        return Ok(());
    }
    let name = tenant.display_name();
    let when = local_label(a.starts_at, clinic_tz(tenant));
    match channel {
        Channel::Email => {
            let Some(to) = t.email.filter(|_| t.reminder_email) else {
                return Ok(());
            };
            let email = ActionEmail {
                branding: branding(deps, tenant),
                subject: format!("Reminder: your visit at {name}"),
                heading: "Your visit is coming up".to_owned(),
                intro: format!("This is a reminder of your visit at {name} on {when}."),
                action_label: "See your appointments".to_owned(),
                action_url: deps.links.clinic(tenant.slug(), "/appointments"),
                note: "Sign in to the portal to see the details, or to move or cancel the visit."
                    .to_owned(),
            };
            let message = mail::build(&deps.mailer_from, &to, &email, &[])?;
            deps.mailer.send(message).await?;
        }
        Channel::Sms => {
            let Some(to) = t.phone.filter(|_| t.reminder_sms) else {
                return Ok(());
            };
            if crate::handlers::defer_if_quiet(deps, tenant, whole).await? {
                return Ok(());
            }
            let confirm = if t.confirmed {
                ""
            } else {
                " Reply C to confirm."
            };
            let body = format!(
                "{name}: reminder of your visit on {when}.{confirm} Reply STOP to opt out."
            );
            crate::texting::send(deps, tenant, &to, &body, &job.to_string()).await?;
        }
    }
    Ok(())
}
