//! Appointment notices: "your visit is booked / moved / cancelled", with a calendar file. The
//! email names the clinic, the time and how to call the clinic — the clinician only where the
//! clinic allows it, the reason for the visit never. A notice whose
//! appointment has changed again since it was queued is stale and sends nothing; the newer
//! change has its own notice.

use portal_domain::clinic::ClinicProfile;
use portal_domain::ids::AppointmentId;
use portal_domain::jobs::AppointmentChange;
use portal_domain::scheduling::appointments::for_notice;
use portal_domain::scheduling::{AppointmentStatus, calendar, clinic_tz, local_label};
use portal_tenants::Tenant;

use crate::Deps;
use crate::handlers::{JobError, branding};
use crate::mail::{self, ActionEmail, Attachment};

pub(crate) async fn appointment(
    deps: &Deps,
    tenant: &Tenant,
    id: AppointmentId,
    version: i32,
    change: AppointmentChange,
) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let Some(target) = for_notice(&mut tx, id, now).await? else {
        tx.commit().await?;
        return Ok(());
    };
    let profile = ClinicProfile::load(&mut tx)
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
    tx.commit().await?;
    let a = &target.appointment;
    let cancelled = a.status == AppointmentStatus::Cancelled;
    let current = match change {
        AppointmentChange::Cancelled => cancelled,
        AppointmentChange::Booked | AppointmentChange::Moved => !cancelled && a.version == version,
    };
    let Some(to) = target.email.filter(|_| current) else {
        tracing::debug!(appointment = %id, "notice is stale or the patient has no email");
        return Ok(());
    };
    let name = tenant.display_name();
    let call_us = profile.call_us(name);
    // "with Dr. Reyes" only where the clinic allows it; never the reason for the visit.
    let when = if profile.provider_in_emails {
        format!(
            "{} with {}",
            local_label(a.starts_at, clinic_tz(tenant)),
            a.provider_name
        )
    } else {
        local_label(a.starts_at, clinic_tz(tenant))
    };
    let (subject, heading, intro) = match change {
        AppointmentChange::Booked => (
            format!("Your visit at {name} is booked"),
            "Your visit is booked".to_owned(),
            format!(
                "Your visit at {name} is booked for {when}. Open the attached calendar file to add it to your calendar."
            ),
        ),
        AppointmentChange::Moved => (
            format!("Your visit at {name} has moved"),
            "Your visit has moved".to_owned(),
            format!(
                "Your visit at {name} is now on {when}. Open the attached calendar file to update your calendar."
            ),
        ),
        AppointmentChange::Cancelled => (
            format!("Your visit at {name} is cancelled"),
            "Your visit is cancelled".to_owned(),
            format!("Your visit at {name} on {when} is cancelled."),
        ),
    };
    let email = ActionEmail {
        branding: branding(deps, tenant),
        subject,
        heading,
        intro,
        action_label: "See your appointments".to_owned(),
        action_url: deps.links.clinic(tenant.slug(), "/appointments"),
        note: format!(
            "Sign in to the portal to see the details, or to move or cancel the visit. {call_us}"
        ),
    };
    let ics = calendar::ics(a, name, &call_us, tenant.slug(), now);
    let method = if cancelled { "CANCEL" } else { "PUBLISH" };
    let attachment = Attachment {
        filename: "visit.ics".to_owned(),
        content_type: format!("text/calendar; charset=utf-8; method={method}"),
        body: ics.into_bytes(),
    };
    let message = mail::build(&deps.mailer_from, &to, &email, &[attachment])?;
    deps.mailer.send(message).await?;
    Ok(())
}

/// "An earlier time opened": by email, and by SMS when the patient allows texts. Stale (sends
/// nothing) once the offer was accepted or taken.
pub(crate) async fn waitlist_offer(
    deps: &Deps,
    tenant: &Tenant,
    job: portal_domain::ids::JobId,
    offer: portal_domain::ids::OfferId,
    channel: Option<portal_domain::jobs::Channel>,
    whole: &portal_domain::jobs::Job,
) -> Result<(), JobError> {
    use portal_domain::jobs::Channel;
    let (email, sms) = match channel {
        Some(Channel::Email) => (true, false),
        Some(Channel::Sms) => (false, true),
        None => (true, true),
    };
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let target = portal_domain::scheduling::waitlist::for_offer_notice(&mut tx, offer, now).await?;
    tx.commit().await?;
    let Some(t) = target else {
        return Ok(());
    };
    let name = tenant.display_name();
    let when = local_label(t.starts_at, clinic_tz(tenant));
    if let Some(phone) = t.phone.as_ref().filter(|_| sms) {
        if crate::handlers::defer_if_quiet(deps, tenant, whole).await? {
            return Ok(());
        }
        let body = format!(
            "{name}: an earlier time opened, {when}. Sign in to the portal to take it. Reply STOP to opt out."
        );
        crate::texting::send(deps, tenant, phone, &body, &job.to_string()).await?;
    }
    if let Some(to) = t.email.as_ref().filter(|_| email) {
        let email = ActionEmail {
            branding: crate::handlers::branding(deps, tenant),
            subject: format!("An earlier time opened at {name}"),
            heading: "An earlier time opened".to_owned(),
            intro: format!(
                "You asked {name} to offer you an earlier time. {when} is now free; the first patient to take it gets it."
            ),
            action_label: "See the offer".to_owned(),
            action_url: deps.links.clinic(tenant.slug(), "/appointments"),
            note: "If you do nothing, your current visit stays as it is.".to_owned(),
        };
        let message = mail::build(&deps.mailer_from, to, &email, &[])?;
        deps.mailer.send(message).await?;
    }
    Ok(())
}

/// Texts a code to a patient's new mobile number. The code is made here, in the clinic
/// transaction that commits only once the text is handed to the provider, so a failed send
/// leaves no valid code behind.
pub(crate) async fn phone_code(
    deps: &Deps,
    tenant: &Tenant,
    job: portal_domain::ids::JobId,
    patient: portal_domain::ids::PatientId,
) -> Result<(), JobError> {
    let now = deps.clock.now();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let Some((code, phone)) = portal_domain::phone::issue_code(&mut tx, patient, now).await? else {
        tx.commit().await?;
        return Ok(());
    };
    let body = format!(
        "{}: your code to confirm this number is {code}. It works for 15 minutes.",
        tenant.display_name()
    );
    crate::texting::send(deps, tenant, &phone, &body, &job.to_string()).await?;
    tx.commit().await?;
    Ok(())
}
