use askama::Template;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::audit::{self, AuditEntry};
use portal_domain::clinic::ClinicProfile;
use portal_domain::patients::{self, Patient};

use super::{Chrome, Gate, chrome, db, platform, render, require_user, see_other};
use crate::auth::audit_ctx;
use crate::{AppState, CurrentSite};

#[derive(Template)]
#[template(path = "clinic_home.html")]
struct ClinicHome {
    chrome: Chrome,
    profile: ClinicProfile,
    self_signup: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    patient: Patient,
}

/// One row of an access log, ready to show.
pub(crate) struct LogRow {
    pub when: String,
    pub who: String,
    pub role: String,
    pub what: &'static str,
    pub from: String,
    pub request: String,
}

/// Rows of an access log. A row with no person behind it reads as `nobody` (for a patient:
/// the clinic, acting automatically).
pub(crate) fn log_rows(
    entries: Vec<AuditEntry>,
    tz: chrono_tz::Tz,
    nobody: (&str, &str),
) -> Vec<LogRow> {
    entries
        .into_iter()
        .map(|e| LogRow {
            when: e.at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
            who: e.actor_name.unwrap_or_else(|| nobody.0.to_owned()),
            role: e
                .actor_role
                .as_deref()
                .and_then(portal_domain::identity::Role::parse)
                .map_or(nobody.1, |r| r.label())
                .to_owned(),
            what: audit::describe(&e.action),
            from: e.client_addr.unwrap_or_default(),
            request: e.request_id.unwrap_or_default(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "access_log.html")]
pub(crate) struct AccessLog {
    pub chrome: Chrome,
    pub heading: String,
    pub intro: &'static str,
    pub entries: Vec<LogRow>,
    pub detailed: bool,
    pub back: Option<(String, &'static str)>,
}

/// `/`: the signed-in patient's dashboard, the clinic's public home page, or the platform's.
#[handler]
pub async fn home(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    if let Some(CurrentSite::Platform) = req.extensions().get::<CurrentSite>() {
        return Ok(platform::home(req)?.into_response());
    }
    let chrome = chrome(req, state, "home").await?;
    if let Some(me) = chrome.user.clone() {
        if me.role.is_staff() {
            return Ok(see_other("/admin"));
        }
        if let Some(scope) = me.patient() {
            let ctx = audit_ctx(req, Some(&me));
            let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
            let patient = patients::own(&mut tx, &scope, &ctx, state.clock.now())
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            if let Some(patient) = patient {
                return Ok(render(&Dashboard { chrome, patient })?.into_response());
            }
        }
    }
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let (profile, self_signup) = ClinicProfile::load_for_home(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(render(&ClinicHome {
        chrome,
        profile,
        self_signup,
    })?
    .into_response())
}

/// `/account/access`: who viewed my record.
#[handler]
pub async fn access(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "account").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let Some(scope) = me.patient() else {
        return Ok(see_other("/admin/audit"));
    };
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let entries = audit::about_me(&mut tx, &scope, 200).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let tz = super::invite::chrono_tz_of(&chrome.tenant);
    let automatic = format!("{} — automatic", chrome.tenant.display_name());
    let entries = log_rows(entries, tz, (&automatic, "Clinic"));
    Ok(render(&AccessLog {
        chrome,
        heading: "Who viewed my record".into(),
        intro: "Every time someone at the clinic — or you — opens your record, it is listed here.",
        entries,
        detailed: false,
        back: Some(("/".into(), "Back to your portal")),
    })?
    .into_response())
}
