//! `/admin/payments`: a clinic administrator connects the clinic's own Stripe account
//! (Connect, Express) and follows its state — not connected, pending, enabled or restricted —
//! with what Stripe still needs. Stripe's onboarding pages are Stripe's; they send the browser
//! back to `/admin/payments/return` (the state is read again from Stripe there) or, when a
//! link has expired, to `/admin/payments/refresh` for a new one.

use std::collections::HashMap;

use askama::Template;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::setup::{self, Stage};
use portal_domain::identity::scope::SignedIn;

use super::not_found;
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::{Chrome, db, render, see_other};
use crate::request::form_field as field;

#[derive(Template)]
#[template(path = "admin_payments.html")]
struct SetupPage {
    chrome: Chrome,
    configured: bool,
    stage: &'static str,
    stage_label: &'static str,
    connected: bool,
    enabled: bool,
    due: Vec<String>,
    notice: Option<&'static str>,
    problem: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /admin/payments`.
#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let (chrome, _, _) = match super::gate(req, state, "admin", SignedIn::admin).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let notice = match q.done.as_deref() {
        Some("returned") => Some("Welcome back. This is what Stripe says now."),
        _ => None,
    };
    show(req, state, chrome, notice, None).await
}

async fn show(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> poem::Result<Response> {
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let s = setup::read(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let stage = s.stage();
    render(&SetupPage {
        configured: state.stripe.is_some(),
        stage: stage.code(),
        stage_label: stage.label(),
        connected: stage != Stage::NotConnected,
        enabled: stage == Stage::Enabled,
        due: s.requirements_due.iter().map(|r| plain(r)).collect(),
        notice,
        problem,
        chrome,
    })
    .map(IntoResponse::into_response)
}

/// Stripe's requirement names in words ("individual.dob.day" → "individual dob day").
fn plain(requirement: &str) -> String {
    requirement.replace(['.', '_'], " ")
}

fn unavailable(e: &portal_stripe::StripeError) -> String {
    tracing::warn!(error = %e, "Stripe onboarding call failed");
    "Stripe could not be reached just now. Nothing was changed; try again in a few minutes."
        .to_owned()
}

/// Where Stripe sends the browser back to, on the clinic's own site.
fn urls(state: &AppState, chrome: &Chrome) -> (String, String) {
    let slug = chrome.tenant.slug();
    (
        state.links.clinic(slug, "/admin/payments/refresh"),
        state.links.clinic(slug, "/admin/payments/return"),
    )
}

/// `POST /admin/payments/connect`: makes the clinic's Stripe account (once) and sends the
/// administrator to Stripe's onboarding.
#[handler]
pub async fn connect(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, admin) = match super::gate(req, state, "admin", SignedIn::admin).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(payments) = state.stripe.clone() else {
        return Err(not_found());
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let existing = setup::read(&mut tx).await.map_err(db)?.account;
    tx.commit().await.map_err(db)?;
    let account = match existing {
        Some(a) => a,
        None => {
            // The key is the clinic's: a double click or a retry makes one account, not two.
            let key = format!("clinic-{}-account", chrome.tenant.id());
            let meta = HashMap::from([("clinic".to_owned(), chrome.tenant.id().to_string())]);
            let made = match payments.client.create_account(&key, None, meta).await {
                Ok(a) => a,
                Err(e) => return show(req, state, chrome, None, Some(unavailable(&e))).await,
            };
            let ctx = audit_ctx(req, Some(&me));
            let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
            setup::connect(&mut tx, &admin, &ctx, &made, state.clock.now())
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            made.id
        }
    };
    let (refresh_url, return_url) = urls(state, &chrome);
    match payments
        .client
        .onboarding_link(&account, &refresh_url, &return_url)
        .await
    {
        Ok(url) => Ok(see_other(&url)),
        Err(e) => show(req, state, chrome, None, Some(unavailable(&e))).await,
    }
}

/// `GET /admin/payments/refresh`: Stripe's link expired; a new one.
#[handler]
pub async fn refresh(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, _, _) = match super::gate(req, state, "admin", SignedIn::admin).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(payments) = state.stripe.clone() else {
        return Err(not_found());
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let account = setup::read(&mut tx).await.map_err(db)?.account;
    tx.commit().await.map_err(db)?;
    let Some(account) = account else {
        return Ok(see_other("/admin/payments"));
    };
    let (refresh_url, return_url) = urls(state, &chrome);
    match payments
        .client
        .onboarding_link(&account, &refresh_url, &return_url)
        .await
    {
        Ok(url) => Ok(see_other(&url)),
        Err(e) => show(req, state, chrome, None, Some(unavailable(&e))).await,
    }
}

/// `GET /admin/payments/return`: back from Stripe; reads the account's state again.
#[handler]
pub async fn returned(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, _, _) = match super::gate(req, state, "admin", SignedIn::admin).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(payments) = state.stripe.clone() else {
        return Err(not_found());
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let account = setup::read(&mut tx).await.map_err(db)?.account;
    tx.commit().await.map_err(db)?;
    if let Some(account) = account {
        match payments.client.account(&account).await {
            Ok(now_state) => {
                let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
                setup::refresh(&mut tx, &now_state, state.clock.now())
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
            }
            Err(e) => return show(req, state, chrome, None, Some(unavailable(&e))).await,
        }
    }
    Ok(see_other("/admin/payments?done=returned"))
}
