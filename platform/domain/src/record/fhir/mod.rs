//! FHIR R4 import (`POST /fhir/R4`): a `transaction` or `batch` Bundle for one patient, as EHR
//! exports and Synthea write them. Resources are matched so that importing the same bundle
//! again changes nothing and writes no new version: by identifier (a conditional
//! `PUT Type?identifier=…` names one too), else by the entry's `fullUrl` (Synthea's
//! `urn:uuid:`), else by a natural key (type + code + time). The match is kept in each row's
//! `source_key`. A transaction is all or nothing; a batch writes the entries that pass and
//! answers an OperationOutcome for each that does not. One audit row per import.

mod json;
mod map;
mod refs;
mod write;

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;
use serde_json::Value;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::api_keys::ImportScope;
use crate::ids::PatientId;
pub use map::ACCEPTED;
use map::Row;
pub(crate) use refs::Refs;
pub use refs::link_patient;

/// The most entries one bundle may carry.
pub const MAX_ENTRIES: usize = 10_000;

/// One problem, as an OperationOutcome issue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// FHIR IssueType: invalid, required, value, not-supported, not-found, conflict,
    /// too-costly, structure.
    pub code: &'static str,
    pub diagnostics: String,
    /// The element it is about, as a FHIRPath-ish path within the resource.
    pub expression: Option<String>,
}

impl Issue {
    pub fn new(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self {
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }
    pub fn at(mut self, path: &str) -> Self {
        self.expression = Some(path.to_owned());
        self
    }
}

/// Transaction or batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Transaction,
    Batch,
}

/// What became of one entry.
#[derive(Debug, Clone)]
pub struct EntryOutcome {
    /// 201 created, 200 matched (changed or not), 4xx refused.
    pub status: u16,
    /// `Type/<id>/_history/<version>` of the row it became.
    pub location: Option<String>,
    /// Whether a new version was written (created or changed).
    pub changed: bool,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: Kind,
    pub patient: PatientId,
    pub entries: Vec<EntryOutcome>,
}

impl Outcome {
    /// Entries that created or changed a row.
    pub fn changed(&self) -> usize {
        self.entries.iter().filter(|e| e.changed).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The whole bundle is refused (not a bundle, too large, two patients, or a transaction
    /// with any entry in error); each issue says where (`Bundle.entry[i]` in its expression).
    #[error("the bundle was refused")]
    Refused(Vec<Issue>),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl From<crate::record::RecordError> for ImportError {
    fn from(e: crate::record::RecordError) -> Self {
        match e {
            crate::record::RecordError::Database(d) => Self::Database(d),
            other => Self::Refused(vec![Issue::new("invalid", other.to_string())]),
        }
    }
}

fn refuse(code: &'static str, words: impl Into<String>) -> ImportError {
    ImportError::Refused(vec![Issue::new(code, words)])
}

/// An entry as read from the bundle.
pub(crate) struct Entry<'a> {
    pub full_url: Option<&'a str>,
    pub resource: &'a Value,
    pub rtype: &'a str,
    pub method: &'a str,
    pub url: Option<&'a str>,
    pub if_none_exist: Option<&'a str>,
}

fn entries(bundle: &Value) -> Result<(Kind, Vec<Result<Entry<'_>, Issue>>), ImportError> {
    if json::text(bundle, "resourceType") != Some("Bundle") {
        return Err(refuse("structure", "The body is not a FHIR Bundle."));
    }
    let kind = match json::text(bundle, "type") {
        Some("transaction") => Kind::Transaction,
        Some("batch") => Kind::Batch,
        other => {
            return Err(refuse(
                "not-supported",
                format!(
                    "Bundle.type must be transaction or batch, not {}.",
                    other.unwrap_or("missing")
                ),
            ));
        }
    };
    let list = json::array(bundle, "entry");
    if list.len() > MAX_ENTRIES {
        return Err(refuse(
            "too-costly",
            format!(
                "The bundle has {} entries; at most {MAX_ENTRIES} are taken at once. Split it.",
                list.len()
            ),
        ));
    }
    let out = list
        .iter()
        .map(|e| {
            let resource = e
                .get("resource")
                .filter(|r| r.is_object())
                .ok_or_else(|| Issue::new("required", "The entry has no resource."))?;
            let rtype = json::text(resource, "resourceType")
                .ok_or_else(|| Issue::new("required", "The resource has no resourceType."))?;
            if !ACCEPTED.contains(&rtype) {
                return Err(Issue::new(
                    "not-supported",
                    format!("{rtype} is not a resource type this import takes."),
                ));
            }
            let method = json::text(e, "request.method").unwrap_or("POST");
            if method != "POST" && method != "PUT" {
                return Err(Issue::new(
                    "not-supported",
                    format!("{method} is not taken here; send POST or PUT entries."),
                ));
            }
            Ok(Entry {
                full_url: json::text(e, "fullUrl"),
                resource,
                rtype,
                method,
                url: json::text(e, "request.url"),
                if_none_exist: json::text(e, "request.ifNoneExist"),
            })
        })
        .collect();
    Ok((kind, out))
}

/// `identifier=system|value` (from a conditional URL or ifNoneExist) as a source key.
fn identifier_query(q: &str) -> Option<String> {
    let q = q.split_once('?').map_or(q, |(_, q)| q);
    let v = q.strip_prefix("identifier=")?;
    let (system, value) = v.split_once('|')?;
    (!system.is_empty() && !value.is_empty()).then(|| format!("id:{system}|{value}"))
}

/// How a re-import finds this entry's row again.
fn source_key(e: &Entry<'_>) -> Result<String, Issue> {
    if e.method == "PUT" {
        return e.url.and_then(identifier_query).ok_or_else(|| {
            Issue::new(
                "not-supported",
                "A PUT entry is taken only as a conditional update: Type?identifier=system|value.",
            )
            .at("request.url")
        });
    }
    if let Some(i) = json::array(e.resource, "identifier").first()
        && let (Some(s), Some(v)) = (json::text(i, "system"), json::text(i, "value"))
    {
        return Ok(format!("id:{s}|{v}"));
    }
    if let Some(u) = e.full_url {
        return Ok(format!("url:{u}"));
    }
    let r = e.resource;
    let code = [
        "code.coding.0.code",
        "vaccineCode.coding.0.code",
        "medicationCodeableConcept.coding.0.code",
        "type.0.coding.0.code",
        "type.coding.0.code",
        "code.text",
    ]
    .iter()
    .find_map(|p| json::text(r, p));
    let when = [
        "effectiveDateTime",
        "effectivePeriod.start",
        "onsetDateTime",
        "occurrenceDateTime",
        "performedDateTime",
        "period.start",
        "authoredOn",
        "issued",
        "date",
        "recordedDate",
    ]
    .iter()
    .find_map(|p| json::text(r, p));
    match (code, when) {
        (Some(c), Some(w)) => Ok(format!("nk:{}:{c}:{w}", e.rtype)),
        _ => Err(Issue::new(
            "required",
            "This entry has no identifier, no fullUrl and no code with a time, so a later import could not find it again.",
        )),
    }
}

/// Imports a bundle into the clinic the key belongs to (the transaction's clinic). The caller
/// commits: for a transaction, an `Err` means nothing may be kept.
pub async fn import(
    tx: &mut TenantTx,
    key: &ImportScope,
    ctx: &AuditContext,
    bundle: &Value,
    now: DateTime<Utc>,
) -> Result<Outcome, ImportError> {
    let (kind, read) = entries(bundle)?;
    let n = read.len();
    let mut issues: Vec<Vec<Issue>> = vec![Vec::new(); n];
    let mut keys: Vec<Option<String>> = vec![None; n];
    let mut list: Vec<Option<Entry<'_>>> = Vec::with_capacity(n);
    for (i, e) in read.into_iter().enumerate() {
        match e.and_then(|e| source_key(&e).map(|k| (e, k))) {
            Ok((e, k)) => {
                keys[i] = Some(k);
                list.push(Some(e));
            }
            Err(issue) => {
                issues[i].push(issue);
                list.push(None);
            }
        }
    }

    // One patient: the bundle's Patient entry, or one conditional reference to a known one.
    let refs = Refs::build_with(&list, keys.clone())?;
    let patient = refs::find_patient(tx, &refs, &list, now).await?;
    let Some((patient, patient_index, patient_created)) = patient else {
        return Err(refuse(
            "not-found",
            "The bundle names no patient this clinic knows: include the Patient resource, or refer to one by Patient?identifier=system|value.",
        ));
    };

    // Map every entry; then match reports with their results.
    let mut rows: Vec<Option<Row>> = vec![None; n];
    for (i, e) in list.iter().enumerate() {
        let (Some(e), Some(k)) = (e, &keys[i]) else {
            continue;
        };
        refs.set_current(i);
        match map::map(e.resource, k, &refs, now) {
            Ok(row) => rows[i] = Some(row),
            Err(issue) => issues[i].push(issue),
        }
    }
    if let Some(pi) = patient_index
        && !issues[pi].is_empty()
    {
        // Everything else hangs on the patient.
        let words = issues[pi][0].diagnostics.clone();
        return Err(ImportError::Refused(vec![
            Issue::new("invalid", format!("The Patient entry is refused: {words}"))
                .at(&format!("Bundle.entry[{pi}]")),
        ]));
    }
    let wrappers = write::link_reports(&mut rows, &refs, &mut issues);
    write::refuse_duplicates(&rows, &mut issues);
    let external = refs.external_encounters();
    write::check_external(tx, patient, &external, &mut issues).await?;
    // ifNoneExist: a match that exists already is left as it is.
    let skip = write::existing_if_none_exist(tx, patient, &list, &rows, &issues).await?;
    write::refuse_orphans(&rows, &mut issues);

    let failed: Vec<usize> = (0..n).filter(|i| !issues[*i].is_empty()).collect();
    if kind == Kind::Transaction && !failed.is_empty() {
        return Err(ImportError::Refused(
            failed
                .iter()
                .flat_map(|i| {
                    issues[*i].iter().map(move |is| {
                        let mut is = is.clone();
                        let inner = is.expression.take();
                        is.expression = Some(match inner {
                            Some(p) => format!("Bundle.entry[{i}].resource.{p}"),
                            None => format!("Bundle.entry[{i}]"),
                        });
                        is
                    })
                })
                .collect(),
        ));
    }
    let keep: Vec<Option<Row>> = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.filter(|_| issues[i].is_empty() && !skip.contains(&i)))
        .collect();
    let written = write::write(tx, patient, &keep, &wrappers, now).await?;

    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        if !issues[i].is_empty() {
            let status = if issues[i].iter().any(|x| x.code == "not-found") {
                404
            } else {
                422
            };
            entries.push(EntryOutcome {
                status,
                location: None,
                changed: false,
                issues: std::mem::take(&mut issues[i]),
            });
            continue;
        }
        let loc = written.get(&i);
        let is_patient = Some(i) == patient_index;
        entries.push(EntryOutcome {
            status: match loc {
                Some(w) if w.created => 201,
                _ if is_patient && patient_created => 201,
                _ => 200,
            },
            location: if is_patient {
                Some(format!("Patient/{}", patient.as_uuid()))
            } else {
                loc.map(|w| {
                    format!(
                        "{}/{}/_history/{}",
                        list[i].as_ref().map_or("", |e| e.rtype),
                        w.id,
                        w.version
                    )
                })
            },
            changed: loc.is_some_and(|w| w.changed) || (is_patient && patient_created),
            issues: Vec::new(),
        });
    }
    audit::record(
        tx,
        &ctx.automatic(),
        now,
        AuditEvent::new(Action::RecordImport, "fhir_bundle")
            .resource(key.key_id())
            .patient(patient),
    )
    .await?;
    Ok(Outcome {
        kind,
        patient,
        entries,
    })
}
