//! `/admin/api-keys`: the clinic's keys for its EHR's FHIR import. A new key is shown once, on
//! the page that made it (never in an address or an email); only its hash is kept. Revoking
//! stops it at once.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::api_keys::{self, ApiKey, ApiKeyError};

use super::admin::admin_gate;
use super::{Chrome, FormErrors, db, render, render_status, see_other, words};
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;
use crate::{AppState, internal};

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<(ApiKey, String, String)>,
    /// The key just made, shown this once.
    new_key: Option<String>,
    fhir_url: String,
    errors: FormErrors,
    typed_name: String,
}

async fn page(
    req: &poem::Request,
    state: &AppState,
    chrome: Chrome,
    me: &portal_domain::identity::scope::SignedIn,
    new_key: Option<String>,
    errors: FormErrors,
    typed_name: String,
) -> poem::Result<KeysPage> {
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let all = api_keys::list(&mut tx, &admin).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let tz = portal_domain::scheduling::clinic_tz(&chrome.tenant);
    let day = |t: chrono::DateTime<chrono::Utc>| words::date(t.with_timezone(&tz).date_naive());
    let keys = all
        .into_iter()
        .map(|k| {
            let made = day(k.created_at);
            let used = k
                .last_used_at
                .map(day)
                .unwrap_or_else(|| "never".to_owned());
            (k, made, used)
        })
        .collect();
    Ok(KeysPage {
        fhir_url: state.links.clinic(chrome.tenant.slug(), "/fhir/R4"),
        chrome,
        keys,
        new_key,
        errors,
        typed_name,
    })
}

/// `GET /admin/api-keys`.
#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let p = page(
        req,
        state,
        chrome,
        &me,
        None,
        FormErrors::default(),
        String::new(),
    )
    .await?;
    render(&p).map(IntoResponse::into_response)
}

/// `POST /admin/api-keys`: makes a key and shows it once.
#[handler]
pub async fn create(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let name = field(&f, "name").to_owned();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match api_keys::create(&mut tx, Some(&admin), &ctx, &name, now).await {
        Ok((_, key)) => {
            tx.commit().await.map_err(db)?;
            let p = page(
                req,
                state,
                chrome,
                &me,
                Some(key),
                FormErrors::default(),
                String::new(),
            )
            .await?;
            render(&p).map(IntoResponse::into_response)
        }
        Err(ApiKeyError::Database(e)) => Err(internal(e)),
        Err(e @ ApiKeyError::BadName) => {
            drop(tx);
            let p = page(
                req,
                state,
                chrome,
                &me,
                None,
                FormErrors::one("key-name", e.to_string()),
                name,
            )
            .await?;
            render_status(&p, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// `POST /admin/api-keys/{id}/revoke`.
#[handler]
pub async fn revoke(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match admin_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let id =
        uuid::Uuid::try_parse(&raw).map_err(|_| poem::Error::from(poem::error::NotFoundError))?;
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    api_keys::revoke(&mut tx, Some(&admin), &ctx, id, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other("/admin/api-keys"))
}
