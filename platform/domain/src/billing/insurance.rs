//! Insurance: the patient's primary and secondary coverage (payer, plan, member id, group
//! number, subscriber and their relationship to the patient, photos of the card's front and
//! back from the patient's own uploads). The patient adds and edits; billing staff verify.
//! Every change is a new version (an edit against an older one is refused, the newer shown),
//! and each version is kept in `insurance_history` with who and when; an edit after a
//! verification needs verifying again. Every read and write is audited.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::BillingError;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::{BillingScope, PatientScope};
use crate::ids::{DocumentId, PatientId, UserId};

/// Which coverage: the one billed first, or the one billed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    Primary,
    Secondary,
}

impl Rank {
    pub const ALL: [Rank; 2] = [Rank::Primary, Rank::Secondary];

    pub fn parse(raw: &str) -> Option<Rank> {
        Rank::ALL.into_iter().find(|r| r.code() == raw)
    }

    pub fn code(self) -> &'static str {
        match self {
            Rank::Primary => "primary",
            Rank::Secondary => "secondary",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Rank::Primary => "Main insurance",
            Rank::Secondary => "Second insurance",
        }
    }
}

/// The subscriber's relationship to the patient.
pub const RELATIONSHIPS: [(&str, &str); 4] = [
    ("self", "The patient"),
    ("spouse", "Spouse or partner"),
    ("child", "Parent (the patient is their child)"),
    ("other", "Someone else"),
];

/// What the form sends.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub payer: String,
    pub plan: String,
    pub member_id: String,
    pub group_number: String,
    pub subscriber: String,
    pub relationship: String,
    pub front: String,
    pub back: String,
}

/// One coverage as pages show it.
#[derive(Debug, Clone)]
pub struct Coverage {
    pub id: uuid::Uuid,
    pub rank: Rank,
    pub payer: String,
    pub plan: String,
    pub member_id: String,
    pub group_number: String,
    pub subscriber: String,
    pub relationship: String,
    pub front: Option<DocumentId>,
    pub back: Option<DocumentId>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<String>,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

impl Coverage {
    pub fn relationship_label(&self) -> &'static str {
        RELATIONSHIPS
            .iter()
            .find(|(c, _)| *c == self.relationship)
            .map(|(_, l)| *l)
            .unwrap_or("Someone else")
    }
}

/// One version in a coverage's history.
#[derive(Debug, Clone)]
pub struct Change {
    pub version: i32,
    pub change: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub summary: String,
}

fn line(
    raw: &str,
    field: &'static str,
    what: &str,
    max: usize,
    needed: bool,
) -> Result<String, BillingError> {
    let v = raw.trim();
    if needed && v.is_empty() {
        return Err(BillingError::field(field, format!("Enter the {what}.")));
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(BillingError::field(
            field,
            format!("Keep the {what} to one line of at most {max} characters."),
        ));
    }
    Ok(v.to_owned())
}

/// A card photo the form names: one of the patient's own insurance card uploads, or none.
async fn photo(
    tx: &mut TenantTx,
    patient: PatientId,
    raw: &str,
    field: &'static str,
) -> Result<Option<uuid::Uuid>, BillingError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let id = DocumentId::parse(raw.trim())
        .ok_or_else(|| BillingError::field(field, "Choose one of your card photos."))?;
    let found = sqlx::query_scalar!(
        "SELECT id FROM documents
         WHERE id = $1 AND patient_id = $2 AND kind = 'insurance_card' AND removed_at IS NULL",
        id.as_uuid(),
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    found
        .map(Some)
        .ok_or_else(|| BillingError::field(field, "Choose one of your card photos."))
}

async fn read(tx: &mut TenantTx, patient: PatientId) -> Result<Vec<Coverage>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT c.id, c.rank, c.payer, c.plan, c.member_id, c.group_number,
                  c.subscriber_name, c.relationship, c.front_document_id, c.back_document_id,
                  c.verified_at, u.email AS "verified_by?", c.version, c.updated_at
           FROM insurance_coverages c LEFT JOIN users u ON u.id = c.verified_by
           WHERE c.patient_id = $1
           ORDER BY c.rank"#,
        patient.as_uuid()
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(Coverage {
                id: r.id,
                rank: Rank::parse(&r.rank)?,
                payer: r.payer,
                plan: r.plan,
                member_id: r.member_id,
                group_number: r.group_number,
                subscriber: r.subscriber_name,
                relationship: r.relationship,
                front: r.front_document_id.map(DocumentId::from_uuid),
                back: r.back_document_id.map(DocumentId::from_uuid),
                verified_at: r.verified_at,
                verified_by: r.verified_by,
                version: r.version,
                updated_at: r.updated_at,
            })
        })
        .collect())
}

async fn audited(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    action: Action,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(action, "insurance").patient(patient),
    )
    .await
}

/// The signed-in patient's coverage.
pub async fn own(
    tx: &mut TenantTx,
    scope: &PatientScope,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Vec<Coverage>, sqlx::Error> {
    let found = read(tx, scope.patient_id()).await?;
    audited(tx, ctx, Action::InsuranceView, scope.patient_id(), now).await?;
    Ok(found)
}

/// A patient's coverage with each one's history, for billing staff.
pub async fn for_staff(
    tx: &mut TenantTx,
    _scope: &BillingScope,
    ctx: &AuditContext,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Vec<(Coverage, Vec<Change>)>, sqlx::Error> {
    let coverages = read(tx, patient).await?;
    let ids: Vec<uuid::Uuid> = coverages.iter().map(|c| c.id).collect();
    let changes = sqlx::query!(
        r#"SELECT h.coverage_id, h.version, h.change, u.email AS by_email, h.changed_at,
                  h.snapshot->>'payer' AS "payer?", h.snapshot->>'member_id' AS "member_id?"
           FROM insurance_history h JOIN users u ON u.id = h.changed_by
           WHERE h.coverage_id = ANY($1)
           ORDER BY h.version DESC, h.changed_at DESC"#,
        &ids
    )
    .fetch_all(tx.conn())
    .await?;
    audited(tx, ctx, Action::InsuranceView, patient, now).await?;
    Ok(coverages
        .into_iter()
        .map(|c| {
            let history = changes
                .iter()
                .filter(|h| h.coverage_id == c.id)
                .map(|h| Change {
                    version: h.version,
                    change: h.change.clone(),
                    by: h.by_email.clone(),
                    at: h.changed_at,
                    summary: format!(
                        "{}, member {}",
                        h.payer.clone().unwrap_or_default(),
                        h.member_id.clone().unwrap_or_default()
                    ),
                })
                .collect();
            (c, history)
        })
        .collect())
}

/// Keeps the coverage's current state as a version in its history.
async fn remember(
    tx: &mut TenantTx,
    coverage: uuid::Uuid,
    change: &str,
    by: UserId,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO insurance_history (id, coverage_id, version, change, snapshot, changed_by,
                                        changed_at)
         SELECT $1, c.id, c.version, $2,
                jsonb_build_object('payer', c.payer, 'plan', c.plan, 'member_id', c.member_id,
                                   'group_number', c.group_number,
                                   'subscriber_name', c.subscriber_name,
                                   'relationship', c.relationship,
                                   'front_document_id', c.front_document_id,
                                   'back_document_id', c.back_document_id,
                                   'verified_at', c.verified_at),
                $3, $4
         FROM insurance_coverages c WHERE c.id = $5",
        uuid::Uuid::now_v7(),
        change,
        by.as_uuid(),
        now,
        coverage,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The patient adds or changes their `rank` coverage. `seen`: the version their form showed
/// (`None` when adding); another change since is `Stale`.
pub async fn save_own(
    tx: &mut TenantTx,
    scope: &PatientScope,
    ctx: &AuditContext,
    rank: Rank,
    input: &Input,
    seen: Option<i32>,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let patient = scope.patient_id();
    let payer = line(&input.payer, "payer", "insurance company's name", 120, true)?;
    let plan = line(&input.plan, "plan", "plan's name", 120, false)?;
    let member_id = line(&input.member_id, "member_id", "member ID", 40, true)?;
    let group_number = line(
        &input.group_number,
        "group_number",
        "group number",
        40,
        false,
    )?;
    let subscriber = line(
        &input.subscriber,
        "subscriber",
        "name of the person insured",
        120,
        true,
    )?;
    let relationship = RELATIONSHIPS
        .iter()
        .find(|(c, _)| *c == input.relationship)
        .map(|(c, _)| *c)
        .ok_or_else(|| {
            BillingError::field("relationship", "Choose who the insured person is to you.")
        })?;
    let front = photo(tx, patient, &input.front, "front").await?;
    let back = photo(tx, patient, &input.back, "back").await?;
    // The patient's row, locked: two first saves at once (no coverage row yet to lock) run
    // one after the other, and the second finds the first's and is refused as stale.
    sqlx::query!(
        "SELECT id FROM patients WHERE id = $1 FOR UPDATE",
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    let current = sqlx::query!(
        "SELECT id, version FROM insurance_coverages
         WHERE patient_id = $1 AND rank = $2 FOR UPDATE",
        patient.as_uuid(),
        rank.code()
    )
    .fetch_optional(tx.conn())
    .await?;
    let (id, change) = match (current, seen) {
        (Some(c), Some(v)) if c.version == v => {
            sqlx::query!(
                "UPDATE insurance_coverages
                 SET payer = $2, plan = $3, member_id = $4, group_number = $5,
                     subscriber_name = $6, relationship = $7, front_document_id = $8,
                     back_document_id = $9, verified_at = NULL, verified_by = NULL,
                     version = version + 1, updated_by = $10, updated_at = $11
                 WHERE id = $1",
                c.id,
                payer,
                plan,
                member_id,
                group_number,
                subscriber,
                relationship,
                front,
                back,
                scope.user_id().as_uuid(),
                now,
            )
            .execute(tx.conn())
            .await?;
            (c.id, "edited")
        }
        // Changed (or added) by someone else since the form was shown.
        (Some(_), _) | (None, Some(_)) => return Err(BillingError::Stale),
        (None, None) => {
            let id = uuid::Uuid::now_v7();
            sqlx::query!(
                "INSERT INTO insurance_coverages (id, patient_id, rank, payer, plan, member_id,
                     group_number, subscriber_name, relationship, front_document_id,
                     back_document_id, version, updated_by, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13)",
                id,
                patient.as_uuid(),
                rank.code(),
                payer,
                plan,
                member_id,
                group_number,
                subscriber,
                relationship,
                front,
                back,
                scope.user_id().as_uuid(),
                now,
            )
            .execute(tx.conn())
            .await?;
            (id, "added")
        }
    };
    remember(tx, id, change, scope.user_id(), now).await?;
    audited(tx, ctx, Action::InsuranceUpdate, patient, now).await?;
    Ok(())
}

/// Billing staff mark a coverage checked with the payer, as of the version they saw.
pub async fn verify(
    tx: &mut TenantTx,
    scope: &BillingScope,
    ctx: &AuditContext,
    patient: PatientId,
    coverage: uuid::Uuid,
    seen: i32,
    now: DateTime<Utc>,
) -> Result<(), BillingError> {
    let current = sqlx::query!(
        r#"SELECT c.version, c.verified_at IS NOT NULL AS "verified!",
                  (SELECT h.change FROM insurance_history h
                   WHERE h.coverage_id = c.id AND h.version = c.version) AS last_change
           FROM insurance_coverages c WHERE c.id = $1 AND c.patient_id = $2 FOR UPDATE OF c"#,
        coverage,
        patient.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(BillingError::NotFound)?;
    // The same button pressed twice: the only change since is that verification.
    if current.version == seen + 1
        && current.verified
        && current.last_change.as_deref() == Some("verified")
    {
        return Ok(());
    }
    if current.version != seen {
        return Err(BillingError::Stale);
    }
    sqlx::query!(
        "UPDATE insurance_coverages
         SET verified_at = $2, verified_by = $3, version = version + 1
         WHERE id = $1",
        coverage,
        now,
        scope.user_id().as_uuid(),
    )
    .execute(tx.conn())
    .await?;
    remember(tx, coverage, "verified", scope.user_id(), now).await?;
    audited(tx, ctx, Action::InsuranceVerify, patient, now).await?;
    Ok(())
}

/// The patient's card photos to choose from: their insurance card uploads, newest first.
pub async fn card_photos(
    tx: &mut TenantTx,
    scope: &PatientScope,
) -> Result<Vec<(DocumentId, DateTime<Utc>)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT id, created_at FROM documents
         WHERE patient_id = $1 AND kind = 'insurance_card' AND removed_at IS NULL
         ORDER BY created_at DESC LIMIT 20",
        scope.patient_id().as_uuid()
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (DocumentId::from_uuid(r.id), r.created_at))
        .collect())
}
