//! The signed-in patient's documents over JSON: `GET /v1/documents` (newest first),
//! `POST /v1/documents` (ask for a PDF: 202 with its id; it is prepared by a worker),
//! `GET /v1/documents/{id}` (its status: queued, rendering, ready or failed),
//! `GET /v1/documents/{id}/content` (the file, as an attachment, once ready),
//! `POST /v1/documents/uploads` (a PDF, JPEG or PNG, checked by its content) and
//! `DELETE /v1/documents/{id}` (remove one's own upload). The same stores as the pages: the
//! same rules and the same audit rows.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Attachment, AttachmentType, Json};
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiResponse, Multipart, Object, OpenApi};
use portal_domain::documents::store::{self, Requester};
use portal_domain::documents::{Document, DocumentError, Kind, VaultError, content};
use portal_domain::identity::scope::PatientScope;
use portal_domain::ids::DocumentId;

use super::ApiTags;
use super::caller::{Caller, ChangingCaller, caller, changing_caller, csrf, unauthorized};
use super::error::ErrorBody;
use crate::auth::audit_ctx;
use crate::pages::documents::{StoreFailed, discard_if_swept, store_blob};
use crate::{AppState, internal};

/// A document and where it is on its way.
#[derive(Debug, Object)]
pub struct DocumentOut {
    pub id: String,
    /// `immunization_record`, `medication_list`, `visit_summary`, `record_summary`,
    /// `referral_letter`, `statement`, `receipt`; for uploads `insurance_card`,
    /// `outside_records` or `other`.
    pub kind: String,
    pub title: String,
    /// `queued`, `rendering`, `ready` or `failed`.
    pub status: String,
    /// `generated` or `uploaded`.
    pub origin: String,
    pub note: String,
    /// `application/pdf`, `image/jpeg` or `image/png`, once ready.
    pub media_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub pages: Option<i32>,
    /// Hex SHA-256 printed in a generated document's footer.
    pub content_digest: Option<String>,
    /// Words for the person when it failed.
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    /// Where the file is, once ready.
    pub content_url: Option<String>,
}

pub(super) fn out(d: &Document) -> DocumentOut {
    DocumentOut {
        id: d.id.to_string(),
        kind: d.kind.code().to_owned(),
        title: d.kind.label().to_owned(),
        status: d.status.code().to_owned(),
        origin: if d.uploaded { "uploaded" } else { "generated" }.to_owned(),
        note: d.note.clone(),
        media_type: d.media_type.map(str::to_owned),
        size_bytes: d.size_bytes,
        pages: d.pages,
        content_digest: d.content_digest.clone(),
        failure: d.failure.clone(),
        created_at: d.created_at,
        ready_at: d.ready_at,
        content_url: (d.status == portal_domain::documents::Status::Ready)
            .then(|| format!("/api/v1/documents/{}/content", d.id)),
    }
}

/// What to make.
#[derive(Debug, Object)]
pub struct RequestBody {
    /// `immunization_record`, `medication_list`, `record_summary` or `visit_summary`.
    pub kind: String,
    /// The visit a `visit_summary` prints (its id from `/v1/record/visits`).
    pub visit_id: Option<String>,
}

/// An upload: the file and what it is.
#[derive(Debug, Multipart)]
pub struct UploadForm {
    /// `insurance_card`, `outside_records` or `other`.
    pub category: String,
    /// For the care team; up to 500 characters.
    pub note: Option<String>,
    /// A PDF, JPEG or PNG of at most 10 MB (its type is found from its content).
    pub file: Upload,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<DocumentOut>>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

// Built once and moved straight into the body; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum OneResponse {
    #[oai(status = 200)]
    Ok(Json<DocumentOut>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such document of yours (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

// Built once and moved straight into the body; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(ApiResponse)]
pub enum CreateResponse {
    /// Accepted: the document is queued; follow its status at `/v1/documents/{id}`.
    #[oai(status = 202)]
    Accepted(Json<DocumentOut>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A cookie session without its CSRF token (code `csrf`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Unknown kind, a missing or unknown visit, or a file refused (codes `unknown_kind`,
    /// `visit_not_found`, `invalid_file`, `invalid_note`).
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
    /// Five documents are being prepared already (code `too_many_pending`).
    #[oai(status = 429)]
    TooMany(Json<ErrorBody>),
    /// The document store cannot be reached; nothing was stored (code `store_unavailable`).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum ContentResponse {
    /// The file, as an attachment (never cached: `Cache-Control: private, no-store`).
    #[oai(status = 200)]
    Ok(Attachment<Vec<u8>>, #[oai(header = "cache-control")] String),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such ready document of yours (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The document store cannot be reached (code `store_unavailable`).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum RemoveResponse {
    /// Removed from every list (kept for the audit trail).
    #[oai(status = 204)]
    Removed,
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A cookie session without its CSRF token (code `csrf`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such upload of yours (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

fn missing() -> Json<ErrorBody> {
    ErrorBody::new("not_found", "no such document of yours")
}

fn unavailable() -> Json<ErrorBody> {
    ErrorBody::new(
        "store_unavailable",
        "the document store cannot be reached just now; nothing was stored, try again shortly",
    )
}

pub struct DocumentsApi;

#[OpenApi]
impl DocumentsApi {
    /// The signed-in patient's documents, newest first (removed uploads left out).
    #[oai(
        path = "/v1/documents",
        method = "get",
        tag = "ApiTags::Documents",
        operation_id = "listDocuments"
    )]
    async fn list(&self, req: &Request, state: Data<&AppState>) -> poem::Result<ListResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(ListResponse::Unauthorized(unauthorized()));
        };
        let Some(scope) = me.patient() else {
            return Ok(ListResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let docs = store::own_list(
            &mut tx,
            &scope,
            &audit_ctx(req, Some(&me)),
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(ListResponse::Ok(Json(docs.iter().map(out).collect())))
    }

    /// Asks for a PDF of the record. Answers 202 at once; a worker prepares it.
    #[oai(
        path = "/v1/documents",
        method = "post",
        tag = "ApiTags::Documents",
        operation_id = "requestDocument"
    )]
    async fn request(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<RequestBody>,
    ) -> poem::Result<CreateResponse> {
        let (_, me, mut tx) = match changing_caller(req, &state).await? {
            ChangingCaller::In(t, m, tx) => (t, m, tx),
            ChangingCaller::Out => return Ok(CreateResponse::Unauthorized(unauthorized())),
            ChangingCaller::Csrf => return Ok(CreateResponse::Forbidden(csrf())),
        };
        let Some(scope) = me.patient() else {
            return Ok(CreateResponse::Unauthorized(unauthorized()));
        };
        let Some(kind) = Kind::parse(&body.kind)
            .filter(|k| k.is_generated() && !k.staff_made() && !k.is_billing())
        else {
            return Ok(CreateResponse::Invalid(ErrorBody::new(
                "unknown_kind",
                "kind must be immunization_record, medication_list, record_summary or visit_summary",
            )));
        };
        let visit = match body.visit_id.as_deref() {
            None => None,
            Some(raw) => match uuid::Uuid::try_parse(raw) {
                Ok(v) => Some(v),
                Err(_) => {
                    return Ok(CreateResponse::Invalid(ErrorBody::new(
                        "visit_not_found",
                        "no such visit in your record",
                    )));
                }
            },
        };
        let ctx = audit_ctx(req, Some(&me));
        let now = state.clock.now();
        let subject = store::Subject {
            visit,
            referral: None,
        };
        let id = match store::request(
            &mut tx,
            Requester::Patient(&scope),
            &ctx,
            kind,
            subject,
            now,
        )
        .await
        {
            Ok(id) => id,
            Err(DocumentError::VisitNotFound) => {
                return Ok(CreateResponse::Invalid(ErrorBody::new(
                    "visit_not_found",
                    "a visit_summary needs visit_id, the id of one of your visits",
                )));
            }
            Err(DocumentError::TooManyPending) => {
                return Ok(CreateResponse::TooMany(ErrorBody::new(
                    "too_many_pending",
                    DocumentError::TooManyPending.to_string(),
                )));
            }
            Err(e) => return Err(internal(e)),
        };
        let doc = store::own(&mut tx, &scope, &ctx, id, now)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal(DocumentError::NotFound))?;
        tx.commit().await.map_err(internal)?;
        Ok(CreateResponse::Accepted(Json(out(&doc))))
    }

    /// One of the signed-in patient's documents: its status, and where its file is once ready.
    #[oai(
        path = "/v1/documents/:id",
        method = "get",
        tag = "ApiTags::Documents",
        operation_id = "getDocument"
    )]
    async fn one(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<OneResponse> {
        let Some((tenant, scope, me)) = patient(req, &state).await? else {
            return Ok(OneResponse::Unauthorized(unauthorized()));
        };
        let Some(id) = DocumentId::parse(&id) else {
            return Ok(OneResponse::NotFound(missing()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let doc = store::own(
            &mut tx,
            &scope,
            &audit_ctx(req, Some(&me)),
            id,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(match doc {
            Some(d) => OneResponse::Ok(Json(out(&d))),
            None => OneResponse::NotFound(missing()),
        })
    }

    /// The file of a ready document, as an attachment.
    #[oai(
        path = "/v1/documents/:id/content",
        method = "get",
        tag = "ApiTags::Documents",
        operation_id = "getDocumentContent"
    )]
    async fn content(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<ContentResponse> {
        let Some((tenant, scope, me)) = patient(req, &state).await? else {
            return Ok(ContentResponse::Unauthorized(unauthorized()));
        };
        let Some(id) = DocumentId::parse(&id) else {
            return Ok(ContentResponse::NotFound(missing()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let d = store::own_download(
            &mut tx,
            &scope,
            &audit_ctx(req, Some(&me)),
            id,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        let Some(d) = d else {
            return Ok(ContentResponse::NotFound(missing()));
        };
        match state.vault.get(&state.tenant_db, &tenant, &d.blob).await {
            Ok(bytes) => Ok(ContentResponse::Ok(
                Attachment::new(bytes)
                    .attachment_type(AttachmentType::Attachment)
                    .filename(d.filename),
                "private, no-store".to_owned(),
            )),
            Err(VaultError::Store(portal_domain::documents::StoreError::Unavailable(_))) => {
                Ok(ContentResponse::Unavailable(unavailable()))
            }
            Err(e) => Err(internal(e)),
        }
    }

    /// Uploads a PDF, JPEG or PNG (up to 10 MB) for the care team. Its type is found from its
    /// content; anything else is refused and nothing is stored.
    #[oai(
        path = "/v1/documents/uploads",
        method = "post",
        tag = "ApiTags::Documents",
        operation_id = "uploadDocument"
    )]
    async fn upload(
        &self,
        req: &Request,
        state: Data<&AppState>,
        form: UploadForm,
    ) -> poem::Result<CreateResponse> {
        let (tenant, me) = match caller(req, &state, true).await? {
            Caller::In(t, m) => (t, m),
            Caller::Out => return Ok(CreateResponse::Unauthorized(unauthorized())),
            Caller::Csrf => return Ok(CreateResponse::Forbidden(csrf())),
        };
        let Some(scope) = me.patient() else {
            return Ok(CreateResponse::Unauthorized(unauthorized()));
        };
        let Some(kind) = Kind::parse(&form.category).filter(|k| !k.is_generated()) else {
            return Ok(CreateResponse::Invalid(ErrorBody::new(
                "unknown_kind",
                "category must be insurance_card, outside_records or other",
            )));
        };
        let note = form.note.unwrap_or_default().trim().to_owned();
        if note.chars().count() > 500 {
            return Ok(CreateResponse::Invalid(ErrorBody::new(
                "invalid_note",
                "the note must be 500 characters or fewer",
            )));
        }
        let bytes = form.file.into_vec().await.map_err(internal)?;
        let media = match content::check(&bytes) {
            Ok(m) => m,
            Err(e) => {
                return Ok(CreateResponse::Invalid(ErrorBody::new(
                    "invalid_file",
                    e.to_string(),
                )));
            }
        };
        // Stored outside the request's transaction, then recorded: see `documents::vault`.
        crate::tx::release(req).await.map_err(internal)?;
        let now = state.clock.now();
        let id = DocumentId::new();
        let stored = match store_blob(&state, &tenant, id, media, &bytes, now).await {
            Ok(s) => s,
            Err(StoreFailed::Unavailable) => return Ok(CreateResponse::Unavailable(unavailable())),
            Err(StoreFailed::Other(e)) => return Err(e),
        };
        let ctx = audit_ctx(req, Some(&me));
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        if let Err(e) =
            store::add_upload(&mut tx, &scope, &ctx, id, kind, &note, &stored, now).await
        {
            drop(tx);
            discard_if_swept(&state, &tenant, &stored, &e).await;
            return Err(internal(e));
        }
        let doc = store::own(&mut tx, &scope, &ctx, id, now)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal(DocumentError::NotFound))?;
        tx.commit().await.map_err(internal)?;
        Ok(CreateResponse::Accepted(Json(out(&doc))))
    }

    /// Removes one of the signed-in patient's own uploads from every list (the clinic keeps
    /// it for the audit trail).
    #[oai(
        path = "/v1/documents/:id",
        method = "delete",
        tag = "ApiTags::Documents",
        operation_id = "removeDocument"
    )]
    async fn remove(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<RemoveResponse> {
        let (_, me, mut tx) = match changing_caller(req, &state).await? {
            ChangingCaller::In(t, m, tx) => (t, m, tx),
            ChangingCaller::Out => return Ok(RemoveResponse::Unauthorized(unauthorized())),
            ChangingCaller::Csrf => return Ok(RemoveResponse::Forbidden(csrf())),
        };
        let Some(scope) = me.patient() else {
            return Ok(RemoveResponse::Unauthorized(unauthorized()));
        };
        let Some(id) = DocumentId::parse(&id) else {
            return Ok(RemoveResponse::NotFound(missing()));
        };
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
            Err(DocumentError::NotFound) => return Ok(RemoveResponse::NotFound(missing())),
            Err(e) => return Err(internal(e)),
        }
        tx.commit().await.map_err(internal)?;
        Ok(RemoveResponse::Removed)
    }
}

async fn patient(
    req: &Request,
    state: &AppState,
) -> poem::Result<
    Option<(
        std::sync::Arc<portal_tenants::Tenant>,
        PatientScope,
        portal_domain::identity::scope::SignedIn,
    )>,
> {
    Ok(match caller(req, state, false).await? {
        Caller::In(t, me) => me.patient().map(|p| (t, p, me)),
        _ => None,
    })
}
