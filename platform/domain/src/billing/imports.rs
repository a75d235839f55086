//! Statements from the clinic's own billing system, through the API with a clinic API key:
//! a whole statement (the patient by an identifier the clinic's records use, such as the MRN,
//! the lines, the due date) is checked, written and issued in one transaction, exactly as one
//! issued by billing staff (the same ledger charge, guest code and notices with no amount).
//!
//! The sender names the statement with its own id (`external_id`). Sending it again returns
//! the statement already made, never a second one; the same id with different content is
//! refused, as Stripe treats an idempotency key. Two sends at once are serialised by a
//! transaction lock on the id.

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;
use sha2::{Digest, Sha256};

use super::lines::{self, LineInput};
use super::{BillingError, Money, accounts};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::api_keys::ImportScope;
use crate::ids::{PatientId, StatementId};

/// The most lines one statement may carry (as on the form).
pub const MAX_LINES: usize = 100;

/// A patient identifier as the clinic's records carry it (FHIR `Patient.identifier`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

/// A statement as a billing system sends it.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct StatementImport {
    /// The sender's own id of the statement (1–64 characters).
    pub external_id: String,
    /// The patient, by an identifier imported with their record (such as the MRN).
    pub patient: Identifier,
    /// ISO 4217; must be the clinic's billing currency.
    pub currency: String,
    /// `YYYY-MM-DD`, today or later.
    pub due_on: String,
    pub lines: Vec<LineInput>,
}

/// What was refused: each problem with where it is (`lines[2].charge`).
#[derive(Debug)]
pub enum ImportError {
    Invalid(Vec<(String, String)>),
    /// No patient of this clinic carries the identifier.
    UnknownPatient,
    /// The external id was used before for a statement with other content.
    Conflict {
        existing: StatementId,
    },
    Billing(BillingError),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        ImportError::Billing(BillingError::Database(e))
    }
}

impl From<BillingError> for ImportError {
    fn from(e: BillingError) -> Self {
        ImportError::Billing(e)
    }
}

/// The statement the import made (or found).
#[derive(Debug, Clone)]
pub struct Imported {
    pub id: StatementId,
    pub number: i64,
    /// `false`: it was made by an earlier send of the same statement.
    pub created: bool,
    /// What the patient was charged.
    pub issued: Money,
    pub due_on: NaiveDate,
}

/// What a send contains, as a digest: two sends with the same content (whatever the JSON's
/// spacing or key order) digest the same.
fn digest(input: &StatementImport) -> String {
    // `serde_json::Value` keeps object keys sorted, so this text is canonical.
    let canonical = serde_json::to_value(input)
        .map(|v| v.to_string())
        .unwrap_or_default();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks, writes and issues a statement sent by the clinic's billing system.
pub async fn import(
    tx: &mut TenantTx,
    scope: &ImportScope,
    ctx: &AuditContext,
    input: &StatementImport,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Imported, ImportError> {
    let mut problems: Vec<(String, String)> = Vec::new();
    let external = input.external_id.trim();
    if external.is_empty()
        || external.chars().count() > 64
        || external.chars().any(char::is_control)
    {
        problems.push((
            "external_id".into(),
            "Give the statement's id in your system: 1 to 64 characters on one line.".into(),
        ));
    }
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }
    let currency = super::clinic_currency(tx).await?;
    // A send of a statement made before is answered with it, whatever day it is now (its due
    // date may have passed since): looked up first, under a lock on the id in this clinic, so
    // two sends at once make one.
    let digest = digest(input);
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('statement-import:' || $1 || ':' || $2, 0))",
        tx.tenant_id().to_string(),
        external
    )
    .execute(tx.conn())
    .await?;
    if let Some(found) = sqlx::query!(
        "SELECT id, number, patient_id, import_digest, issued_minor, due_on FROM statements
         WHERE external_id = $1",
        external
    )
    .fetch_optional(tx.conn())
    .await?
    {
        let id = StatementId::from_uuid(found.id);
        if found.import_digest.as_deref() != Some(digest.as_str()) {
            return Err(ImportError::Conflict { existing: id });
        }
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::StatementView, "statements")
                .resource(id)
                .patient(PatientId::from_uuid(found.patient_id)),
        )
        .await?;
        return Ok(Imported {
            id,
            number: found.number,
            created: false,
            issued: Money::new(found.issued_minor.unwrap_or(0), currency),
            due_on: found.due_on.unwrap_or(today),
        });
    }
    if !input
        .currency
        .trim()
        .eq_ignore_ascii_case(currency.as_str())
    {
        problems.push((
            "currency".into(),
            format!(
                "This clinic bills in {}; send the statement in {}.",
                currency.as_str(),
                currency.as_str()
            ),
        ));
    }
    let due_on = match NaiveDate::parse_from_str(input.due_on.trim(), "%Y-%m-%d") {
        Ok(d) if d < today => {
            problems.push((
                "due_on".into(),
                "The due date cannot be in the past.".into(),
            ));
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            problems.push((
                "due_on".into(),
                "Give the due date as year, month and day, like 2027-01-15.".into(),
            ));
            None
        }
    };
    if input.lines.is_empty() || input.lines.len() > MAX_LINES {
        problems.push((
            "lines".into(),
            format!("A statement has between 1 and {MAX_LINES} lines."),
        ));
    }
    let mut parsed = Vec::new();
    for (i, line) in input.lines.iter().take(MAX_LINES).enumerate() {
        match lines::parse(line, currency, today) {
            Ok(l) => parsed.push(l),
            Err(errs) => problems.extend(
                errs.into_iter()
                    .map(|(field, m)| (format!("lines[{i}].{field}"), m)),
            ),
        }
    }
    let patient = sqlx::query_scalar!(
        "SELECT patient_id FROM patient_identifiers WHERE system = $1 AND value = $2",
        input.patient.system.trim(),
        input.patient.value.trim(),
    )
    .fetch_optional(tx.conn())
    .await?
    .map(PatientId::from_uuid);
    let (Some(due_on), true) = (due_on, problems.is_empty()) else {
        return Err(ImportError::Invalid(problems));
    };
    let Some(patient) = patient else {
        return Err(ImportError::UnknownPatient);
    };
    let Some((account, currency)) = accounts::ensure(tx, patient, now).await? else {
        return Err(ImportError::UnknownPatient);
    };
    let id = StatementId::new();
    let number = sqlx::query_scalar!(
        "INSERT INTO statements (id, account_id, patient_id, status, currency, created_at,
                                 external_id, import_digest, imported_by_key)
         VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8)
         RETURNING number",
        id.as_uuid(),
        account.as_uuid(),
        patient.as_uuid(),
        currency.as_str(),
        now,
        external,
        digest,
        scope.key_id(),
    )
    .fetch_one(tx.conn())
    .await?;
    let positions: Vec<i32> = (1..=parsed.len() as i32).collect();
    sqlx::query!(
        "INSERT INTO statement_lines (id, statement_id, position, service_date, description,
                                      code, charge_minor, insurance_paid_minor, adjustment_minor)
         SELECT gen_random_uuid(), $1, * FROM unnest($2::int[], $3::date[], $4::text[],
                                                     $5::text[], $6::bigint[], $7::bigint[],
                                                     $8::bigint[])",
        id.as_uuid(),
        &positions,
        &parsed.iter().map(|l| l.service_date).collect::<Vec<_>>(),
        &parsed
            .iter()
            .map(|l| l.description.clone())
            .collect::<Vec<_>>(),
        &parsed.iter().map(|l| l.code.clone()).collect::<Vec<_>>() as &[Option<String>],
        &parsed.iter().map(|l| l.charge).collect::<Vec<_>>(),
        &parsed.iter().map(|l| l.insurance_paid).collect::<Vec<_>>(),
        &parsed.iter().map(|l| l.adjustment).collect::<Vec<_>>(),
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::StatementCreate, "statements")
            .resource(id)
            .patient(patient),
    )
    .await?;
    let issued = super::statements::issue_as(tx, ctx, id, None, due_on, None, now).await?;
    Ok(Imported {
        id,
        number,
        created: true,
        issued,
        due_on,
    })
}
