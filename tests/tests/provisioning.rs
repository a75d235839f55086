//! `portal tenants create` and the migration runner, against a real PostgreSQL.

use portal::tenants::CreateArgs;
use portal_tenants::{Provisioner, TenantError, TenantStatus, ValueError};
use portal_tests::{TestDb, new_tenant};

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.admin).await.unwrap()
}

async fn role_exists(db: &TestDb, role: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(&db.admin)
        .await
        .unwrap()
}

/// Clinic roles belonging to this test database. Roles are cluster-wide and other tests'
/// databases make clinics concurrently, so only those granted to this database's app role count.
async fn clinic_roles(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_roles r WHERE r.rolname LIKE 'portal_ten_%' AND pg_has_role($1, r.oid, 'MEMBER')",
    )
    .bind(&db.app_role)
    .fetch_one(&db.admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn provisioning_creates_schema_role_and_migrated_tables() {
    let db = TestDb::create().await;
    let t = db.create_tenant("sunrise").await;
    assert_eq!(t.schema_name(), "tenant_sunrise");
    assert_eq!(t.status(), TenantStatus::Active);
    let role = format!("portal_ten_{}", t.id().as_uuid().simple());
    assert!(role_exists(&db, &role).await);
    let (login, version): (bool, i64) = sqlx::query_as(
        "SELECT r.rolcanlogin, t.schema_version FROM pg_roles r, control.tenants t WHERE r.rolname = $1 AND t.slug = 'sunrise'",
    )
    .bind(&role)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert!(!login, "a clinic's role must not be able to log in");
    assert_eq!(version, Provisioner::latest_version());
    // The clinic's home-page row is there and readable as the clinic.
    let tdb = db.tenant_db().await;
    let mut tx = tdb.begin(&t).await.unwrap();
    let profile = portal_domain::clinic::ClinicProfile::load(&mut tx)
        .await
        .unwrap();
    assert_eq!(profile.welcome_message, "");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_specific_error_and_nothing_written() {
    let db = TestDb::create().await;
    let args = |slug: &str, tz: &str, colour: &str| CreateArgs {
        slug: slug.into(),
        name: "Sunrise Family Medicine".into(),
        time_zone: tz.into(),
        primary_color: colour.into(),
        accent_color: "#0f766e".into(),
        sender_name: None,
    };
    let cases = [
        (args("Sunrise", "UTC", "#123456"), "lowercase letters"),
        (args("admin", "UTC", "#123456"), "reserved"),
        (args("www", "UTC", "#123456"), "reserved"),
        (args("ok-slug", "Mars/Base", "#123456"), "IANA time zone"),
        (args("ok-slug", "UTC", "blue"), "#rrggbb"),
    ];
    for (a, expected) in cases {
        let err = a.parse().unwrap_err();
        assert!(err.to_string().contains(expected), "{a:?}: {err}");
    }
    assert!(matches!(
        args("api", "UTC", "#123456").parse(),
        Err(TenantError::Invalid(ValueError::SlugReserved(_)))
    ));
    assert_eq!(count(&db, "SELECT count(*) FROM control.tenants").await, 0);
}

#[tokio::test]
async fn a_duplicate_slug_is_refused_and_the_first_clinic_is_untouched() {
    let db = TestDb::create().await;
    let first = db.create_tenant("sunrise").await;
    let roles_before = clinic_roles(&db).await;
    let err = db
        .provisioner()
        .create(new_tenant("sunrise", "UTC"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TenantError::SlugTaken(s) if s == "sunrise"),
        "{err}"
    );
    assert_eq!(err.to_string(), "slug 'sunrise' is already taken");
    assert_eq!(clinic_roles(&db).await, roles_before);
    let still = db.registry().by_slug("sunrise").await.unwrap().unwrap();
    assert_eq!(still.id(), first.id());
    assert_eq!(still.time_zone(), "America/New_York");
}

#[tokio::test]
async fn a_failure_mid_provisioning_leaves_no_half_made_clinic_and_a_retry_works() {
    let db = TestDb::create().await;
    // Something already occupies the schema name, so CREATE SCHEMA fails after the registry
    // row and the role were made in the same transaction.
    sqlx::query("CREATE SCHEMA tenant_clash")
        .execute(&db.admin)
        .await
        .unwrap();
    let err = db
        .provisioner()
        .create(new_tenant("clash", "UTC"))
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::Database(_)), "{err}");
    assert_eq!(count(&db, "SELECT count(*) FROM control.tenants").await, 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM control.tenant_migrations").await,
        0
    );
    let orphan_roles = clinic_roles(&db).await;
    assert_eq!(
        orphan_roles, 0,
        "the clinic role outlived the failed provisioning"
    );

    sqlx::query("DROP SCHEMA tenant_clash")
        .execute(&db.admin)
        .await
        .unwrap();
    let t = db
        .provisioner()
        .create(new_tenant("clash", "UTC"))
        .await
        .unwrap();
    assert_eq!(t.slug(), "clash");
}

#[tokio::test]
async fn suspend_and_resume_change_status_and_unknown_slugs_are_named() {
    let db = TestDb::create().await;
    db.create_tenant("sunrise").await;
    let slug = portal_tenants::Slug::parse("sunrise").unwrap();
    let p = db.provisioner();
    assert_eq!(
        p.set_status(&slug, TenantStatus::Suspended)
            .await
            .unwrap()
            .status(),
        TenantStatus::Suspended
    );
    assert_eq!(
        p.set_status(&slug, TenantStatus::Active)
            .await
            .unwrap()
            .status(),
        TenantStatus::Active
    );
    let missing = portal_tenants::Slug::parse("nowhere").unwrap();
    let err = p
        .set_status(&missing, TenantStatus::Suspended)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no clinic with slug 'nowhere'");
}

/// Puts a clinic back to "provisioned, no migration applied": an empty schema, version 0.
async fn empty_schema(db: &TestDb, slug: &str) {
    let role: String = sqlx::query_scalar("SELECT role_name FROM control.tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(&db.admin)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA tenant_{slug} CASCADE;
         CREATE SCHEMA tenant_{slug};
         GRANT USAGE ON SCHEMA tenant_{slug} TO \"{role}\";
         DELETE FROM control.tenant_migrations WHERE tenant_id = (SELECT id FROM control.tenants WHERE slug = '{slug}');
         UPDATE control.tenants SET schema_version = 0 WHERE slug = '{slug}';"
    )))
    .execute(&db.admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn migrate_with_nothing_pending_opens_no_schema_and_resumes_after_a_crash() {
    let db = TestDb::create().await;
    for slug in ["aa", "bb", "cc", "dd", "ee"] {
        db.create_tenant(slug).await;
    }
    let migrator = portal_tenants::Migrator::new(db.admin.clone());
    let report = migrator.run_tenants(4).await.unwrap();
    assert_eq!(report.up_to_date, 5);
    assert!(report.migrated.is_empty() && report.failed.is_empty());

    // Simulate three schemas whose migration crashed before committing: their tables were never
    // made and their recorded version is behind.
    for slug in ["bb", "cc", "dd"] {
        empty_schema(&db, slug).await;
    }
    // Two runs at once: each schema is migrated exactly once (a second application would fail
    // on the recorded version's primary key or on the existing table).
    let (r1, r2) = tokio::join!(migrator.run_tenants(2), migrator.run_tenants(2));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert!(
        r1.failed.is_empty() && r2.failed.is_empty(),
        "{r1:?} {r2:?}"
    );
    let mut migrated = [r1.migrated, r2.migrated].concat();
    migrated.sort();
    assert_eq!(migrated, ["bb", "cc", "dd"]);

    // The resumed clinics work as clinics again.
    let tdb = db.tenant_db().await;
    let t = db.registry().by_slug("cc").await.unwrap().unwrap();
    let mut tx = tdb.begin(&t).await.unwrap();
    portal_domain::clinic::ClinicProfile::load(&mut tx)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_broken_schema_fails_alone_and_the_rest_migrate() {
    let db = TestDb::create().await;
    for slug in ["aa", "bb"] {
        db.create_tenant(slug).await;
    }
    empty_schema(&db, "aa").await;
    sqlx::raw_sql(
        "UPDATE control.tenants SET schema_version = 0;
         DELETE FROM control.tenant_migrations;",
    )
    .execute(&db.admin)
    .await
    .unwrap();
    // bb still has its table, so re-applying its first migration fails; aa does not.
    let report = portal_tenants::Migrator::new(db.admin.clone())
        .run_tenants(2)
        .await
        .unwrap();
    assert_eq!(report.migrated, ["aa"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "bb");
    assert!(
        report.failed[0].1.contains("tenant_bb"),
        "{}",
        report.failed[0].1
    );
}
