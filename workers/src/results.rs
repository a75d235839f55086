//! "A new result is ready": by email or text, one job per channel, with no result content —
//! not the test, not the value, not even whether it is a lab or an imaging result. A notice
//! whose result's release time moved since it was queued (a clinician's comment released it
//! early, and that release queued its own notice) is stale and sends nothing.

use chrono::{DateTime, Utc};
use portal_domain::jobs::{Channel, Job, ResultStage};
use portal_domain::record::results::for_notice;
use portal_domain::scheduling::clinic_tz;
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::{JobError, branding};
use crate::mail::{self, ActionEmail};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn notice(
    deps: &Deps,
    tenant: &Tenant,
    job_id: portal_domain::ids::JobId,
    whole: &Job,
    report: uuid::Uuid,
    channel: Channel,
    visible_from: DateTime<Utc>,
    stage: ResultStage,
) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let target = for_notice(&mut tx, report, visible_from, now).await?;
    tx.commit().await?;
    let Some(t) = target else {
        return Ok(());
    };
    let name = tenant.display_name();
    let day = t
        .visible_from
        .with_timezone(&clinic_tz(tenant))
        .format("%a %-d %b %Y")
        .to_string();
    let (headline, text) = match stage {
        ResultStage::Ready => (
            "A new result is ready".to_owned(),
            format!("A new result is ready in your {name} portal. Sign in to see it."),
        ),
        ResultStage::Waiting => (
            "A new result is in".to_owned(),
            format!(
                "A new result is in your {name} portal. As you asked, you will see it once your clinician has commented on it, or on {day}."
            ),
        ),
        ResultStage::Released => (
            "Your result can now be seen".to_owned(),
            format!("A result you chose to wait for can now be seen in your {name} portal."),
        ),
    };
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
                subject: format!("{headline} — {name}"),
                heading: headline,
                intro: text,
                action_label: "Sign in to see your results".to_owned(),
                action_url: deps.links.clinic(tenant.slug(), "/results"),
                note: "For your privacy this message never says what the result is.".to_owned(),
            };
            let message = mail::build(&deps.mailer_from, &to, &email, &[])?;
            deps.mailer.send(message).await?;
        }
    }
    Ok(())
}
