use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::{Tenant, TenantId};

/// The only way to reach tenant tables: every unit of work is one transaction that first takes
/// on the clinic's NOLOGIN role and schema, both transaction-local, so nothing survives into
/// the pooled connection's next use. The pool's own login role can read no tenant table, so a
/// query that skipped this fails closed.
#[derive(Clone)]
pub struct TenantDb {
    pool: PgPool,
}

impl TenantDb {
    /// `pool` must log in as the unprivileged application role (see `ensure_app_role`).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Opens a transaction acting as `tenant`.
    ///
    /// The registry's names are plain lower-case identifiers (`portal_ten_…`), so BEGIN and the
    /// scope go to the server as one simple query: one round trip instead of two on every unit
    /// of work. A name of any other shape takes the two-step path with bound parameters.
    pub async fn begin(&self, tenant: &Tenant) -> Result<TenantTx, sqlx::Error> {
        self.begin_planned(tenant, false).await
    }

    /// Like [`TenantDb::begin`], for a unit of work whose statements have one good plan
    /// whatever their values (a patient's chart: every part is "this patient's newest few").
    /// PostgreSQL otherwise keeps planning such a statement afresh on every call when its
    /// generic plan's estimate looks dearer than the custom ones, and for a large statement
    /// planning costs more than running it. Set in the same round trip as the scope.
    pub async fn begin_generic_plans(&self, tenant: &Tenant) -> Result<TenantTx, sqlx::Error> {
        self.begin_planned(tenant, true).await
    }

    /// Like [`TenantDb::begin`], also holding the clinic's advisory lock `name` shared until
    /// the transaction ends (the key `hashtextextended('<name> <schema>', 0)`, as a statement
    /// in the clinic's scope would compute it from `current_schema()`), taken in the same round
    /// trip as the scope, and before any statement of the transaction takes its snapshot. For
    /// a hot path that must not overlap an exclusive holder's last look (the Stripe webhook).
    ///
    /// The lock may wait, and a caller may give up while it does (a client hanging up): sqlx
    /// 0.9.1 counts the transaction before the `BEGIN` round trip, so dropping it then queues
    /// the `ROLLBACK` that releases the lock before the pool lends the connection again (sqlx
    /// 0.9.0 did not; `tests/tests/isolation.rs` holds it to that).
    pub async fn begin_holding_shared(
        &self,
        tenant: &Tenant,
        name: &'static str,
    ) -> Result<TenantTx, sqlx::Error> {
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(sqlx::Error::Protocol(format!("lock name {name:?}")));
        }
        self.begin_with(tenant, false, Some(name)).await
    }

    async fn begin_planned(&self, tenant: &Tenant, generic: bool) -> Result<TenantTx, sqlx::Error> {
        self.begin_with(tenant, generic, None).await
    }

    async fn begin_with(
        &self,
        tenant: &Tenant,
        generic: bool,
        lock: Option<&'static str>,
    ) -> Result<TenantTx, sqlx::Error> {
        let plans = if generic {
            ", set_config('plan_cache_mode', 'force_generic_plan', true)"
        } else {
            ""
        };
        if plain_identifier(&tenant.role_name) && plain_identifier(&tenant.schema_name) {
            // The lock in a statement of its own, after the scope's: it is held before the
            // transaction's first statement of its caller begins.
            let locked = lock
                .map(|name| {
                    format!(
                        "; SELECT pg_advisory_xact_lock_shared(hashtextextended('{name} {}', 0))",
                        tenant.schema_name
                    )
                })
                .unwrap_or_default();
            let sql = format!(
                "BEGIN; SELECT set_config('role', '{}', true), set_config('search_path', '{}', true){plans}{locked}",
                tenant.role_name, tenant.schema_name
            );
            let tx = self.pool.begin_with(sqlx::AssertSqlSafe(sql)).await?;
            return Ok(TenantTx {
                tx,
                tenant: tenant.id,
            });
        }
        let mut tx = TenantTx::scope(
            self.pool.begin().await?,
            tenant.id,
            &tenant.role_name,
            &tenant.schema_name,
        )
        .await?;
        if generic {
            sqlx::query("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)")
                .execute(tx.conn())
                .await?;
        }
        if let Some(name) = lock {
            sqlx::query(
                "SELECT pg_advisory_xact_lock_shared(hashtextextended($1 || ' ' || current_schema(), 0))",
            )
            .bind(name)
            .execute(tx.conn())
            .await?;
        }
        Ok(tx)
    }
}

/// Only `[a-z0-9_]`, not empty, at most 63 bytes: safe inside a single-quoted literal.
fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A transaction acting as one clinic. Dropping it without [`TenantTx::commit`] rolls back.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl TenantTx {
    /// Turns an open transaction into one acting as the clinic.
    pub(crate) async fn scope(
        mut tx: Transaction<'static, Postgres>,
        tenant: TenantId,
        role: &str,
        schema: &str,
    ) -> Result<Self, sqlx::Error> {
        // `set_config(..., true)` is `SET LOCAL` with bind parameters: the role and schema names
        // are values, never spliced into SQL. Setting `role` checks membership like SET ROLE.
        sqlx::query("SELECT set_config('role', $1, true), set_config('search_path', $2, true)")
            .bind(role)
            .bind(schema)
            .execute(&mut *tx)
            .await?;
        Ok(Self { tx, tenant })
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// The connection to run queries on (tenant tables unqualified).
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::plain_identifier;

    #[test]
    fn only_plain_names_go_into_the_one_step_begin() {
        assert!(plain_identifier("portal_ten_0a1b2c"));
        assert!(!plain_identifier(""));
        assert!(!plain_identifier("x'; DROP TABLE y; --"));
        assert!(!plain_identifier("Upper"));
        assert!(!plain_identifier("with-dash"));
        assert!(!plain_identifier(&"a".repeat(64)));
    }
}
