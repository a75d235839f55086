//! One clinic transaction per request. The route guard looks the session up inside a clinic
//! transaction; rather than committing it for the handler to open another (a second BEGIN
//! and COMMIT, two round trips and a commit record on every page), it hands it on: the
//! handler's first [`begin`] takes it. Whatever the handler leaves untaken — it returned
//! before reaching the database — the guard commits after it; that holds at most the
//! session's last-seen mark.
//!
//! Every tenant transaction a handler opens goes through [`begin`]: a handler that opened
//! its own beside an untaken one would hold two pooled connections at once.

use std::sync::{Arc, Mutex};

use poem::Request;
use portal_tenants::{Tenant, TenantDb, TenantTx};

/// The guard's transaction, waiting in the request for the handler.
#[derive(Clone)]
pub(crate) struct Handed(Arc<Mutex<Option<TenantTx>>>);

impl Handed {
    pub(crate) fn new(tx: TenantTx) -> Self {
        Self(Arc::new(Mutex::new(Some(tx))))
    }

    /// The transaction, if nobody took it yet.
    pub(crate) fn take(&self) -> Option<TenantTx> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The request's clinic transaction: the one the guard handed on, else a new one.
pub(crate) async fn begin(
    req: &Request,
    db: &TenantDb,
    tenant: &Tenant,
) -> Result<TenantTx, sqlx::Error> {
    if let Some(tx) = req.extensions().get::<Handed>().and_then(Handed::take) {
        if tx.tenant_id() == tenant.id() {
            return Ok(tx);
        }
        // The guard opened it for this request's clinic, so this does not happen; if it ever
        // did, the other clinic's transaction is rolled back, never used.
        drop(tx);
    }
    db.begin(tenant).await
}

/// Commits the guard's transaction if nobody took it: for a handler about to call a service
/// that opens transactions of its own (the sign-in steps, which hash passwords between
/// them), so the request never holds two connections.
pub(crate) async fn release(req: &Request) -> Result<(), sqlx::Error> {
    match req.extensions().get::<Handed>().and_then(Handed::take) {
        Some(tx) => tx.commit().await,
        None => Ok(()),
    }
}
