//! Writing an import: reports matched with their values, duplicates and dangling references
//! refused, then one upsert per table (`jsonb_to_recordset`, `ON CONFLICT` on the row's
//! source key). An upsert changes a row only when something differs (`IS DISTINCT FROM`),
//! so importing the same bundle again writes no new version. New recent results queue their
//! notices, following the patient's own release choice.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use portal_tenants::TenantTx;

use super::map::{ReportRow, Row};
use super::{Entry, ImportError, Issue, Refs, identifier_query};
use crate::ids::PatientId;
use crate::jobs::{self, Channel, Job, ResultStage};
use crate::record::results::{Category, preferences};

/// A result imported this recently is news (a late one from the lab included): the patient
/// is told, and their choice to wait applies. Older ones are history and are simply there.
pub const FRESH: Duration = Duration::days(30);

/// Where an entry landed.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub id: uuid::Uuid,
    pub version: i32,
    pub created: bool,
    pub changed: bool,
}

/// Sets each report's values' `report_key`; a lab value no report groups gets a report of its
/// own (returned, with the entry it belongs to). A result reference that leads to no
/// observation of the bundle is an issue on the report.
pub(super) fn link_reports(
    rows: &mut [Option<Row>],
    refs: &Refs<'_>,
    issues: &mut [Vec<Issue>],
) -> Vec<(usize, ReportRow)> {
    let mut owner: HashMap<usize, String> = HashMap::new();
    for (ri, row) in rows.iter().enumerate() {
        let Some(Row::Report(r)) = row else { continue };
        for reference in &r.results {
            match refs.entry(reference) {
                Some(oi) if refs.type_of(oi) == Some("Observation") => {
                    owner.insert(oi, r.source_key.clone());
                }
                _ => issues[ri].push(
                    Issue::new(
                        "not-found",
                        format!("result {reference} is not an Observation in this bundle."),
                    )
                    .at("result"),
                ),
            }
        }
    }
    let mut wrappers = Vec::new();
    for (oi, row) in rows.iter_mut().enumerate() {
        let Some(Row::Observations(obs)) = row else {
            continue;
        };
        // Vital signs stand alone even when a report names them: they are measured at the
        // visit, not results to release (a held report must not hold them, nor they show it).
        if let Some(key) = owner.get(&oi)
            && obs.iter().any(|o| o.category != "vital-signs")
        {
            for o in obs.iter_mut() {
                o.report_key = Some(key.clone());
            }
            continue;
        }
        if obs.iter().all(|o| o.category != "laboratory") {
            continue;
        }
        // A lab value on its own is a result of its own.
        let first = &obs[0];
        let key = format!("wrap:{}", first.source_key);
        wrappers.push((
            oi,
            ReportRow {
                source_key: key.clone(),
                category: "lab",
                code_system: "loinc",
                code: Some(first.loinc.clone()),
                name: first.name.clone(),
                performer: first.performer.clone(),
                collected_at: Some(first.effective_at),
                resulted_at: first.issued.unwrap_or(first.effective_at),
                conclusion: String::new(),
                status: first.status.clone(),
                visible_from: None,
                results: Vec::new(),
            },
        ));
        for o in obs.iter_mut() {
            o.report_key = Some(key.clone());
        }
    }
    wrappers
}

fn keys_of(row: &Row) -> Vec<(&'static str, &str)> {
    match row {
        Row::Named => Vec::new(),
        Row::Condition(r) => vec![("conditions", &r.source_key)],
        Row::Allergy(r) => vec![("allergies", &r.source_key)],
        Row::Medication(r) => vec![("medications", &r.source_key)],
        Row::Immunization(r) => vec![("immunizations", &r.source_key)],
        Row::Encounter(r) => vec![("encounters", &r.source_key)],
        Row::Procedure(r) => vec![("procedures", &r.source_key)],
        Row::CarePlan(r) => vec![("care_plans", &r.source_key)],
        Row::Note(r) => vec![("clinical_notes", &r.source_key)],
        Row::Report(r) => vec![("result_reports", &r.source_key)],
        Row::Observations(rs) => rs
            .iter()
            .map(|r| ("observations", r.source_key.as_str()))
            .collect(),
    }
}

/// In a batch, values whose report was refused are refused with it (they cannot be kept
/// without the report that releases them).
pub(super) fn refuse_orphans(rows: &[Option<Row>], issues: &mut [Vec<Issue>]) {
    let refused: HashSet<&str> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Some(Row::Report(r)) if !issues[i].is_empty() => Some(r.source_key.as_str()),
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        return;
    }
    for (i, row) in rows.iter().enumerate() {
        if let Some(Row::Observations(obs)) = row
            && obs
                .iter()
                .any(|o| o.report_key.as_deref().is_some_and(|k| refused.contains(k)))
        {
            issues[i].push(Issue::new(
                "invalid",
                "The report this value belongs to was refused, so the value is not kept either.",
            ));
        }
    }
}

/// The same resource twice in one bundle cannot be two rows, nor one row twice.
pub(super) fn refuse_duplicates(rows: &[Option<Row>], issues: &mut [Vec<Issue>]) {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(row) = row else { continue };
        for k in keys_of(row) {
            if !seen.insert(k) {
                issues[i].push(Issue::new(
                    "conflict",
                    "The same resource appears twice in this bundle.",
                ));
            }
        }
    }
}

/// Encounters named by identifier must be in the patient's record.
pub(super) async fn check_external(
    tx: &mut TenantTx,
    patient: PatientId,
    external: &[(usize, String)],
    issues: &mut [Vec<Issue>],
) -> Result<(), ImportError> {
    if external.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = external.iter().map(|(_, k)| k.clone()).collect();
    let found: HashSet<String> = sqlx::query_scalar!(
        r#"SELECT source_key AS "k!" FROM encounters
           WHERE patient_id = $1 AND source_key = ANY($2)"#,
        patient.as_uuid(),
        &keys
    )
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .collect();
    for (i, k) in external {
        if !found.contains(k) {
            issues[*i].push(Issue::new(
                "not-found",
                format!(
                    "The encounter {} is neither in the bundle nor in this patient's record.",
                    k.trim_start_matches("id:")
                ),
            ));
        }
    }
    Ok(())
}

/// The table an entry's resource type is kept in.
fn table_of(rtype: &str) -> Option<&'static str> {
    Some(match rtype {
        "Condition" => "conditions",
        "AllergyIntolerance" => "allergies",
        "MedicationRequest" | "MedicationStatement" => "medications",
        "Immunization" => "immunizations",
        "Encounter" => "encounters",
        "Procedure" => "procedures",
        "CarePlan" => "care_plans",
        "DocumentReference" => "clinical_notes",
        "DiagnosticReport" => "result_reports",
        "Observation" => "observations",
        _ => return None,
    })
}

/// Entries whose `ifNoneExist` already matches a row: left as they are.
pub(super) async fn existing_if_none_exist(
    tx: &mut TenantTx,
    patient: PatientId,
    list: &[Option<Entry<'_>>],
    rows: &[Option<Row>],
    issues: &[Vec<Issue>],
) -> Result<HashSet<usize>, ImportError> {
    let mut skip = HashSet::new();
    for (i, e) in list.iter().enumerate() {
        let Some(e) = e else { continue };
        let (Some(q), Some(table)) = (e.if_none_exist, table_of(e.rtype)) else {
            continue;
        };
        if rows[i].is_none() || !issues[i].is_empty() {
            continue;
        }
        let Some(key) = identifier_query(q) else {
            continue;
        };
        // `table` is one of table_of's constants, never input.
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {table} WHERE patient_id = $1 AND source_key = $2)"
        );
        let exists: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(patient.as_uuid())
            .bind(&key)
            .fetch_one(tx.conn())
            .await?;
        if exists {
            skip.insert(i);
        }
    }
    Ok(skip)
}

fn to_json<T: serde::Serialize>(rows: &[&T]) -> serde_json::Value {
    serde_json::to_value(rows).unwrap_or(serde_json::Value::Array(Vec::new()))
}

/// Writes every kept row; returns where each entry landed.
pub(super) async fn write(
    tx: &mut TenantTx,
    patient: PatientId,
    rows: &[Option<Row>],
    wrappers: &[(usize, ReportRow)],
    now: DateTime<Utc>,
) -> Result<HashMap<usize, Placed>, ImportError> {
    let p = patient.as_uuid();
    let mut by_key: HashMap<(&'static str, String), usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(row) = row {
            for (t, k) in keys_of(row) {
                by_key.entry((t, k.to_owned())).or_insert(i);
            }
        }
    }
    macro_rules! collect {
        ($variant:ident) => {
            rows.iter()
                .filter_map(|r| match r {
                    Some(Row::$variant(x)) => Some(x),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
    }
    let mut changed: HashMap<(&'static str, String), bool> = HashMap::new();
    let mut note = |table: &'static str, done: Vec<(String, bool)>| {
        for (k, created) in done {
            changed.insert((table, k), created);
        }
    };

    let encounters = collect!(Encounter);
    if !encounters.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO encounters AS t (id, patient_id, starts_at, ends_at, kind, provider,
                                            diagnoses, summary, status, source_key, updated_at,
                                            created_at)
               SELECT gen_random_uuid(), $2, x.starts_at, x.ends_at, x.kind, x.provider,
                      x.diagnoses, x.summary, x.status, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, starts_at timestamptz,
                    ends_at timestamptz, kind text, provider text, diagnoses text, summary text,
                    status text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
                   kind = EXCLUDED.kind, provider = EXCLUDED.provider,
                   diagnoses = EXCLUDED.diagnoses, summary = EXCLUDED.summary,
                   status = EXCLUDED.status, updated_by = NULL,
                   updated_at = EXCLUDED.updated_at, version = t.version + 1
               WHERE (t.starts_at, t.ends_at, t.kind, t.provider, t.diagnoses, t.summary, t.status)
                     IS DISTINCT FROM (EXCLUDED.starts_at, EXCLUDED.ends_at, EXCLUDED.kind,
                     EXCLUDED.provider, EXCLUDED.diagnoses, EXCLUDED.summary, EXCLUDED.status)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&encounters),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "encounters",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let conditions = collect!(Condition);
    if !conditions.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO conditions AS t (id, patient_id, code_system, code, text, onset,
                                            abatement, clinical_status, verification, source_key,
                                            updated_at, created_at)
               SELECT gen_random_uuid(), $2, x.code_system, x.code, x.text, x.onset, x.abatement,
                      x.clinical_status, x.verification, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, code_system text, code text,
                    text text, onset date, abatement date, clinical_status text,
                    verification text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   code_system = EXCLUDED.code_system, code = EXCLUDED.code,
                   text = EXCLUDED.text, onset = EXCLUDED.onset,
                   abatement = EXCLUDED.abatement, clinical_status = EXCLUDED.clinical_status,
                   verification = EXCLUDED.verification, updated_by = NULL,
                   updated_at = EXCLUDED.updated_at, version = t.version + 1
               WHERE (t.code_system, t.code, t.text, t.onset, t.abatement, t.clinical_status,
                      t.verification)
                     IS DISTINCT FROM (EXCLUDED.code_system, EXCLUDED.code, EXCLUDED.text,
                     EXCLUDED.onset, EXCLUDED.abatement, EXCLUDED.clinical_status,
                     EXCLUDED.verification)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&conditions),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "conditions",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let allergies = collect!(Allergy);
    if !allergies.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO allergies AS t (id, patient_id, substance_system, substance_code,
                                           substance, reaction, severity, clinical_status,
                                           verification, source_key, updated_at, created_at)
               SELECT gen_random_uuid(), $2, x.substance_system, x.substance_code, x.substance,
                      x.reaction, x.severity, x.clinical_status, x.verification, x.source_key,
                      $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, substance_system text,
                    substance_code text, substance text, reaction text, severity text,
                    clinical_status text, verification text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   substance_system = EXCLUDED.substance_system,
                   substance_code = EXCLUDED.substance_code, substance = EXCLUDED.substance,
                   reaction = EXCLUDED.reaction, severity = EXCLUDED.severity,
                   clinical_status = EXCLUDED.clinical_status,
                   verification = EXCLUDED.verification, updated_by = NULL,
                   updated_at = EXCLUDED.updated_at, version = t.version + 1
               WHERE (t.substance_system, t.substance_code, t.substance, t.reaction, t.severity,
                      t.clinical_status, t.verification)
                     IS DISTINCT FROM (EXCLUDED.substance_system, EXCLUDED.substance_code,
                     EXCLUDED.substance, EXCLUDED.reaction, EXCLUDED.severity,
                     EXCLUDED.clinical_status, EXCLUDED.verification)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&allergies),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "allergies",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let medications = collect!(Medication);
    if !medications.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO medications AS t (id, patient_id, code_system, code, name, dose, route,
                                             frequency, instructions, prescriber, starts_on,
                                             ends_on, status, quantity, refills_left, kind,
                                             source_key, updated_at, created_at)
               SELECT gen_random_uuid(), $2, x.code_system, x.code, x.name, x.dose, x.route,
                      x.frequency, x.instructions, x.prescriber, x.starts_on, x.ends_on, x.status,
                      x.quantity, x.refills_left, x.kind, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, code_system text, code text,
                    name text, dose text, route text, frequency text, instructions text,
                    prescriber text, starts_on date, ends_on date, status text, quantity text,
                    refills_left integer, kind text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   code_system = EXCLUDED.code_system, code = EXCLUDED.code,
                   name = EXCLUDED.name, dose = EXCLUDED.dose, route = EXCLUDED.route,
                   frequency = EXCLUDED.frequency, instructions = EXCLUDED.instructions,
                   prescriber = EXCLUDED.prescriber, starts_on = EXCLUDED.starts_on,
                   ends_on = EXCLUDED.ends_on, status = EXCLUDED.status,
                   quantity = EXCLUDED.quantity, refills_left = EXCLUDED.refills_left,
                   kind = EXCLUDED.kind, updated_by = NULL,
                   updated_at = EXCLUDED.updated_at, version = t.version + 1
               WHERE (t.code_system, t.code, t.name, t.dose, t.route, t.frequency,
                      t.instructions, t.prescriber, t.starts_on, t.ends_on, t.status,
                      t.quantity, t.refills_left, t.kind)
                     IS DISTINCT FROM (EXCLUDED.code_system, EXCLUDED.code, EXCLUDED.name,
                     EXCLUDED.dose, EXCLUDED.route, EXCLUDED.frequency, EXCLUDED.instructions,
                     EXCLUDED.prescriber, EXCLUDED.starts_on, EXCLUDED.ends_on,
                     EXCLUDED.status, EXCLUDED.quantity, EXCLUDED.refills_left, EXCLUDED.kind)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&medications),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "medications",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let immunizations = collect!(Immunization);
    if !immunizations.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO immunizations AS t (id, patient_id, cvx, vaccine, given_on,
                                               dose_number, lot, site, performer, status,
                                               source_key, updated_at, created_at)
               SELECT gen_random_uuid(), $2, x.cvx, x.vaccine, x.given_on, x.dose_number, x.lot,
                      x.site, x.performer, x.status, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, cvx text, vaccine text,
                    given_on date, dose_number integer, lot text, site text, performer text,
                    status text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   cvx = EXCLUDED.cvx, vaccine = EXCLUDED.vaccine,
                   given_on = EXCLUDED.given_on, dose_number = EXCLUDED.dose_number,
                   lot = EXCLUDED.lot, site = EXCLUDED.site, performer = EXCLUDED.performer,
                   status = EXCLUDED.status, updated_by = NULL,
                   updated_at = EXCLUDED.updated_at, version = t.version + 1
               WHERE (t.cvx, t.vaccine, t.given_on, t.dose_number, t.lot, t.site, t.performer,
                      t.status)
                     IS DISTINCT FROM (EXCLUDED.cvx, EXCLUDED.vaccine, EXCLUDED.given_on,
                     EXCLUDED.dose_number, EXCLUDED.lot, EXCLUDED.site, EXCLUDED.performer,
                     EXCLUDED.status)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&immunizations),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "immunizations",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let procedures = collect!(Procedure);
    if !procedures.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO procedures AS t (id, patient_id, code_system, code, text,
                                            performed_on, status, source_key, updated_at,
                                            created_at)
               SELECT gen_random_uuid(), $2, x.code_system, x.code, x.text, x.performed_on,
                      x.status, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, code_system text, code text,
                    text text, performed_on date, status text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   code_system = EXCLUDED.code_system, code = EXCLUDED.code,
                   text = EXCLUDED.text, performed_on = EXCLUDED.performed_on,
                   status = EXCLUDED.status, updated_by = NULL,
                   updated_at = EXCLUDED.updated_at, version = t.version + 1
               WHERE (t.code_system, t.code, t.text, t.performed_on, t.status)
                     IS DISTINCT FROM (EXCLUDED.code_system, EXCLUDED.code, EXCLUDED.text,
                     EXCLUDED.performed_on, EXCLUDED.status)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&procedures),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "procedures",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let plans = collect!(CarePlan);
    if !plans.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO care_plans AS t (id, patient_id, title, description, goals, starts_on,
                                            ends_on, status, source_key, updated_at, created_at)
               SELECT gen_random_uuid(), $2, x.title, x.description, x.goals, x.starts_on,
                      x.ends_on, x.status, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, title text, description text,
                    goals text, starts_on date, ends_on date, status text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   title = EXCLUDED.title, description = EXCLUDED.description,
                   goals = EXCLUDED.goals, starts_on = EXCLUDED.starts_on,
                   ends_on = EXCLUDED.ends_on, status = EXCLUDED.status, updated_by = NULL,
                   updated_at = EXCLUDED.updated_at, version = t.version + 1
               WHERE (t.title, t.description, t.goals, t.starts_on, t.ends_on, t.status)
                     IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.description, EXCLUDED.goals,
                     EXCLUDED.starts_on, EXCLUDED.ends_on, EXCLUDED.status)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&plans),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "care_plans",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let notes = collect!(Note);
    if !notes.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO clinical_notes AS t (id, patient_id, encounter_id, title, body, author,
                                                signed_at, released, confidential, status,
                                                source_key, updated_at, created_at)
               SELECT gen_random_uuid(), $2,
                      (SELECT e.id FROM encounters e
                       WHERE e.patient_id = $2 AND e.source_key = x.encounter_key),
                      x.title, x.body, x.author, x.signed_at, x.released, x.confidential,
                      x.status, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, encounter_key text, title text,
                    body text, author text, signed_at timestamptz, released boolean,
                    confidential boolean, status text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   encounter_id = EXCLUDED.encounter_id, title = EXCLUDED.title,
                   body = EXCLUDED.body, author = EXCLUDED.author,
                   signed_at = EXCLUDED.signed_at, released = EXCLUDED.released,
                   confidential = EXCLUDED.confidential, status = EXCLUDED.status,
                   updated_by = NULL, updated_at = EXCLUDED.updated_at,
                   version = t.version + 1
               WHERE (t.encounter_id, t.title, t.body, t.author, t.signed_at, t.released,
                      t.confidential, t.status)
                     IS DISTINCT FROM (EXCLUDED.encounter_id, EXCLUDED.title, EXCLUDED.body,
                     EXCLUDED.author, EXCLUDED.signed_at, EXCLUDED.released,
                     EXCLUDED.confidential, EXCLUDED.status)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&notes),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "clinical_notes",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    // Reports (and wrappers for lone lab values), with when the patient sees each.
    let mut reports: Vec<ReportRow> = collect!(Report).into_iter().cloned().collect();
    reports.extend(
        wrappers
            .iter()
            .filter(|(owner, _)| rows[*owner].is_some())
            .map(|(_, r)| r.clone()),
    );
    let mut fresh: HashMap<String, (Category, bool)> = HashMap::new();
    if !reports.is_empty() {
        let now_us = chrono::SubsecRound::trunc_subsecs(now, 6);
        let mut waits = HashMap::new();
        for c in Category::ALL {
            waits.insert(c.as_str(), preferences::wait_for(tx, patient, c).await?);
        }
        for r in reports.iter_mut() {
            let is_fresh = r.resulted_at > now - FRESH;
            let wait = if is_fresh {
                waits.get(r.category).copied().flatten()
            } else {
                None
            };
            r.visible_from = Some(now_us + Duration::days(wait.map_or(0, i64::from)));
            if is_fresh {
                let c = Category::parse(r.category).unwrap_or(Category::Other);
                fresh.insert(r.source_key.clone(), (c, wait.is_some()));
            }
        }
        let refs: Vec<&ReportRow> = reports.iter().collect();
        let done = sqlx::query!(
            r#"INSERT INTO result_reports AS t (id, patient_id, category, code_system, code, name,
                                                performer, collected_at, resulted_at, conclusion,
                                                status, visible_from, source_key, updated_at,
                                                created_at)
               SELECT gen_random_uuid(), $2, x.category, x.code_system, x.code, x.name,
                      x.performer, x.collected_at, x.resulted_at, x.conclusion, x.status,
                      x.visible_from, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, category text, code_system text,
                    code text, name text, performer text, collected_at timestamptz,
                    resulted_at timestamptz, conclusion text, status text,
                    visible_from timestamptz)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   category = EXCLUDED.category, code_system = EXCLUDED.code_system,
                   code = EXCLUDED.code, name = EXCLUDED.name, performer = EXCLUDED.performer,
                   collected_at = EXCLUDED.collected_at, resulted_at = EXCLUDED.resulted_at,
                   conclusion = EXCLUDED.conclusion, status = EXCLUDED.status,
                   updated_by = NULL, updated_at = EXCLUDED.updated_at,
                   version = t.version + 1
               WHERE (t.category, t.code_system, t.code, t.name, t.performer, t.collected_at,
                      t.resulted_at, t.conclusion, t.status)
                     IS DISTINCT FROM (EXCLUDED.category, EXCLUDED.code_system, EXCLUDED.code,
                     EXCLUDED.name, EXCLUDED.performer, EXCLUDED.collected_at,
                     EXCLUDED.resulted_at, EXCLUDED.conclusion, EXCLUDED.status)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!", t.id,
                         t.visible_from"#,
            to_json(&refs),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        let mut queued = Vec::new();
        for r in &done {
            let Some((_, held)) = fresh.get(&r.k).filter(|_| r.created) else {
                continue;
            };
            for channel in [Channel::Email, Channel::Sms] {
                let stage = if *held {
                    ResultStage::Waiting
                } else {
                    ResultStage::Ready
                };
                queued.push((
                    Job::ResultNotice {
                        report_id: r.id,
                        channel,
                        visible_from: r.visible_from,
                        stage,
                    },
                    None,
                ));
                if *held {
                    queued.push((
                        Job::ResultNotice {
                            report_id: r.id,
                            channel,
                            visible_from: r.visible_from,
                            stage: ResultStage::Released,
                        },
                        Some(r.visible_from),
                    ));
                }
            }
        }
        if !queued.is_empty() {
            jobs::enqueue_many(tx, &queued)
                .await
                .map_err(crate::record::RecordError::from)?;
        }
        note(
            "result_reports",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    let observations: Vec<_> = rows
        .iter()
        .filter_map(|r| match r {
            Some(Row::Observations(x)) => Some(x.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    if !observations.is_empty() {
        let done = sqlx::query!(
            r#"INSERT INTO observations AS t (id, patient_id, report_id, category, loinc, name,
                                              value_num, value_text, unit, range_low, range_high,
                                              range_text, interpretation, effective_at, status,
                                              source_key, updated_at, created_at)
               SELECT gen_random_uuid(), $2,
                      (SELECT r.id FROM result_reports r
                       WHERE r.patient_id = $2 AND r.source_key = x.report_key),
                      x.category, x.loinc, x.name, x.value_num, x.value_text, x.unit,
                      x.range_low, x.range_high, x.range_text, x.interpretation, x.effective_at,
                      x.status, x.source_key, $3, $3
               FROM jsonb_to_recordset($1) AS x(source_key text, report_key text, category text,
                    loinc text, name text, value_num float8, value_text text, unit text,
                    range_low float8, range_high float8, range_text text, interpretation text,
                    effective_at timestamptz, status text)
               ON CONFLICT (patient_id, source_key) WHERE source_key IS NOT NULL DO UPDATE SET
                   report_id = EXCLUDED.report_id, category = EXCLUDED.category,
                   loinc = EXCLUDED.loinc, name = EXCLUDED.name,
                   value_num = EXCLUDED.value_num, value_text = EXCLUDED.value_text,
                   unit = EXCLUDED.unit, range_low = EXCLUDED.range_low,
                   range_high = EXCLUDED.range_high, range_text = EXCLUDED.range_text,
                   interpretation = EXCLUDED.interpretation,
                   effective_at = EXCLUDED.effective_at, status = EXCLUDED.status,
                   updated_by = NULL, updated_at = EXCLUDED.updated_at,
                   version = t.version + 1
               WHERE (t.report_id, t.category, t.loinc, t.name, t.value_num, t.value_text, t.unit,
                      t.range_low, t.range_high, t.range_text, t.interpretation,
                      t.effective_at, t.status)
                     IS DISTINCT FROM (EXCLUDED.report_id, EXCLUDED.category, EXCLUDED.loinc,
                     EXCLUDED.name, EXCLUDED.value_num, EXCLUDED.value_text, EXCLUDED.unit,
                     EXCLUDED.range_low, EXCLUDED.range_high, EXCLUDED.range_text,
                     EXCLUDED.interpretation, EXCLUDED.effective_at, EXCLUDED.status)
               RETURNING t.source_key AS "k!", (t.xmax = 0) AS "created!""#,
            to_json(&observations),
            p,
            now
        )
        .fetch_all(tx.conn())
        .await?;
        note(
            "observations",
            done.into_iter().map(|r| (r.k, r.created)).collect(),
        );
    }

    // Where every entry landed (changed or not).
    let mut placed: HashMap<usize, Placed> = HashMap::new();
    let mut per_table: HashMap<&'static str, Vec<String>> = HashMap::new();
    for (t, k) in by_key.keys() {
        per_table.entry(t).or_default().push(k.clone());
    }
    for (table, keys) in per_table {
        // `table` is one of keys_of's constants, never input.
        let sql = format!(
            "SELECT source_key, id, version FROM {table}
             WHERE patient_id = $1 AND source_key = ANY($2)"
        );
        let found: Vec<(String, uuid::Uuid, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(p)
            .bind(&keys)
            .fetch_all(tx.conn())
            .await?;
        for (k, id, version) in found {
            let Some(i) = by_key.get(&(table, k.clone())) else {
                continue;
            };
            let change = changed.get(&(table, k));
            let entry = placed.entry(*i).or_insert(Placed {
                id,
                version,
                created: false,
                changed: false,
            });
            if let Some(created) = change {
                entry.changed = true;
                entry.created |= *created;
            }
        }
    }
    Ok(placed)
}
