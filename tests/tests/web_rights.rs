//! The public web process holds no owner credentials (issue 9.7): it starts without them, its
//! login role and every clinic role it can become are refused any change to the audit trail
//! or the registry, and a clinic changes only its own branding.

use std::sync::Arc;

use portal_domain::clock::ManualClock;
use portal_tests::TestDb;

/// Runs `sql` as the application's login role, optionally as a clinic's role inside a
/// transaction, and says whether PostgreSQL refused it.
async fn refused(pool: &sqlx::PgPool, as_role: Option<&str>, sql: &str) -> bool {
    let mut tx = pool.begin().await.unwrap();
    if let Some(role) = as_role {
        sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE \"{role}\"")))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *tx)
        .await;
    tx.rollback().await.unwrap();
    result.is_err()
}

#[tokio::test]
async fn the_webs_roles_cannot_touch_the_audit_trail_or_the_registry() {
    let db = TestDb::create().await;
    let alpha = db.create_tenant("alpha").await;
    let beta = db.create_tenant("beta").await;
    let web = db.app_pool(2).await;
    let schema = alpha.schema_name();
    // A row to protect (a trigger on rows does nothing to an empty table).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".audit_log (at, action, resource_type) VALUES (now(), 'signin', 'session')"
    )))
    .execute(&db.admin)
    .await
    .unwrap();
    let attempts = [
        format!("ALTER TABLE \"{schema}\".audit_log DISABLE TRIGGER ALL"),
        format!("DROP TRIGGER audit_log_no_update ON \"{schema}\".audit_log"),
        format!("ALTER TABLE \"{schema}\".audit_log RENAME TO old_log"),
        format!("DROP TABLE \"{schema}\".audit_log"),
        format!("TRUNCATE \"{schema}\".audit_log"),
        format!("DELETE FROM \"{schema}\".audit_log"),
        format!("UPDATE \"{schema}\".audit_log SET action = 'x'"),
        "UPDATE control.tenants SET display_name = 'Hijacked'".to_owned(),
        "UPDATE control.tenants SET status = 'suspended'".to_owned(),
        "DROP FUNCTION control.branding_apply() CASCADE".to_owned(),
        "CREATE ROLE intruder".to_owned(),
    ];
    for sql in &attempts {
        assert!(
            refused(&web, None, sql).await,
            "the web's login role may: {sql}"
        );
        assert!(
            refused(&web, Some(alpha.role_name()), sql).await,
            "a clinic's role may: {sql}"
        );
    }
    // Branding: the clinic's own role may change it, and only for itself, whatever it names.
    let mut tx = web.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL ROLE \"{}\"",
        alpha.role_name()
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO control.branding_changes
             (tenant_id, display_name, primary_color, accent_color, sender_name)
         VALUES ($1, 'Alpha Renamed', '#123456', '#123456', 'Alpha')",
    )
    .bind(beta.id().as_uuid())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let names: Vec<(String, String)> =
        sqlx::query_as("SELECT slug, display_name FROM control.tenants ORDER BY slug")
            .fetch_all(&db.admin)
            .await
            .unwrap();
    assert_eq!(
        names,
        [
            ("alpha".to_owned(), "Alpha Renamed".to_owned()),
            ("beta".to_owned(), "Clinic beta".to_owned())
        ]
    );
    // The login role itself is no clinic: refused.
    assert!(
        refused(
            &web,
            None,
            "INSERT INTO control.branding_changes (display_name, primary_color, accent_color, sender_name)
             VALUES ('X', '#123456', '#123456', 'X')"
        )
        .await
    );
}

#[tokio::test]
async fn the_web_starts_without_the_owners_credentials() {
    let db = TestDb::create().await;
    db.create_tenant("solo").await;
    let mut config = db.config.clone();
    config.database_admin_url = None;
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let running = portal::serve::start(&config, Arc::new(ManualClock::default()), async move {
        let _ = rx.wait_for(|s| *s).await;
    })
    .await
    .expect("serve starts with the application role alone");
    let resp = reqwest::Client::new()
        .get(format!("http://{}/", running.addr))
        .header("host", format!("solo.{}", config.base_domain))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = tx.send(true);
}
