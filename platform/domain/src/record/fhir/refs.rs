//! References inside a bundle: the one patient every resource must be about, practitioners'
//! names, encounters by their source keys, and conditional references (`Type?identifier=…`)
//! to what the record already holds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;
use serde_json::Value;

use super::json::{array, text};
use super::{Entry, ImportError, Issue, identifier_query, refuse};
use crate::ids::PatientId;

pub struct Refs<'a> {
    /// fullUrl or `Type/id` → entry index.
    by_ref: HashMap<String, usize>,
    types: Vec<Option<&'a str>>,
    resources: Vec<Option<&'a Value>>,
    /// The Patient entry, if the bundle has one.
    patient_entry: Option<usize>,
    /// Every way the bundle names its patient.
    patient_names: Vec<String>,
    keys: Vec<Option<String>>,
    // Atomic and a mutex (not Cell/RefCell) only so an import can be held across awaits.
    current: AtomicUsize,
    /// Encounters referred to by identifier, to be found in the record: (entry, source key).
    external: Mutex<Vec<(usize, String)>>,
}

impl<'a> Refs<'a> {
    pub(super) fn build_with(
        list: &[Option<Entry<'a>>],
        keys: Vec<Option<String>>,
    ) -> Result<Self, ImportError> {
        let mut by_ref = HashMap::new();
        let mut patient_entry = None;
        let mut patient_names = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let Some(e) = e else { continue };
            if let Some(u) = e.full_url {
                by_ref.insert(u.to_owned(), i);
            }
            if let Some(id) = text(e.resource, "id") {
                by_ref.insert(format!("{}/{id}", e.rtype), i);
            }
            if e.rtype == "Patient" {
                if patient_entry.is_some() {
                    return Err(refuse(
                        "invalid",
                        "The bundle holds two patients; send one bundle per patient.",
                    ));
                }
                patient_entry = Some(i);
                patient_names.extend(e.full_url.map(str::to_owned));
                if let Some(id) = text(e.resource, "id") {
                    patient_names.push(format!("Patient/{id}"));
                }
                for ident in array(e.resource, "identifier") {
                    if let (Some(s), Some(v)) = (text(ident, "system"), text(ident, "value")) {
                        patient_names.push(format!("Patient?identifier={s}|{v}"));
                    }
                }
            }
        }
        Ok(Self {
            by_ref,
            types: list.iter().map(|e| e.as_ref().map(|e| e.rtype)).collect(),
            resources: list
                .iter()
                .map(|e| e.as_ref().map(|e| e.resource))
                .collect(),
            patient_entry,
            patient_names,
            keys,
            current: AtomicUsize::new(0),
            external: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn set_current(&self, i: usize) {
        self.current.store(i, Ordering::Relaxed);
    }

    pub(super) fn external_encounters(&self) -> Vec<(usize, String)> {
        self.external
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The entry a reference string leads to.
    pub(super) fn entry(&self, reference: &str) -> Option<usize> {
        self.by_ref.get(reference).copied()
    }

    pub(super) fn type_of(&self, i: usize) -> Option<&'a str> {
        self.types.get(i).copied().flatten()
    }

    /// Checks the resource is about the bundle's patient (`subject`, or `patient` for
    /// allergies and immunizations).
    pub fn subject(&self, r: &Value) -> Result<(), Issue> {
        let (path, reference) = match (text(r, "subject.reference"), text(r, "patient.reference")) {
            (Some(s), _) => ("subject", s),
            (None, Some(p)) => ("patient", p),
            (None, None) => {
                return Err(
                    Issue::new("required", "The resource names no patient (subject).")
                        .at("subject"),
                );
            }
        };
        if self.patient_names.iter().any(|n| n == reference) {
            return Ok(());
        }
        // Without a Patient entry, the one conditional reference all subjects share is the
        // patient (find_patient refuses a bundle that names two).
        if self.patient_entry.is_none() && reference.starts_with("Patient?identifier=") {
            return Ok(());
        }
        Err(Issue::new(
            "invalid",
            format!("{path} refers to a patient other than the bundle's ({reference})."),
        )
        .at(path))
    }

    /// The source key of the encounter at `path` (a reference), if there is one: in the
    /// bundle, or by identifier in the record (checked later).
    pub fn encounter(&self, r: &Value, path: &str) -> Result<Option<String>, Issue> {
        let Some(reference) = text(r, &format!("{path}.reference")) else {
            return Ok(None);
        };
        if let Some(i) = self.entry(reference) {
            if self.type_of(i) != Some("Encounter") {
                return Err(Issue::new(
                    "invalid",
                    format!("{path} does not lead to an Encounter."),
                )
                .at(path));
            }
            return Ok(self.keys.get(i).cloned().flatten());
        }
        if reference.starts_with("Encounter?")
            && let Some(key) = identifier_query(reference)
        {
            let at = self.current.load(Ordering::Relaxed);
            match self.external.lock() {
                Ok(mut v) => v.push((at, key.clone())),
                Err(e) => e.into_inner().push((at, key.clone())),
            }
            return Ok(Some(key));
        }
        Err(Issue::new(
            "not-found",
            format!(
                "{path} refers to {reference}, which is neither in the bundle nor in the record."
            ),
        )
        .at(path))
    }

    /// A person's or organization's name from a Reference: the bundle's resource, else the
    /// reference's display. A reference that leads nowhere and has no display is an error.
    pub fn name(&self, reference: Option<&Value>) -> Result<Option<String>, Issue> {
        let Some(r) = reference else {
            return Ok(None);
        };
        if let Some(target) = text(r, "reference") {
            if let Some(i) = self.entry(target)
                && let Some(res) = self.resources.get(i).copied().flatten()
            {
                return Ok(person_name(res).or_else(|| text(r, "display").map(str::to_owned)));
            }
            if let Some(d) = text(r, "display") {
                return Ok(Some(d.to_owned()));
            }
            return Err(Issue::new(
                "not-found",
                format!("{target} is neither in the bundle nor named (display)."),
            ));
        }
        Ok(text(r, "display").map(str::to_owned))
    }
}

/// "Dr. Given Family", or an organization's name.
fn person_name(r: &Value) -> Option<String> {
    if let Some(n) = text(r, "name") {
        return Some(n.to_owned());
    }
    let name = array(r, "name").first()?;
    let parts: Vec<&str> = array(name, "prefix")
        .iter()
        .chain(array(name, "given"))
        .filter_map(Value::as_str)
        .chain(text(name, "family"))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The patient the bundle is about, found by identifier, else created from the bundle's
/// Patient entry (and linked to its identifiers). `None` when the bundle has no Patient entry and names no known patient.
pub(super) async fn find_patient(
    tx: &mut TenantTx,
    refs: &Refs<'_>,
    list: &[Option<Entry<'_>>],
    now: DateTime<Utc>,
) -> Result<Option<(PatientId, Option<usize>, bool)>, ImportError> {
    let Some(pi) = refs.patient_entry else {
        // Subjects are checked as entries are mapped; look at them all now.
        let mut named: Vec<String> = Vec::new();
        for e in list.iter().flatten() {
            for p in ["subject.reference", "patient.reference"] {
                if let Some(r) = text(e.resource, p)
                    && r.starts_with("Patient?identifier=")
                    && !named.iter().any(|n| n == r)
                {
                    named.push(r.to_owned());
                }
            }
        }
        if named.len() > 1 {
            return Err(refuse(
                "invalid",
                "The bundle's resources name two patients; send one bundle per patient.",
            ));
        }
        let Some(key) = named.first().and_then(|n| identifier_query(n)) else {
            return Ok(None);
        };
        let (system, value) = key
            .strip_prefix("id:")
            .and_then(|k| k.split_once('|'))
            .unwrap_or(("", ""));
        let found = sqlx::query_scalar!(
            "SELECT patient_id FROM patient_identifiers WHERE system = $1 AND value = $2",
            system,
            value
        )
        .fetch_optional(tx.conn())
        .await?;
        return Ok(found.map(|p| (PatientId::from_uuid(p), None, false)));
    };
    let Some(e) = &list[pi] else {
        return Err(refuse("invalid", "The Patient entry could not be read."));
    };
    let p = super::map::patient(e.resource, now).map_err(|i| {
        ImportError::Refused(vec![Issue {
            expression: Some(format!(
                "Bundle.entry[{pi}].resource.{}",
                i.expression.clone().unwrap_or_default()
            )),
            ..i
        }])
    })?;
    let systems: Vec<String> = p.identifiers.iter().map(|(s, _)| s.clone()).collect();
    let values: Vec<String> = p.identifiers.iter().map(|(_, v)| v.clone()).collect();
    let by_identifier = sqlx::query_scalar!(
        "SELECT DISTINCT i.patient_id FROM patient_identifiers i
         JOIN unnest($1::text[], $2::text[]) AS q(system, value)
           ON q.system = i.system AND q.value = i.value",
        &systems,
        &values
    )
    .fetch_all(tx.conn())
    .await?;
    if by_identifier.len() > 1 {
        return Err(refuse(
            "conflict",
            "The patient's identifiers belong to two different patients of this clinic.",
        ));
    }
    // Only an identifier says who the patient is: two people can share a name and a date of
    // birth, and one person's chart must never land in another's portal. A patient the clinic
    // already has from before is linked to the EHR's identifier first (`link_patient`).
    let mut created = false;
    let id = match by_identifier.first() {
        Some(id) => *id,
        None => {
            let id = uuid::Uuid::now_v7();
            sqlx::query!(
                "INSERT INTO patients (id, given_name, family_name, date_of_birth, email,
                                       created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                id,
                p.given,
                p.family,
                p.birth_date,
                p.email,
                now
            )
            .execute(tx.conn())
            .await?;
            created = true;
            id
        }
    };
    sqlx::query!(
        "INSERT INTO patient_identifiers (system, value, patient_id, created_at)
         SELECT q.system, q.value, $3, $4 FROM unnest($1::text[], $2::text[]) AS q(system, value)
         ON CONFLICT (system, value) DO NOTHING",
        &systems,
        &values,
        id,
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(Some((PatientId::from_uuid(id), Some(pi), created)))
}

/// Links a patient the clinic already has to an identifier in another system (an EHR's MRN),
/// so that the EHR's bundles for that identifier land in this patient's record. `false` when
/// the identifier already belongs to a patient (this one or another). Audited.
pub async fn link_patient(
    tx: &mut TenantTx,
    ctx: &crate::audit::AuditContext,
    patient: PatientId,
    system: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let linked = sqlx::query!(
        "INSERT INTO patient_identifiers (system, value, patient_id, created_at)
         SELECT $1, $2, p.id, $4 FROM patients p WHERE p.id = $3
         ON CONFLICT (system, value) DO NOTHING",
        system,
        value,
        patient.as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if linked {
        crate::audit::record(
            tx,
            ctx,
            now,
            crate::audit::AuditEvent::new(
                crate::audit::Action::RecordUpdate,
                "patient_identifiers",
            )
            .patient(patient),
        )
        .await?;
    }
    Ok(linked)
}
