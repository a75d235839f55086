//! Document rows: what a patient (or clinical staff, for a patient) sees in the documents
//! area, requests for PDFs, uploads, removal, and the worker's side of a render. Every read
//! and write of a patient's documents is audited; another patient's document answers like a
//! missing one.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;
use portal_vault::BlobKey;

use super::content::MediaType;
use super::kinds::{Kind, Status};
use super::vault::{self, VaultError};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{ClinicalScope, PatientScope};
use crate::ids::{DocumentId, PatientId, UserId};
use crate::jobs::{self, Job};

/// Documents still on their way, per patient, before another request is refused: enough for
/// every kind at once, not enough to fill the queue.
pub const MAX_PENDING: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not found")]
    NotFound,
    #[error("That visit was not found in your record.")]
    VisitNotFound,
    #[error(
        "You already have {MAX_PENDING} documents being prepared. Wait for them to be ready, then ask again."
    )]
    TooManyPending,
    #[error("Only a document that could not be prepared can be tried again.")]
    NotRetryable,
    #[error("That kind of document cannot be asked for.")]
    NotGenerated,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] jobs::EnqueueError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A document as lists and its page show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Document {
    pub id: DocumentId,
    pub kind: Kind,
    pub status: Status,
    pub uploaded: bool,
    /// Asked for or uploaded by the patient (not by staff for them).
    pub by_patient: bool,
    pub note: String,
    pub media_type: Option<&'static str>,
    pub size_bytes: Option<i64>,
    pub pages: Option<i32>,
    pub content_digest: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    /// When the visit a visit summary prints took place.
    pub visit_at: Option<DateTime<Utc>>,
}

struct Row {
    id: uuid::Uuid,
    kind: String,
    status: String,
    origin: String,
    by_patient: bool,
    note: String,
    media_type: Option<String>,
    size_bytes: Option<i64>,
    pages: Option<i32>,
    content_digest: Option<String>,
    created_at: DateTime<Utc>,
    ready_at: Option<DateTime<Utc>>,
    failure: Option<String>,
    visit_at: Option<DateTime<Utc>>,
}

impl Row {
    fn into_document(self) -> Option<Document> {
        Some(Document {
            id: DocumentId::from_uuid(self.id),
            kind: Kind::parse(&self.kind)?,
            status: Status::parse(&self.status),
            uploaded: self.origin == "uploaded",
            by_patient: self.by_patient,
            note: self.note,
            media_type: self
                .media_type
                .as_deref()
                .and_then(MediaType::parse)
                .map(MediaType::as_str),
            size_bytes: self.size_bytes,
            pages: self.pages,
            content_digest: self.content_digest,
            created_at: self.created_at,
            ready_at: self.ready_at,
            failure: self.failure,
            visit_at: self.visit_at,
        })
    }
}

/// The patient's documents as lists and pages show them: all of them (newest first, up to
/// 200), or only `id`. One statement for both, so the list and a page never disagree.
async fn rows(
    tx: &mut TenantTx,
    patient: PatientId,
    id: Option<DocumentId>,
) -> Result<Vec<Document>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT d.id, d.kind, d.status, d.origin,
                  coalesce(u.role = 'patient', false) AS "by_patient!",
                  d.note, d.media_type, d.size_bytes, d.pages, d.content_digest, d.created_at,
                  d.ready_at, d.failure, e.starts_at AS "visit_at?"
           FROM documents d
           LEFT JOIN users u ON u.id = d.requested_by
           LEFT JOIN encounters e ON e.id = d.subject_id AND e.patient_id = d.patient_id
           WHERE d.patient_id = $1 AND d.removed_at IS NULL
             AND ($2::uuid IS NULL OR d.id = $2)
           ORDER BY d.created_at DESC, d.id DESC
           LIMIT 200"#,
        patient.as_uuid(),
        id.map(|i| i.as_uuid())
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().filter_map(Row::into_document).collect())
}

async fn list(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Vec<Document>, sqlx::Error> {
    let docs = rows(tx, patient, None).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::DocumentList, "document").patient(patient),
    )
    .await?;
    Ok(docs)
}

pub(crate) async fn one(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    patient: PatientId,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<Document>, sqlx::Error> {
    let row = rows(tx, patient, Some(id)).await?.into_iter().next();
    let Some(doc) = row else {
        return Ok(None);
    };
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::DocumentView, "document")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(Some(doc))
}

/// The signed-in patient's documents, newest first (removed uploads left out).
pub async fn own_list(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Document>, sqlx::Error> {
    list(tx, ctx, me.patient_id(), now).await
}

/// A patient's documents for clinical staff.
pub async fn list_of_patient(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Vec<Document>, sqlx::Error> {
    list(tx, ctx, patient, now).await
}

/// One of the signed-in patient's documents; `None` for anyone else's.
pub async fn own(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<Document>, sqlx::Error> {
    one(tx, ctx, me.patient_id(), id, now).await
}

/// One of a patient's documents for clinical staff.
pub async fn of_patient(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<Document>, sqlx::Error> {
    one(tx, ctx, patient, id, now).await
}

/// Who asks for a document: the patient, or clinical staff for a patient.
pub enum Requester<'a> {
    Patient(&'a PatientScope),
    Staff(&'a ClinicalScope, PatientId),
}

impl Requester<'_> {
    fn patient(&self) -> PatientId {
        match self {
            Requester::Patient(me) => me.patient_id(),
            Requester::Staff(_, p) => *p,
        }
    }
    fn user(&self) -> UserId {
        match self {
            Requester::Patient(me) => me.user_id(),
            Requester::Staff(s, _) => s.user_id(),
        }
    }
}

/// Refuses a request when the patient already has [`MAX_PENDING`] documents on their way.
/// Locks the patient's row, so two requests at once cannot both pass the count.
async fn room_for_one_more(tx: &mut TenantTx, patient: PatientId) -> Result<(), DocumentError> {
    lock_patient(tx, patient).await?;
    room_counted(tx, patient).await
}

/// The patient's row, locked until the transaction ends: requests for their documents take
/// turns.
async fn lock_patient(tx: &mut TenantTx, patient: PatientId) -> Result<(), DocumentError> {
    sqlx::query!(
        "SELECT id FROM patients WHERE id = $1 FOR UPDATE",
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)?;
    Ok(())
}

/// [`room_for_one_more`] once the patient's row is locked.
async fn room_counted(tx: &mut TenantTx, patient: PatientId) -> Result<(), DocumentError> {
    let pending = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM documents
           WHERE patient_id = $1 AND status IN ('queued', 'rendering')"#,
        patient.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if pending >= MAX_PENDING {
        return Err(DocumentError::TooManyPending);
    }
    Ok(())
}

/// What a request for a document names besides its kind.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The visit a visit summary prints.
    pub visit: Option<uuid::Uuid>,
    /// What a referral letter says.
    pub referral: Option<super::letters::Referral>,
}

/// Queues a document to be printed: the row (queued) and its render job commit together.
/// A visit summary names a visit of the same patient; a referral letter is made by staff
/// only, with its fields.
pub async fn request(
    tx: &mut TenantTx,
    who: Requester<'_>,
    ctx: &AuditContext,
    kind: Kind,
    subject: Subject,
    now: DateTime<Utc>,
) -> Result<DocumentId, DocumentError> {
    let staff = matches!(who, Requester::Staff(..));
    // Statements and receipts are asked for through the bills (`billing::print`).
    if !kind.is_generated() || kind.is_billing() || (kind.staff_made() && !staff) {
        return Err(DocumentError::NotGenerated);
    }
    let letter = match (kind.staff_made(), subject.referral) {
        (true, Some(r)) => Some(serde_json::to_value(r).map_err(|_| DocumentError::NotGenerated)?),
        (true, None) => return Err(DocumentError::NotGenerated),
        (false, _) => None,
    };
    let visit = subject.visit;
    let patient = who.patient();
    let subject = match (kind.needs_visit(), visit) {
        (false, _) => None,
        (true, None) => return Err(DocumentError::VisitNotFound),
        (true, Some(v)) => {
            let found = sqlx::query_scalar!(
                "SELECT id FROM encounters
                 WHERE id = $1 AND patient_id = $2
                   AND status NOT IN ('entered-in-error', 'cancelled')",
                v,
                patient.as_uuid()
            )
            .fetch_optional(tx.conn())
            .await?;
            Some(found.ok_or(DocumentError::VisitNotFound)?)
        }
    };
    room_for_one_more(tx, patient).await?;
    let id = DocumentId::new();
    sqlx::query!(
        "INSERT INTO documents (id, patient_id, origin, kind, subject_id, letter, status,
                                requested_by, created_at)
         VALUES ($1, $2, 'generated', $3, $4, $5, 'queued', $6, $7)",
        id.as_uuid(),
        patient.as_uuid(),
        kind.code(),
        subject,
        letter,
        who.user().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?;
    queued(tx, ctx, id, patient, now).await?;
    Ok(id)
}

/// The render job and the audit row of a document just queued.
async fn queued(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    id: DocumentId,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<(), DocumentError> {
    jobs::enqueue(tx, &Job::DocumentRender { document_id: id }).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::DocumentRequest, "document")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(())
}

/// Queues a statement's or a receipt's PDF (`subject`: the statement or the payment, already
/// checked to be the patient's by the caller), asked for by `by`. A second receipt for one
/// payment is not made: `None`.
pub(crate) async fn request_billing(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    patient: PatientId,
    kind: Kind,
    subject: uuid::Uuid,
    by: UserId,
    now: DateTime<Utc>,
) -> Result<Option<DocumentId>, DocumentError> {
    if !kind.is_billing() {
        return Err(DocumentError::NotGenerated);
    }
    lock_patient(tx, patient).await?;
    // A receipt someone made while this waited for the lock is theirs and this one's, not one
    // more: looked for before counting, or the two first opens of a patient with four
    // documents on their way would refuse the second.
    if kind == Kind::Receipt {
        let made = sqlx::query_scalar!(
            "SELECT id FROM documents WHERE kind = 'receipt' AND subject_id = $1",
            subject
        )
        .fetch_optional(tx.conn())
        .await?;
        if made.is_some() {
            return Ok(None);
        }
    }
    room_counted(tx, patient).await?;
    let id = DocumentId::new();
    let inserted = sqlx::query!(
        "INSERT INTO documents (id, patient_id, origin, kind, subject_id, status, requested_by,
                                created_at)
         VALUES ($1, $2, 'generated', $3, $4, 'queued', $5, $6)
         ON CONFLICT DO NOTHING",
        id.as_uuid(),
        patient.as_uuid(),
        kind.code(),
        subject,
        by.as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    queued(tx, ctx, id, patient, now).await?;
    Ok(Some(id))
}

/// Queues a failed document again (a new render job), as its "Try again" button does.
pub async fn retry(
    tx: &mut TenantTx,
    who: Requester<'_>,
    ctx: &AuditContext,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<(), DocumentError> {
    retry_of(tx, who.patient(), ctx, id, now).await
}

/// [`retry`] of a document of `patient` (the caller has checked who may).
pub(crate) async fn retry_of(
    tx: &mut TenantTx,
    patient: PatientId,
    ctx: &AuditContext,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<(), DocumentError> {
    let status = sqlx::query_scalar!(
        "SELECT status FROM documents
         WHERE id = $1 AND patient_id = $2 AND removed_at IS NULL FOR UPDATE",
        id.as_uuid(),
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)?;
    if status != "failed" {
        return Err(DocumentError::NotRetryable);
    }
    room_for_one_more(tx, patient).await?;
    sqlx::query!(
        "UPDATE documents SET status = 'queued', failure = NULL, attempts = 0 WHERE id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    jobs::enqueue(tx, &Job::DocumentRender { document_id: id }).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::DocumentRequest, "document")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(())
}

/// What a download serves.
#[derive(Debug, Clone)]
pub struct Download {
    pub blob: BlobKey,
    pub media_type: MediaType,
    /// A name with no health detail in it: the kind and the day it was made.
    pub filename: String,
}

pub(crate) async fn download(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    patient: PatientId,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<Download>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT kind, blob AS "blob!", media_type AS "media_type!", created_at
           FROM documents
           WHERE id = $1 AND patient_id = $2 AND removed_at IS NULL AND status = 'ready'"#,
        id.as_uuid(),
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (Some(blob), Some(media)) = (BlobKey::new(&row.blob), MediaType::parse(&row.media_type))
    else {
        return Ok(None);
    };
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::DocumentDownload, "document")
            .resource(id)
            .patient(patient),
    )
    .await?;
    Ok(Some(Download {
        blob,
        media_type: media,
        filename: format!(
            "{}-{}.{}",
            row.kind.replace('_', "-"),
            row.created_at.format("%Y-%m-%d"),
            media.extension()
        ),
    }))
}

/// The signed-in patient's ready document, to download (audited).
pub async fn own_download(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<Download>, sqlx::Error> {
    download(tx, ctx, me.patient_id(), id, now).await
}

/// A patient's ready document for clinical staff, to download (audited).
pub async fn download_of_patient(
    tx: &mut TenantTx,
    _staff: &ClinicalScope,
    ctx: &AuditContext,
    patient: PatientId,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<Option<Download>, sqlx::Error> {
    download(tx, ctx, patient, id, now).await
}

/// A blob written and ready to be named by its row.
#[derive(Debug, Clone)]
pub struct Stored {
    pub blob: BlobKey,
    pub media_type: MediaType,
    pub size_bytes: i64,
    pub sha256: [u8; 32],
}

/// The blob name a document's content is stored under. Each write gets a new name, so a
/// retried render never overwrites a blob a committed row names.
pub fn blob_name(id: DocumentId) -> Result<BlobKey, VaultError> {
    let name = format!("documents/{}-{}", id, uuid::Uuid::new_v4().simple());
    BlobKey::new(&name).ok_or(VaultError::Name)
}

/// Records the signed-in patient's upload, whose blob was written (and prepared) already.
#[allow(clippy::too_many_arguments)]
pub async fn add_upload(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: DocumentId,
    kind: Kind,
    note: &str,
    stored: &Stored,
    now: DateTime<Utc>,
) -> Result<(), DocumentError> {
    if kind.is_generated() {
        return Err(DocumentError::NotGenerated);
    }
    sqlx::query!(
        "INSERT INTO documents (id, patient_id, origin, kind, status, note, media_type,
                                size_bytes, sha256, blob, requested_by, created_at, ready_at)
         VALUES ($1, $2, 'uploaded', $3, 'ready', $4, $5, $6, $7, $8, $9, $10, $10)",
        id.as_uuid(),
        me.patient_id().as_uuid(),
        kind.code(),
        note,
        stored.media_type.as_str(),
        stored.size_bytes,
        &stored.sha256[..],
        stored.blob.as_str(),
        me.user_id().as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?;
    vault::claim(tx, &stored.blob).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::DocumentUpload, "document")
            .resource(id)
            .patient(me.patient_id()),
    )
    .await?;
    Ok(())
}

/// Hides the signed-in patient's own upload from every list; the row and its blob stay for
/// the audit trail. Generated documents and uploads by anyone else are not theirs to remove.
pub async fn remove_own(
    tx: &mut TenantTx,
    me: &PatientScope,
    ctx: &AuditContext,
    id: DocumentId,
    now: DateTime<Utc>,
) -> Result<(), DocumentError> {
    let done = sqlx::query!(
        "UPDATE documents SET removed_at = $3, removed_by = $4
         WHERE id = $1 AND patient_id = $2 AND origin = 'uploaded' AND removed_at IS NULL
           AND requested_by = $4",
        id.as_uuid(),
        me.patient_id().as_uuid(),
        now,
        me.user_id().as_uuid()
    )
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(DocumentError::NotFound);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::DocumentRemove, "document")
            .resource(id)
            .patient(me.patient_id()),
    )
    .await?;
    Ok(())
}

/// A render the worker is to do.
#[derive(Debug, Clone)]
pub struct RenderTask {
    pub id: DocumentId,
    pub patient: PatientId,
    pub kind: Kind,
    /// What it prints: the visit of a visit summary, the statement of a statement, the
    /// payment of a receipt.
    pub subject: Option<uuid::Uuid>,
    pub referral: Option<super::letters::Referral>,
}

/// Marks the document as being prepared; `None` when there is nothing to do (it is ready
/// already, failed, removed, or gone). A failed document is prepared again only after the
/// person asks (`retry` queues it): a late run of a job already given up on (its lease ran out
/// while it worked, under load) must not turn "failed" back into a spinner for ever.
pub async fn start_render(
    tx: &mut TenantTx,
    id: DocumentId,
) -> Result<Option<RenderTask>, sqlx::Error> {
    let row = sqlx::query!(
        "UPDATE documents SET status = 'rendering', attempts = attempts + 1
         WHERE id = $1 AND origin = 'generated' AND status IN ('queued', 'rendering')
           AND removed_at IS NULL
         RETURNING patient_id, kind, subject_id, letter",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.and_then(|r| {
        Some(RenderTask {
            id,
            patient: PatientId::from_uuid(r.patient_id),
            kind: Kind::parse(&r.kind)?,
            subject: r.subject_id,
            referral: r.letter.and_then(|l| serde_json::from_value(l).ok()),
        })
    }))
}

/// Makes the document ready with its stored PDF (and claims the blob's intent). When another
/// run made it ready first, this blob is left unclaimed and its sweep deletes it.
pub async fn finish_render(
    tx: &mut TenantTx,
    id: DocumentId,
    stored: &Stored,
    content_digest: &str,
    pages: i32,
    now: DateTime<Utc>,
) -> Result<(), DocumentError> {
    let done = sqlx::query!(
        "UPDATE documents SET status = 'ready', failure = NULL, media_type = $2, size_bytes = $3,
                sha256 = $4, blob = $5, content_digest = $6, pages = $7, ready_at = $8
         WHERE id = $1 AND status <> 'ready'",
        id.as_uuid(),
        stored.media_type.as_str(),
        stored.size_bytes,
        &stored.sha256[..],
        stored.blob.as_str(),
        content_digest,
        pages,
        now
    )
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 1 {
        vault::claim(tx, &stored.blob).await?;
    }
    Ok(())
}

/// Marks the document failed after the render's last attempt, with words for the person.
pub async fn fail_render(
    tx: &mut TenantTx,
    id: DocumentId,
    failure: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE documents SET status = 'failed', failure = $2
         WHERE id = $1 AND status IN ('queued', 'rendering')",
        id.as_uuid(),
        failure
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
