//! `/staff/undelivered`: reminders, notices and offers that could not be sent, so staff can
//! reach those patients another way.

use askama::Template;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::scheduling::{clinic_tz, local_label};
use portal_domain::undelivered::{self, WINDOW_DAYS};

use super::{Chrome, Gate, db, render, require_user};
use crate::AppState;
use crate::auth::audit_ctx;

pub struct Row {
    pub what: String,
    pub who: String,
    /// The staff page of the patient, when known.
    pub patient_link: Option<String>,
    pub visit: String,
    pub failed: String,
    pub attempts: i32,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "undelivered.html")]
struct UndeliveredPage {
    chrome: Chrome,
    rows: Vec<Row>,
    days: i64,
}

#[handler]
pub async fn undelivered_page(
    req: &Request,
    Data(state): Data<&AppState>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "schedule").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let Some(staff) = me.scheduling() else {
        return Err(poem::error::NotFoundError.into());
    };
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let list = undelivered::list(
        &mut tx,
        &staff,
        &audit_ctx(req, Some(&me)),
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let rows = list
        .into_iter()
        .map(|u| Row {
            what: u.what,
            who: u.who.unwrap_or_else(|| "—".to_owned()),
            patient_link: u.patient_id.map(|p| format!("/admin/patients/{p}")),
            visit: u
                .visit_at
                .map_or_else(|| "—".to_owned(), |t| local_label(t, tz)),
            failed: local_label(u.failed_at, tz),
            attempts: u.attempts,
            reason: u.reason.unwrap_or_default(),
        })
        .collect();
    Ok(render(&UndeliveredPage {
        chrome,
        rows,
        days: WINDOW_DAYS,
    })?
    .into_response())
}
