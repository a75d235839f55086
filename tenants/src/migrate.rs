use futures::{StreamExt, TryStreamExt, stream};
use sqlx::migrate::Migrator as SqlxMigrator;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use crate::sql::ident;
use crate::{TenantError, TenantId};

/// Migrations applied to every clinic's schema, embedded at build time.
pub(crate) static TENANT_MIGRATIONS: SqlxMigrator = sqlx::migrate!("../migrations/tenant");

/// What a tenant migration run did.
#[derive(Debug, Default, serde::Serialize)]
pub struct MigrationReport {
    /// Clinics already at the latest version (their schemas were not opened).
    pub up_to_date: usize,
    /// Clinics migrated in this run.
    pub migrated: Vec<String>,
    /// Clinics whose migration failed (rolled back; the next run retries them).
    pub failed: Vec<(String, String)>,
}

/// Applies control-plane migrations, then tenant migrations to every clinic.
pub struct Migrator {
    admin: PgPool,
}

impl Migrator {
    pub fn new(admin: PgPool) -> Self {
        Self { admin }
    }

    /// Control-plane migrations, recorded in `control._sqlx_migrations`; concurrent runs wait
    /// on sqlx's advisory lock.
    pub async fn run_control(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let mut control = sqlx::migrate!("../migrations/control");
        control.create_schema("control");
        control.dangerous_set_table_name("control._sqlx_migrations");
        control.run(&self.admin).await
    }

    /// Brings every clinic's schema to the latest version, `parallelism` schemas at a time.
    /// One indexed query finds the clinics behind; when none are, no schema is opened. Each
    /// clinic migrates in its own transaction under a lock on its registry row, so two runs
    /// never migrate one schema at once and a crash leaves each schema either done or untouched.
    pub async fn run_tenants(&self, parallelism: usize) -> Result<MigrationReport, TenantError> {
        let latest = TENANT_MIGRATIONS
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let total: i64 = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM control.tenants"#)
            .fetch_one(&self.admin)
            .await?;
        let behind = sqlx::query!(
            "SELECT id, slug FROM control.tenants WHERE schema_version < $1 ORDER BY slug",
            latest
        )
        .fetch_all(&self.admin)
        .await?;
        let mut report = MigrationReport {
            up_to_date: usize::try_from(total)
                .unwrap_or(0)
                .saturating_sub(behind.len()),
            ..Default::default()
        };
        let results: Vec<(String, Result<bool, TenantError>)> = stream::iter(behind)
            .map(|t| async move { (t.slug, self.migrate_one(TenantId::from_uuid(t.id)).await) })
            .buffer_unordered(parallelism.max(1))
            .collect()
            .await;
        for (slug, result) in results {
            match result {
                Ok(true) => report.migrated.push(slug),
                Ok(false) => report.up_to_date += 1,
                Err(e) => {
                    tracing::error!(%slug, error = ?e, "tenant migration failed");
                    report.failed.push((slug, error_chain(&e)));
                }
            }
        }
        report.migrated.sort();
        Ok(report)
    }

    /// Returns whether anything was applied (another run may have got there first).
    async fn migrate_one(&self, id: TenantId) -> Result<bool, TenantError> {
        let mut tx = self.admin.begin().await?;
        let row = sqlx::query!(
            "SELECT schema_name, role_name, schema_version FROM control.tenants WHERE id = $1 FOR UPDATE",
            id.as_uuid()
        )
        .fetch_one(&mut *tx)
        .await?;
        let applied = apply_pending(
            &mut tx,
            id,
            &row.schema_name,
            &row.role_name,
            row.schema_version,
        )
        .await?;
        tx.commit().await?;
        Ok(applied)
    }
}

/// Applies the tenant migrations above `current` inside the caller's transaction, grants the
/// clinic's role use of the resulting tables, and records the new version.
pub(crate) async fn apply_pending(
    conn: &mut PgConnection,
    id: TenantId,
    schema: &str,
    role: &str,
    current: i64,
) -> Result<bool, TenantError> {
    let pending: Vec<_> = TENANT_MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.migration_type.is_up_migration())
        .collect();
    let Some(latest) = pending.iter().map(|m| m.version).max() else {
        return Ok(false);
    };
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(schema)
        .execute(&mut *conn)
        .await?;
    for m in &pending {
        sqlx::raw_sql(m.sql.clone())
            .execute(&mut *conn)
            .await
            .map_err(|source| TenantError::Migration {
                schema: schema.to_owned(),
                version: m.version,
                source,
            })?;
        sqlx::query!(
            "INSERT INTO control.tenant_migrations (tenant_id, version, checksum) VALUES ($1, $2, $3)",
            id.as_uuid(),
            m.version,
            m.checksum.as_ref()
        )
        .execute(&mut *conn)
        .await?;
    }
    // Table-level protections (such as an append-only audit table) are enforced by triggers in
    // the migrations themselves, so the clinic's role gets plain DML on everything in its schema.
    let (schema_q, role_q) = (ident(schema)?, ident(role)?);
    sqlx::raw_sql(AssertSqlSafe(format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_q} TO {role_q};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_q} TO {role_q};"
    )))
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE control.tenants SET schema_version = $2 WHERE id = $1",
        id.as_uuid(),
        latest
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// What a clinic's role may do outside its schema: queue jobs in the outbox, record a change
/// of its own branding (stamped and applied by triggers to its own row) and record its own
/// Stripe account (stamped the same way), nothing else.
pub(crate) fn clinic_control_grants(role_q: &str) -> String {
    format!(
        "GRANT USAGE ON SCHEMA control TO {role_q};
         GRANT INSERT ON control.outbox TO {role_q};
         GRANT INSERT ON control.branding_changes TO {role_q};
         GRANT INSERT ON control.stripe_accounts TO {role_q};"
    )
}

/// Creates the application's login role if it is missing and gives it exactly what it needs:
/// read the clinic registry, and membership (not privileges: it is NOINHERIT) of every
/// clinic's role. Safe to run on every `portal migrate`.
pub async fn ensure_app_role(admin: &PgPool, app_role: &str) -> Result<(), TenantError> {
    let app_q = ident(app_role)?;
    let exists: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS "e!""#,
        app_role
    )
    .fetch_one(admin)
    .await?;
    if !exists {
        let created = sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE ROLE {app_q} LOGIN NOINHERIT"
        )))
        .execute(admin)
        .await;
        // Another process may have created it in between; that is fine.
        if let Err(e) = created {
            let duplicate = matches!(&e, sqlx::Error::Database(db) if db.code().as_deref() == Some("42710") || db.code().as_deref() == Some("23505"));
            if !duplicate {
                return Err(e.into());
            }
        }
    }
    let db: String = sqlx::query_scalar!(r#"SELECT current_database() AS "d!""#)
        .fetch_one(admin)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "GRANT CONNECT ON DATABASE \"{}\" TO {app_q};
         GRANT USAGE ON SCHEMA control TO {app_q};
         GRANT SELECT ON control.tenants, control.tenant_domains TO {app_q};
         GRANT SELECT, UPDATE, DELETE ON control.outbox TO {app_q};
         GRANT SELECT, INSERT, UPDATE ON control.job_deliveries TO {app_q};
         GRANT SELECT, INSERT ON control.signup_requests TO {app_q};
         GRANT SELECT ON control.platform_secrets TO {app_q};
         GRANT SELECT ON control.stripe_accounts TO {app_q};
         GRANT SELECT, INSERT, DELETE ON control.sms_opt_outs TO {app_q};
         GRANT SELECT, INSERT, UPDATE ON control.sms_last_sender, control.sms_daily TO {app_q};",
        db.replace('"', "\"\"")
    )))
    .execute(admin)
    .await?;
    let missing: Vec<String> = sqlx::query_scalar!(
        "SELECT role_name FROM control.tenants WHERE NOT pg_has_role($1, role_name, 'MEMBER')",
        app_role
    )
    .fetch(admin)
    .try_collect()
    .await?;
    for role in missing {
        sqlx::raw_sql(AssertSqlSafe(format!("GRANT {} TO {app_q}", ident(&role)?)))
            .execute(admin)
            .await?;
    }
    // Clinics provisioned before the outbox existed get their one privilege outside their
    // schema here, one at a time: grants on a shared table from parallel migrations would
    // race on its ACL ("tuple concurrently updated").
    let without_outbox: Vec<String> = sqlx::query_scalar!(
        r#"SELECT role_name AS "role_name!" FROM control.tenants
           WHERE NOT has_table_privilege(role_name, 'control.outbox', 'INSERT')
              OR NOT has_table_privilege(role_name, 'control.branding_changes', 'INSERT')
              OR NOT has_table_privilege(role_name, 'control.stripe_accounts', 'INSERT')"#
    )
    .fetch(admin)
    .try_collect()
    .await?;
    for role in without_outbox {
        sqlx::raw_sql(AssertSqlSafe(clinic_control_grants(&ident(&role)?)))
            .execute(admin)
            .await?;
    }
    Ok(())
}

/// Checks that the pool's login role cannot read tenant data on its own: not a superuser, no
/// RLS bypass, and NOINHERIT (so membership of clinic roles grants nothing until SET ROLE).
pub async fn verify_app_role(pool: &PgPool) -> Result<(), String> {
    let row = sqlx::query!(
        r#"SELECT rolname AS "name!", rolsuper AS "superuser!", rolinherit AS "inherit!",
                  rolbypassrls AS "bypassrls!"
           FROM pg_roles WHERE rolname = current_user"#
    )
    .fetch_one(pool)
    .await
    .map_err(|e| format!("could not inspect the database role: {e}"))?;
    if row.superuser || row.inherit || row.bypassrls {
        return Err(format!(
            "PORTAL_DATABASE_URL logs in as role '{}', which {}; tenant isolation needs an \
             unprivileged NOINHERIT login role (run `portal migrate`, which creates one, and \
             point PORTAL_DATABASE_URL at it)",
            row.name,
            if row.superuser {
                "is a superuser"
            } else if row.bypassrls {
                "bypasses row security"
            } else {
                "inherits its roles' privileges"
            }
        ));
    }
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
