//! `/admin/letters`: the clinic's own wording of its referral letter (clinic admins), with
//! the placeholders each letter fills in.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::documents::letters;

use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other};
use crate::AppState;
use crate::csrf::check_form;
use crate::request::form_field as field;

#[derive(Template)]
#[template(path = "admin_letters.html")]
struct LettersPage {
    chrome: Chrome,
    errors: FormErrors,
    body: String,
    saved: bool,
    placeholders: Vec<(&'static str, &'static str)>,
}

fn page(chrome: Chrome, errors: FormErrors, body: String, saved: bool) -> LettersPage {
    LettersPage {
        chrome,
        errors,
        body,
        saved,
        placeholders: letters::PLACEHOLDERS.to_vec(),
    }
}

#[derive(serde::Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

/// `GET /admin/letters`.
#[handler]
pub async fn letters_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<Saved>,
) -> poem::Result<Response> {
    let chrome = match require_user(req, state, "admin").await? {
        Gate::In(c, _) => c,
        Gate::Out(r) => return Ok(r),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let body = letters::referral_template(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&page(
        chrome,
        FormErrors::default(),
        body,
        q.saved.is_some(),
    ))
    .map(IntoResponse::into_response)
}

/// `POST /admin/letters`.
#[handler]
pub async fn save_letters(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match require_user(req, state, "admin").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let admin = me
        .admin()
        .ok_or_else(|| poem::Error::from(poem::error::NotFoundError))?;
    let typed = field(&f, "template").to_owned();
    let body = match letters::check_template(&typed) {
        Ok(b) => b,
        Err(e) => {
            return render_status(
                &page(chrome, FormErrors::one("template", e.message), typed, false),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let ctx = crate::auth::audit_ctx(req, Some(&me));
    letters::save_referral_template(&mut tx, &admin, &ctx, &body, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other("/admin/letters?saved=1"))
}
