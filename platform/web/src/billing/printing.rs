//! Statements and receipts as PDFs. The patient asks for their statement's PDF on its page
//! (`POST /bills/{id}/pdf`) and follows it on their documents page, like any document; billing
//! staff print any issued statement to post it (`POST /billing/statements/{id}/pdf`) and see,
//! download or retry it, and a payment's receipt, under the patient's billing account
//! (`/billing/patients/{id}/documents/{doc}`), never the patient's other documents. A payment's
//! receipt is printed when someone first opens it (`POST /bills/payments/{id}/receipt`, or
//! `/billing/payments/{id}/receipt` for staff), then linked beside the payment.

use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::print::{self, Asker};
use portal_domain::documents::store::DocumentError;
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::{DocumentId, PatientId, PaymentId, StatementId};
use portal_domain::scheduling::clinic_tz;

use super::not_found;
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::documents::{DocPage, serve, view};
use crate::pages::{db, render, see_other};
use crate::request::form_field as field;

fn refused(e: DocumentError) -> poem::Error {
    match e {
        DocumentError::NotFound => not_found(),
        e @ DocumentError::TooManyPending => {
            poem::Error::from_string(e.to_string(), StatusCode::TOO_MANY_REQUESTS)
        }
        e => db(e),
    }
}

/// `POST /bills/{id}/pdf`: the patient's own statement as a PDF, followed on its document page.
#[handler]
pub async fn own_pdf(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (doc, _) = print::request_statement(
        &mut tx,
        Asker::Patient(&scope),
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(refused)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!("/documents/{doc}")))
}

/// `POST /billing/statements/{id}/pdf`: any issued or voided statement, to print and post.
#[handler]
pub async fn staff_pdf(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = StatementId::parse(&raw).ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let ctx = audit_ctx(req, Some(&me));
    let (doc, patient) =
        print::request_statement(&mut tx, Asker::Billing(&scope), &ctx, id, state.clock.now())
            .await
            .map_err(refused)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!(
        "/billing/patients/{patient}/documents/{doc}"
    )))
}

/// `POST /bills/payments/{id}/receipt`: the patient's receipt of one of their payments, printed
/// now if no one opened it before, followed on its document page.
#[handler]
pub async fn own_receipt(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = PaymentId::parse(&raw).ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let (doc, _) = print::request_receipt(
        &mut tx,
        Asker::Patient(&scope),
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(refused)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!("/documents/{doc}")))
}

/// `POST /billing/payments/{id}/receipt`: any taken payment's receipt, for billing staff.
#[handler]
pub async fn staff_receipt(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = PaymentId::parse(&raw).ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let ctx = audit_ctx(req, Some(&me));
    let (doc, patient) =
        print::request_receipt(&mut tx, Asker::Billing(&scope), &ctx, id, state.clock.now())
            .await
            .map_err(refused)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!(
        "/billing/patients/{patient}/documents/{doc}"
    )))
}

fn ids(raw: &str, raw_doc: &str) -> poem::Result<(PatientId, DocumentId)> {
    Ok((
        PatientId::parse(raw).ok_or_else(not_found)?,
        DocumentId::parse(raw_doc).ok_or_else(not_found)?,
    ))
}

/// `GET /billing/patients/{id}/documents/{doc}`: a statement's or receipt's PDF, its page
/// updating itself while it is being prepared.
#[handler]
pub async fn staff_document(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_doc)): Path<(String, String)>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (patient, id) = ids(&raw, &raw_doc)?;
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let mut doc = print::document_for_billing(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        patient,
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    // An upload's note is the patient's words to their care team, not billing's to read.
    doc.note.clear();
    tx.commit().await.map_err(db)?;
    let base = format!("/billing/patients/{patient}/documents");
    render(&DocPage {
        zone: crate::pages::scheduling_view::zone_note(tz, state.clock.now()),
        chrome,
        doc: view(&doc, &base, tz, false),
        back_href: format!("/billing/patients/{patient}"),
        back_label: "Billing account".into(),
    })
    .map(IntoResponse::into_response)
}

/// `GET /billing/patients/{id}/documents/{doc}/download`.
#[handler]
pub async fn staff_download(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_doc)): Path<(String, String)>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (patient, id) = ids(&raw, &raw_doc)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let d = print::download_for_billing(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        patient,
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    serve(state, &chrome.tenant, d).await
}

/// `POST /billing/patients/{id}/documents/{doc}/retry`.
#[handler]
pub async fn staff_retry(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_doc)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (patient, id) = ids(&raw, &raw_doc)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match print::retry_for_billing(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        patient,
        id,
        state.clock.now(),
    )
    .await
    {
        Ok(()) | Err(DocumentError::NotRetryable) => {}
        Err(e) => return Err(refused(e)),
    }
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!(
        "/billing/patients/{patient}/documents/{id}"
    )))
}
