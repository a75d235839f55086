//! `/admin/clinic`: the clinic's contact details (phone, address, opening hours, what to do
//! after hours), edited by clinic admins. They show on the clinic's public page, in every
//! "please call the clinic" message, in visit emails and in calendar files.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::clinic::{ClinicProfile, ProfileError, ProfileInput};

use super::admin::admin_gate;
use super::{Chrome, FormErrors, db, render, render_status, see_other};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;

#[derive(Default, serde::Deserialize)]
pub struct DetailsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    welcome_message: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    after_hours: String,
    provider_in_emails: Option<String>,
}

impl DetailsForm {
    fn of(p: &ClinicProfile) -> Self {
        Self {
            csrf: String::new(),
            welcome_message: p.welcome_message.clone(),
            phone: p.phone.clone().unwrap_or_default(),
            address: p.address.clone().unwrap_or_default(),
            hours: p.hours.clone().unwrap_or_default(),
            after_hours: p.after_hours.clone().unwrap_or_default(),
            provider_in_emails: p.provider_in_emails.then(|| "1".to_owned()),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_clinic.html")]
struct DetailsPage {
    chrome: Chrome,
    f: DetailsForm,
    errors: FormErrors,
    saved: bool,
}

#[derive(serde::Deserialize)]
pub struct SavedQuery {
    done: Option<String>,
}

#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<SavedQuery>,
) -> poem::Result<Response> {
    let (chrome, _) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let profile = ClinicProfile::load(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&DetailsPage {
        chrome,
        f: DetailsForm::of(&profile),
        errors: FormErrors::default(),
        saved: q.done.as_deref() == Some("saved"),
    })
    .map(IntoResponse::into_response)
}

#[handler]
pub async fn submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<DetailsForm>,
) -> poem::Result<Response> {
    check_form(req, &f.csrf)?;
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let parsed = ClinicProfile::parse(&ProfileInput {
        welcome_message: &f.welcome_message,
        phone: &f.phone,
        address: &f.address,
        hours: &f.hours,
        after_hours: &f.after_hours,
        provider_in_emails: f.provider_in_emails.is_some(),
    });
    let profile = match parsed {
        Ok(p) => p,
        Err(e @ ProfileError::Database(_)) => return Err(db(e)),
        Err(e) => {
            let errors = FormErrors::one(e.field(), super::scheduling_view::sentence(&e));
            return render_status(
                &DetailsPage {
                    chrome,
                    f,
                    errors,
                    saved: false,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    profile
        .update(
            &mut tx,
            &admin,
            &audit_ctx(req, Some(&me)),
            state.clock.now(),
        )
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other("/admin/clinic?done=saved"))
}
