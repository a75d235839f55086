//! Recently read health summaries and trends, kept in the web process's memory with the
//! version of the patient's record they were read at (migration `record_versions`: triggers on
//! every table the chart and the trends read give the patient a new version on every change).
//!
//! A view still audits and still asks the database, in one statement, for the record's
//! version; only when that equals the kept entry's is the entry shown instead of reading the
//! chart again. So a change made anywhere — another web process, a worker, an import, `psql` —
//! shows on the next view; a miss costs one statement more than reading without the cache
//! (the audit-and-version statement, then the read without its own audit row). What depends
//! on the clock
//! is worked out at each view (a held result's name), or the entry is kept only until the
//! clock would change it (a trend until a held result's release time).
//!
//! Entries are keyed by clinic as well as patient, live 5 minutes after their last view (15 at
//! most) and are bounded in total size; `PORTAL_RECORD_CACHE_MB=0` turns the cache off.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::future::Cache;
use portal_tenants::{TenantId, TenantTx};
use uuid::Uuid;

use crate::audit::{Action, AuditContext};
use crate::ids::PatientId;

/// How long an entry is kept after its last view: long enough for a patient moving between
/// the summary and a trend, short enough that health data does not linger in memory.
const IDLE: Duration = Duration::from_secs(300);

/// The longest an entry is kept however often it is viewed: a bound on what a change the
/// triggers cannot see (maintenance with triggers disabled) would leave showing.
const LIVE: Duration = Duration::from_secs(900);

/// Which view of the record an entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum View {
    /// The patient's own health summary.
    Summary,
    /// One test's trend, as the patient (held results left out) or staff see it.
    Trend { loinc: String, as_patient: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    clinic: TenantId,
    patient: PatientId,
    view: View,
}

impl Key {
    pub(crate) fn new(tx: &TenantTx, patient: PatientId, view: View) -> Self {
        Self {
            clinic: tx.tenant_id(),
            patient,
            view,
        }
    }
}

#[derive(Clone)]
pub(crate) enum Value {
    Chart(Arc<super::chart::Parts>),
    Trend(Arc<super::results::trend::Trend>),
}

#[derive(Clone)]
struct Entry {
    version: Uuid,
    /// Shown only before this time (a held result is released then).
    until: Option<DateTime<Utc>>,
    value: Value,
    /// Roughly the bytes it holds.
    weight: u32,
}

/// The web's cache of record views; cheap to clone (one shared cache).
#[derive(Clone)]
pub struct RecordCache(Option<Cache<Key, Entry>>);

impl RecordCache {
    /// A cache of at most `max_mb` megabytes; 0 keeps nothing.
    pub fn new(max_mb: u64) -> Self {
        if max_mb == 0 {
            return Self::off();
        }
        Self(Some(
            Cache::builder()
                .max_capacity(max_mb.saturating_mul(1024 * 1024))
                .weigher(|_k, e: &Entry| e.weight)
                .time_to_idle(IDLE)
                .time_to_live(LIVE)
                .build(),
        ))
    }

    /// No cache: every view reads the record (the workers' and the tests' default).
    pub fn off() -> Self {
        Self(None)
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The kept view, if it was read at `version` and is not past its time.
    pub(crate) async fn get(
        &self,
        key: &Key,
        version: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Option<Value> {
        let (cache, version) = (self.0.as_ref()?, version?);
        let e = cache.get(key).await?;
        (e.version == version && e.until.is_none_or(|u| now < u)).then_some(e.value)
    }

    /// Keeps a view read at `version` (nothing is kept for a record without one yet).
    pub(crate) async fn put(
        &self,
        key: Key,
        version: Option<Uuid>,
        until: Option<DateTime<Utc>>,
        value: Value,
        weight: usize,
    ) {
        if let (Some(cache), Some(version)) = (self.0.as_ref(), version) {
            let weight = u32::try_from(weight).unwrap_or(u32::MAX);
            cache
                .insert(
                    key,
                    Entry {
                        version,
                        until,
                        value,
                        weight,
                    },
                )
                .await;
        }
    }
}

/// Audits a view of one part (`table`) of a patient's record and reads the record's version,
/// in one statement. `None`: the record has no version yet (nothing is cached for it).
pub(crate) async fn viewed_at_version(
    tx: &mut TenantTx,
    ctx: &AuditContext,
    table: &'static str,
    patient: PatientId,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH audited AS (
               INSERT INTO audit_log (at, actor_user_id, actor_role, patient_id, action,
                                      resource_type, client_addr, request_id)
               VALUES ($2, $3, $4, $1, $5, $6, $7, $8))
           SELECT (SELECT version FROM record_versions WHERE patient_id = $1) AS version"#,
        patient.as_uuid(),
        now,
        ctx.actor.map(|(u, _)| u.as_uuid()),
        ctx.actor.map(|(_, r)| r.as_str()),
        Action::RecordView.code(),
        table,
        ctx.client_addr,
        ctx.request_id,
    )
    .fetch_one(tx.conn())
    .await
}
