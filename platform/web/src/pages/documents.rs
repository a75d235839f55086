//! The documents area. A patient's (`/documents`): their documents newest first, buttons to
//! ask for a PDF of their record, one document's page (`/documents/{id}`, updating by itself
//! from queued to ready, with "Try again" when it failed), downloads, uploads
//! (`/documents/upload`) and removing their own upload. Clinical staff see and make the same
//! for a patient under `/admin/patients/{id}/documents`. The stores audit every read and
//! write; another patient's document answers 404.

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use poem::http::StatusCode;
use poem::web::{Data, Form, Multipart, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::documents::letters::Referral;
use portal_domain::documents::store::{self, Requester};
use portal_domain::documents::{
    ContentError, Document, DocumentError, Kind, MAX_UPLOAD, Stored, VaultError, content,
};
use portal_domain::identity::scope::{ClinicalScope, PatientScope, SignedIn};
use portal_domain::ids::{DocumentId, PatientId};
use portal_domain::patients::{self, Patient};
use portal_domain::scheduling::clinic_tz;
use sha2::{Digest, Sha256};

use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other, words};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

/// A document in a list or on its page.
pub struct DocView {
    pub href: String,
    pub title: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub pending: bool,
    pub failed: bool,
    pub uploaded: bool,
    pub removable: bool,
    pub made: String,
    pub by: &'static str,
    pub size: String,
    pub kind_of_file: &'static str,
    pub note: String,
    pub failure: String,
    pub pages: String,
    pub digest: String,
}

fn when(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %-I:%M %p")
        .to_string()
}

fn size(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", (bytes + 1023) / 1024)
    }
}

pub fn view(d: &Document, base: &str, tz: Tz, patient_viewing: bool) -> DocView {
    let mut title = d.kind.label().to_owned();
    if let Some(v) = d.visit_at {
        title.push_str(&format!(
            " — {}",
            words::date(v.with_timezone(&tz).date_naive())
        ));
    }
    DocView {
        href: format!("{base}/{}", d.id),
        title,
        status: d.status.code(),
        status_label: d.status.label(),
        pending: d.status.pending(),
        failed: d.status == portal_domain::documents::Status::Failed,
        uploaded: d.uploaded,
        removable: patient_viewing && d.uploaded && d.by_patient,
        made: when(d.ready_at.unwrap_or(d.created_at), tz),
        by: match (d.uploaded, d.by_patient) {
            (true, true) => "Uploaded by the patient",
            (true, false) => "Uploaded by the clinic",
            (false, true) => "Asked for by the patient",
            (false, false) => "Made by the clinic",
        },
        size: d.size_bytes.map(size).unwrap_or_default(),
        kind_of_file: match d.media_type {
            Some("application/pdf") => "PDF",
            Some("image/jpeg") => "JPEG photo",
            Some("image/png") => "PNG picture",
            _ => "",
        },
        note: d.note.clone(),
        failure: d.failure.clone().unwrap_or_default(),
        pages: d
            .pages
            .map(|p| {
                if p == 1 {
                    "1 page".to_owned()
                } else {
                    format!("{p} pages")
                }
            })
            .unwrap_or_default(),
        digest: d.content_digest.clone().unwrap_or_default(),
    }
}

/// A kind of document the page offers to make.
pub struct Offer {
    pub code: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
}

fn offers() -> Vec<Offer> {
    Kind::GENERATED
        .into_iter()
        .filter(|k| !k.needs_visit())
        .map(|k| Offer {
            code: k.code(),
            label: k.label(),
            hint: k.hint(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "documents.html")]
struct ListPage {
    chrome: Chrome,
    /// The clinic's time zone, said once.
    zone: String,
    heading: String,
    /// Where the request form posts, and the documents' base address.
    base: String,
    /// `Some` on a staff page: the patient's page to go back to.
    patient_href: Option<String>,
    documents: Vec<DocView>,
    offers: Vec<Offer>,
    notice: Option<&'static str>,
    errors: FormErrors,
    uploads: bool,
    /// The referral letter form's fields as typed (staff pages).
    letter: LetterFields,
}

/// What was typed into the referral letter form.
#[derive(Default)]
pub struct LetterFields {
    pub recipient: String,
    pub reason: String,
    pub details: String,
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

fn notice(q: &ListQuery) -> Option<&'static str> {
    match q.done.as_deref() {
        Some("uploaded") => Some("Your file was uploaded. Your care team can now see it."),
        Some("removed") => Some("The file was removed from your documents."),
        _ => None,
    }
}

/// The signed-in patient, or a redirect to sign in; 404 for staff.
async fn patient_gate(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn, PatientScope), Response>> {
    match require_user(req, state, "documents").await? {
        Gate::In(c, u) => {
            let scope = u.patient().ok_or_else(not_found)?;
            Ok(Ok((c, u, scope)))
        }
        Gate::Out(r) => Ok(Err(r)),
    }
}

/// `GET /documents`.
#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<ListQuery>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let page = own_list_page(
        req,
        state,
        chrome,
        &me,
        &scope,
        notice(&q),
        FormErrors::default(),
    )
    .await?;
    render(&page).map(IntoResponse::into_response)
}

async fn own_list_page(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &PatientScope,
    notice: Option<&'static str>,
    errors: FormErrors,
) -> poem::Result<ListPage> {
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let docs = store::own_list(&mut tx, scope, &audit_ctx(req, Some(me)), state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(ListPage {
        zone: super::scheduling_view::zone_note(tz, state.clock.now()),
        chrome,
        heading: "Your documents".into(),
        base: "/documents".into(),
        patient_href: None,
        documents: docs
            .iter()
            .map(|d| view(d, "/documents", tz, true))
            .collect(),
        offers: offers(),
        notice,
        errors,
        uploads: true,
        letter: LetterFields::default(),
    })
}

/// What a request form sends.
fn requested_kind(body: &[(String, String)]) -> Result<(Kind, Option<uuid::Uuid>), FormErrors> {
    let kind = Kind::parse(field(body, "kind"))
        .filter(|k| k.is_generated() && !k.staff_made() && !k.is_billing())
        .ok_or_else(|| FormErrors::one("request", "Choose a document to make."))?;
    let visit = uuid::Uuid::try_parse(field(body, "visit")).ok();
    Ok((kind, visit))
}

fn request_error(e: DocumentError) -> poem::Result<FormErrors> {
    match e {
        DocumentError::TooManyPending
        | DocumentError::VisitNotFound
        | DocumentError::NotGenerated => Ok(FormErrors::one("request", e.to_string())),
        DocumentError::NotFound => Err(not_found()),
        other => Err(db(other)),
    }
}

/// `POST /documents`: asks for a document; its page shows its progress.
#[handler]
pub async fn request(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(body): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&body, "csrf"))?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let errors = match requested_kind(&body) {
        Ok((kind, visit)) => {
            let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
                .await
                .map_err(db)?;
            match store::request(
                &mut tx,
                Requester::Patient(&scope),
                &audit_ctx(req, Some(&me)),
                kind,
                store::Subject {
                    visit,
                    referral: None,
                },
                state.clock.now(),
            )
            .await
            {
                Ok(id) => {
                    tx.commit().await.map_err(db)?;
                    return Ok(see_other(&format!("/documents/{id}")));
                }
                Err(e) => request_error(e)?,
            }
        }
        Err(errors) => errors,
    };
    let page = own_list_page(req, state, chrome, &me, &scope, None, errors).await?;
    render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

#[derive(Template)]
#[template(path = "document.html")]
pub(crate) struct DocPage {
    pub chrome: Chrome,
    pub zone: String,
    pub doc: DocView,
    pub back_href: String,
    pub back_label: String,
}

fn parse_id(raw: &str) -> poem::Result<DocumentId> {
    DocumentId::parse(raw).ok_or_else(not_found)
}

/// The signed-in patient's document `raw` (audited), as pages show it; 404 for anyone else's.
async fn own_view(
    req: &Request,
    state: &AppState,
    raw: &str,
) -> poem::Result<Result<(Chrome, DocView, Tz), Response>> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(Err(r)),
    };
    let id = parse_id(raw)?;
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let doc = store::own(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    Ok(Ok((chrome, view(&doc, "/documents", tz, true), tz)))
}

/// `GET /documents/{id}`: one document; while it is being prepared the page updates itself.
#[handler]
pub async fn own_one(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    let (chrome, doc, tz) = match own_view(req, state, &raw).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    render(&DocPage {
        zone: super::scheduling_view::zone_note(tz, state.clock.now()),
        chrome,
        doc,
        back_href: "/documents".into(),
        back_label: "Your documents".into(),
    })
    .map(IntoResponse::into_response)
}

/// `POST /documents/{id}/retry`.
#[handler]
pub async fn own_retry(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(body): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&body, "csrf"))?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match store::retry(
        &mut tx,
        Requester::Patient(&scope),
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    {
        Ok(()) | Err(DocumentError::NotRetryable) => {}
        Err(DocumentError::NotFound) => return Err(not_found()),
        Err(e @ DocumentError::TooManyPending) => {
            drop(tx);
            let errors = FormErrors::one("request", e.to_string());
            let page = own_list_page(req, state, chrome, &me, &scope, None, errors).await?;
            return render_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(db(e)),
    }
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!("/documents/{id}")))
}

/// Serves a document's content: as an attachment, with its own type and `nosniff`, never
/// shown inline on the clinic's site.
pub(crate) async fn serve(
    state: &AppState,
    tenant: &portal_tenants::Tenant,
    d: store::Download,
) -> poem::Result<Response> {
    let bytes = match state.vault.get(&state.tenant_db, tenant, &d.blob).await {
        Ok(b) => b,
        Err(VaultError::Store(portal_domain::documents::StoreError::Unavailable(_))) => {
            return Err(poem::Error::from_string(
                "Documents cannot be downloaded right now. Please try again in a few minutes.",
                StatusCode::SERVICE_UNAVAILABLE,
            ));
        }
        Err(e) => return Err(db(e)),
    };
    Ok(Response::builder()
        .header("content-type", d.media_type.as_str())
        .header(
            "content-disposition",
            format!("attachment; filename=\"{}\"", d.filename),
        )
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "private, no-store")
        .body(bytes))
}

/// `GET /documents/{id}/download`.
#[handler]
pub async fn own_download(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let d = store::own_download(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    serve(state, &chrome.tenant, d).await
}

#[derive(Template)]
#[template(path = "document_upload.html")]
struct UploadPage {
    chrome: Chrome,
    errors: FormErrors,
    category: String,
    note: String,
    categories: Vec<(&'static str, &'static str)>,
}

fn upload_page(chrome: Chrome, errors: FormErrors, category: String, note: String) -> UploadPage {
    UploadPage {
        chrome,
        errors,
        category,
        note,
        categories: Kind::UPLOADS
            .iter()
            .map(|k| (k.code(), k.label()))
            .collect(),
    }
}

/// `GET /documents/upload`.
#[handler]
pub async fn upload_form(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, _, _) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    render(&upload_page(
        chrome,
        FormErrors::default(),
        String::new(),
        String::new(),
    ))
    .map(IntoResponse::into_response)
}

/// Longest note on an upload.
const MAX_NOTE: usize = 500;

/// `POST /documents/upload` (multipart): the file is checked by its content, sealed and
/// stored, then recorded; a refused file stores nothing.
#[handler]
pub async fn upload(
    req: &Request,
    Data(state): Data<&AppState>,
    mut multipart: Multipart,
) -> poem::Result<Response> {
    let mut fields = std::collections::HashMap::new();
    let mut file: Option<Vec<u8>> = None;
    while let Some(f) = multipart.next_field().await? {
        let name = f.name().unwrap_or_default().to_owned();
        if name == "file" {
            file = Some(f.bytes().await?);
        } else if ["csrf", "category", "note"].contains(&name.as_str()) {
            fields.insert(name, f.text().await?);
        }
    }
    let get = |k: &str| fields.get(k).map_or("", String::as_str).to_owned();
    check_form(req, &get("csrf"))?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (category, note) = (get("category"), get("note").trim().to_owned());
    let mut errors = FormErrors::default();
    let kind = Kind::parse(&category).filter(|k| !k.is_generated());
    if kind.is_none() {
        errors.add("category", "Choose what kind of document this is.");
    }
    if note.chars().count() > MAX_NOTE {
        errors.add(
            "note",
            format!("The note must be {MAX_NOTE} characters or fewer."),
        );
    }
    let bytes = file.unwrap_or_default();
    let media = match content::check(&bytes) {
        Ok(m) => Some(m),
        Err(ContentError::Empty) if bytes.is_empty() => {
            errors.add("file", "Choose a file to upload.");
            None
        }
        Err(e) => {
            errors.add("file", e.to_string());
            None
        }
    };
    let (Some(kind), Some(media), true) = (kind, media, errors.is_empty()) else {
        return render_status(
            &upload_page(chrome, errors, category, note),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    // The blob is prepared and written outside the request's transaction (which this handler
    // never takes), then the row commits in one: see `documents::vault`.
    crate::tx::release(req).await.map_err(db)?;
    let now = state.clock.now();
    let id = DocumentId::new();
    let stored = match store_blob(state, &chrome.tenant, id, media, &bytes, now).await {
        Ok(s) => s,
        Err(StoreFailed::Unavailable) => {
            errors.add(
                "file",
                "We could not store your file just now. Nothing was saved. Please try again in a few minutes.",
            );
            return render_status(
                &upload_page(chrome, errors, category, note),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
        Err(StoreFailed::Other(e)) => return Err(e),
    };
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let added = store::add_upload(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        id,
        kind,
        &note,
        &stored,
        now,
    )
    .await;
    if let Err(e) = added {
        drop(tx);
        discard_if_swept(state, &chrome.tenant, &stored, &e).await;
        return Err(db(e));
    }
    tx.commit().await.map_err(db)?;
    Ok(see_other("/documents?done=uploaded"))
}

pub(crate) enum StoreFailed {
    Unavailable,
    Other(poem::Error),
}

/// Steps (1) and (2) of a write (`documents::vault`): the intent, then the sealed blob.
pub(crate) async fn store_blob(
    state: &AppState,
    tenant: &portal_tenants::Tenant,
    id: DocumentId,
    media: portal_domain::documents::MediaType,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<Stored, StoreFailed> {
    let name = store::blob_name(id).map_err(|e| StoreFailed::Other(db(e)))?;
    let written = async {
        let key = state
            .vault
            .prepare(&state.tenant_db, tenant, &name, now)
            .await?;
        state.vault.put(&key, tenant.id(), &name, bytes).await
    };
    match written.await {
        Ok(()) => {}
        Err(VaultError::Store(portal_domain::documents::StoreError::Unavailable(_))) => {
            return Err(StoreFailed::Unavailable);
        }
        Err(e) => return Err(StoreFailed::Other(db(e))),
    }
    Ok(Stored {
        blob: name,
        media_type: media,
        size_bytes: bytes.len() as i64,
        sha256: Sha256::digest(bytes).into(),
    })
}

/// A row that could not claim its blob (the sweep came first) leaves the blob to nobody:
/// it is deleted here.
pub(crate) async fn discard_if_swept(
    state: &AppState,
    tenant: &portal_tenants::Tenant,
    stored: &Stored,
    e: &DocumentError,
) {
    if matches!(e, DocumentError::Vault(VaultError::Swept)) {
        portal_domain::documents::vault::discard(state.vault.store(), tenant.id(), &stored.blob)
            .await;
    }
}

/// The upload's size limit, for the route's policy: the file plus the form's other fields.
pub const UPLOAD_BODY: usize = MAX_UPLOAD + 64 * 1024;

#[derive(Template)]
#[template(path = "document_remove.html")]
struct RemovePage {
    chrome: Chrome,
    doc: DocView,
}

/// `GET /documents/{id}/remove`: asks first.
#[handler]
pub async fn remove_ask(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    let (chrome, doc, _) = match own_view(req, state, &raw).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if !doc.removable {
        return Err(not_found());
    }
    render(&RemovePage { chrome, doc }).map(IntoResponse::into_response)
}

/// `POST /documents/{id}/remove`.
#[handler]
pub async fn remove(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(body): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&body, "csrf"))?;
    let (chrome, me, scope) = match patient_gate(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match store::remove_own(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {}
        Err(DocumentError::NotFound) => return Err(not_found()),
        Err(e) => return Err(db(e)),
    }
    tx.commit().await.map_err(db)?;
    Ok(see_other("/documents?done=removed"))
}

// Staff: a patient's documents.

async fn staff_gate(
    req: &Request,
    state: &AppState,
    raw_patient: &str,
) -> poem::Result<Result<(Chrome, SignedIn, ClinicalScope, PatientId), Response>> {
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(Err(r)),
    };
    let scope = me.clinical().ok_or_else(not_found)?;
    let patient = PatientId::parse(raw_patient).ok_or_else(not_found)?;
    Ok(Ok((chrome, me, scope, patient)))
}

async fn the_patient(
    tx: &mut portal_tenants::TenantTx,
    scope: &ClinicalScope,
    ctx: &portal_domain::audit::AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> poem::Result<Patient> {
    patients::get(tx, scope.staff(), ctx, patient, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)
}

async fn staff_list_page(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &ClinicalScope,
    patient: PatientId,
    errors: FormErrors,
) -> poem::Result<ListPage> {
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let p = the_patient(&mut tx, scope, &ctx, patient, now).await?;
    let docs = store::list_of_patient(&mut tx, scope, &ctx, patient, now)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let base = format!("/admin/patients/{patient}/documents");
    Ok(ListPage {
        zone: super::scheduling_view::zone_note(tz, now),
        chrome,
        heading: format!("Documents: {}", p.full_name()),
        documents: docs.iter().map(|d| view(d, &base, tz, false)).collect(),
        base,
        patient_href: Some(format!("/admin/patients/{patient}")),
        offers: offers(),
        notice: None,
        errors,
        uploads: false,
        letter: LetterFields::default(),
    })
}

/// `GET /admin/patients/{id}/documents`.
#[handler]
pub async fn staff_list(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    let (chrome, me, scope, patient) = match staff_gate(req, state, &raw).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let page = staff_list_page(
        req,
        state,
        chrome,
        &me,
        &scope,
        patient,
        FormErrors::default(),
    )
    .await?;
    render(&page).map(IntoResponse::into_response)
}

/// `POST /admin/patients/{id}/documents`: makes a document for the patient.
#[handler]
pub async fn staff_request(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(body): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&body, "csrf"))?;
    let (chrome, me, scope, patient) = match staff_gate(req, state, &raw).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let wanted = if field(&body, "kind") == Kind::ReferralLetter.code() {
        Referral::parse(
            field(&body, "recipient"),
            field(&body, "reason"),
            field(&body, "details"),
            &me.display_name,
        )
        .map(|r| {
            (
                Kind::ReferralLetter,
                store::Subject {
                    visit: None,
                    referral: Some(r),
                },
            )
        })
        .map_err(|errors| {
            let mut form = FormErrors::default();
            for e in errors {
                form.add(e.field, e.message);
            }
            form
        })
    } else {
        requested_kind(&body).map(|(kind, visit)| {
            (
                kind,
                store::Subject {
                    visit,
                    referral: None,
                },
            )
        })
    };
    let errors = match wanted {
        Ok((kind, subject)) => {
            let ctx = audit_ctx(req, Some(&me));
            let now = state.clock.now();
            let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
                .await
                .map_err(db)?;
            the_patient(&mut tx, &scope, &ctx, patient, now).await?;
            match store::request(
                &mut tx,
                Requester::Staff(&scope, patient),
                &ctx,
                kind,
                subject,
                now,
            )
            .await
            {
                Ok(id) => {
                    tx.commit().await.map_err(db)?;
                    return Ok(see_other(&format!(
                        "/admin/patients/{patient}/documents/{id}"
                    )));
                }
                Err(e) => request_error(e)?,
            }
        }
        Err(errors) => errors,
    };
    let mut page = staff_list_page(req, state, chrome, &me, &scope, patient, errors).await?;
    page.letter = LetterFields {
        recipient: field(&body, "recipient").to_owned(),
        reason: field(&body, "reason").to_owned(),
        details: field(&body, "details").to_owned(),
    };
    render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

/// `GET /admin/patients/{id}/documents/{doc}`.
#[handler]
pub async fn staff_one(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_doc)): Path<(String, String)>,
) -> poem::Result<Response> {
    let (chrome, me, scope, patient) = match staff_gate(req, state, &raw).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw_doc)?;
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let doc = store::of_patient(
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
    let base = format!("/admin/patients/{patient}/documents");
    render(&DocPage {
        zone: super::scheduling_view::zone_note(tz, state.clock.now()),
        chrome,
        doc: view(&doc, &base, tz, false),
        back_href: base,
        back_label: "The patient's documents".into(),
    })
    .map(IntoResponse::into_response)
}

/// `GET /admin/patients/{id}/documents/{doc}/download`.
#[handler]
pub async fn staff_download(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_doc)): Path<(String, String)>,
) -> poem::Result<Response> {
    let (chrome, me, scope, patient) = match staff_gate(req, state, &raw).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw_doc)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let d = store::download_of_patient(
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

/// `POST /admin/patients/{id}/documents/{doc}/retry`.
#[handler]
pub async fn staff_retry(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_doc)): Path<(String, String)>,
    Form(body): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&body, "csrf"))?;
    let (chrome, me, scope, patient) = match staff_gate(req, state, &raw).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw_doc)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match store::retry(
        &mut tx,
        Requester::Staff(&scope, patient),
        &audit_ctx(req, Some(&me)),
        id,
        state.clock.now(),
    )
    .await
    {
        Ok(()) | Err(DocumentError::NotRetryable) => {}
        Err(DocumentError::NotFound) => return Err(not_found()),
        Err(e @ DocumentError::TooManyPending) => {
            drop(tx);
            let errors = FormErrors::one("request", e.to_string());
            let page = staff_list_page(req, state, chrome, &me, &scope, patient, errors).await?;
            return render_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(db(e)),
    }
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!(
        "/admin/patients/{patient}/documents/{id}"
    )))
}
