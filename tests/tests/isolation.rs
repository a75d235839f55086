//! Proofs that one clinic's data is unreachable from another's and from outside any clinic's
//! transaction. Each would fail if `TenantDb`'s role/search_path scoping, or the application
//! role's NOINHERIT, were removed.

use futures::StreamExt;
use portal_domain::clinic::ClinicProfile;
use portal_tests::TestDb;
use sqlx::Row;

const INSUFFICIENT_PRIVILEGE: &str = "42501";
const UNDEFINED_TABLE: &str = "42P01";

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

async fn set_welcome(db: &portal_tenants::TenantDb, tenant: &portal_tenants::Tenant, text: &str) {
    let mut tx = db.begin(tenant).await.unwrap();
    ClinicProfile::new(text, None, None)
        .unwrap()
        .save(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn inside_clinic_a_naming_clinic_b_schema_is_refused() {
    let db = TestDb::create().await;
    let a = db.create_tenant("alpha").await;
    let b = db.create_tenant("bravo").await;
    let tdb = db.tenant_db().await;
    set_welcome(&tdb, &b, "bravo's secret").await;

    let mut tx = tdb.begin(&a).await.unwrap();
    let err = sqlx::query("SELECT welcome_message FROM tenant_bravo.clinic_profile")
        .fetch_one(tx.conn())
        .await
        .unwrap_err();
    assert_eq!(
        sqlstate(&err).as_deref(),
        Some(INSUFFICIENT_PRIVILEGE),
        "{err}"
    );
    drop(tx);

    // Pointing the search_path at B inside A's transaction does not help either.
    let mut tx = tdb.begin(&a).await.unwrap();
    sqlx::query("SELECT set_config('search_path', 'tenant_bravo', true)")
        .execute(tx.conn())
        .await
        .unwrap();
    let err = sqlx::query("SELECT welcome_message FROM clinic_profile")
        .fetch_one(tx.conn())
        .await
        .unwrap_err();
    assert!(
        matches!(
            sqlstate(&err).as_deref(),
            Some(INSUFFICIENT_PRIVILEGE | UNDEFINED_TABLE)
        ),
        "{err}"
    );
}

#[tokio::test]
async fn outside_any_clinic_transaction_tenant_tables_cannot_be_read() {
    let db = TestDb::create().await;
    db.create_tenant("alpha").await;
    let pool = db.app_pool(1).await;

    let err = sqlx::query("SELECT welcome_message FROM tenant_alpha.clinic_profile")
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        sqlstate(&err).as_deref(),
        Some(INSUFFICIENT_PRIVILEGE),
        "{err}"
    );

    let err = sqlx::query("SELECT welcome_message FROM clinic_profile")
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some(UNDEFINED_TABLE), "{err}");

    // Even inside a plain (non-clinic) transaction.
    let mut tx = pool.begin().await.unwrap();
    let err = sqlx::query("SELECT count(*) FROM tenant_alpha.clinic_profile")
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        sqlstate(&err).as_deref(),
        Some(INSUFFICIENT_PRIVILEGE),
        "{err}"
    );
}

#[tokio::test]
async fn the_serving_process_refuses_a_role_that_can_read_everything() {
    let db = TestDb::create().await;
    // The admin role (a superuser here) would see every clinic's data without acting as one.
    let err = portal_tenants::verify_app_role(&db.admin)
        .await
        .unwrap_err();
    assert!(err.contains("superuser"), "{err}");
    let app = db.app_pool(1).await;
    portal_tenants::verify_app_role(&app).await.unwrap();
}

/// What one transaction observed about who it was acting as.
struct Seen {
    expected: usize,
    user: String,
    search_path: String,
    welcome: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_interleaved_transactions_never_cross_clinics() {
    const TENANTS: usize = 50;
    const TRANSACTIONS: usize = 10_000;
    let db = TestDb::create().await;
    let mut tenants = Vec::new();
    for i in 0..TENANTS {
        tenants.push(db.create_tenant(&format!("clinic-{i:02}")).await);
    }
    let pool = db.app_pool(2).await;
    let tdb = portal_tenants::TenantDb::new(pool.clone());
    for (i, t) in tenants.iter().enumerate() {
        set_welcome(&tdb, t, &format!("welcome-{i}")).await;
    }
    let app_role = db.app_role.clone();

    let outcomes: Vec<Result<Option<Seen>, String>> = futures::stream::iter(0..TRANSACTIONS)
        .map(|n| {
            let (tdb, pool, tenants, app_role) =
                (tdb.clone(), pool.clone(), &tenants, app_role.clone());
            async move {
                // A pseudo-random but reproducible clinic order, so neighbours differ.
                let i = (n * 7919 + n / 3) % TENANTS;
                let tenant = &tenants[i];
                match n % 10 {
                    // A plain pool query between clinic work must see no clinic at all.
                    0 => {
                        let row = sqlx::query(
                            "SELECT current_user::text AS u, current_setting('search_path') AS p",
                        )
                        .fetch_one(&pool)
                        .await
                        .map_err(|e| e.to_string())?;
                        let (u, p): (String, String) = (row.get("u"), row.get("p"));
                        if u != app_role || p.contains("tenant_") {
                            return Err(format!(
                                "pool connection leaked clinic state: user={u} search_path={p}"
                            ));
                        }
                        Ok(None)
                    }
                    // Errors mid-transaction, then dropped.
                    1 => {
                        let mut tx = tdb.begin(tenant).await.map_err(|e| e.to_string())?;
                        let _ = sqlx::query("SELECT 1/0").execute(tx.conn()).await;
                        Ok(None)
                    }
                    // Writes, then dropped mid-way without commit (must roll back).
                    2 => {
                        let mut tx = tdb.begin(tenant).await.map_err(|e| e.to_string())?;
                        sqlx::query("UPDATE clinic_profile SET welcome_message = 'tampered'")
                            .execute(tx.conn())
                            .await
                            .map_err(|e| e.to_string())?;
                        drop(tx);
                        Ok(None)
                    }
                    // Dropped while the future is cancelled between statements.
                    3 => {
                        let work = async {
                            let mut tx = tdb.begin(tenant).await?;
                            tokio::task::yield_now().await;
                            sqlx::query("SELECT pg_sleep(0.01)")
                                .execute(tx.conn())
                                .await?;
                            Ok::<_, sqlx::Error>(())
                        };
                        let _ =
                            tokio::time::timeout(std::time::Duration::from_millis(1), work).await;
                        Ok(None)
                    }
                    _ => {
                        let mut tx = tdb.begin(tenant).await.map_err(|e| e.to_string())?;
                        let row = sqlx::query(
                            "SELECT current_user::text AS u, current_setting('search_path') AS p,
                                    (SELECT welcome_message FROM clinic_profile) AS w",
                        )
                        .fetch_one(tx.conn())
                        .await
                        .map_err(|e| e.to_string())?;
                        tx.commit().await.map_err(|e| e.to_string())?;
                        Ok(Some(Seen {
                            expected: i,
                            user: row.get("u"),
                            search_path: row.get("p"),
                            welcome: row.get("w"),
                        }))
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut checked = 0;
    for outcome in outcomes {
        match outcome {
            Err(e) => panic!("{e}"),
            Ok(None) => {}
            Ok(Some(seen)) => {
                let t = &tenants[seen.expected];
                assert_eq!(
                    seen.welcome,
                    format!("welcome-{}", seen.expected),
                    "read another clinic's row"
                );
                assert_eq!(
                    seen.search_path,
                    t.schema_name(),
                    "ran with another clinic's search_path"
                );
                assert!(
                    seen.user.starts_with("portal_ten_"),
                    "ran without a clinic role: {}",
                    seen.user
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= TRANSACTIONS / 2,
        "only {checked} transactions checked"
    );

    // Each clinic's role is its own: the role seen for a clinic is the same every time.
    for (i, t) in tenants.iter().enumerate() {
        let mut tx = tdb.begin(t).await.unwrap();
        let (user, welcome): (String, String) =
            sqlx::query_as("SELECT current_user::text, welcome_message FROM clinic_profile")
                .fetch_one(tx.conn())
                .await
                .unwrap();
        assert_eq!(
            welcome,
            format!("welcome-{i}"),
            "a dropped transaction's write survived"
        );
        let others = tenants.iter().filter(|o| o.id() != t.id());
        let role_of =
            |o: &portal_tenants::Tenant| format!("portal_ten_{}", o.id().as_uuid().simple());
        assert_eq!(user, role_of(t));
        assert!(others.map(role_of).all(|r| r != user));
    }
}

/// The webhook's transaction waits for its clinic's inbox lock inside its `BEGIN` round trip.
/// A caller that gives up there (a client hanging up) must leave no transaction, and no lock,
/// on the connection the next borrower gets: sqlx before 0.9.1 queued no `ROLLBACK` for it.
#[tokio::test]
async fn a_transaction_given_up_while_its_lock_waits_leaves_its_connection_clean() {
    let db = TestDb::create().await;
    let tenant = db.create_tenant("lockwait").await;
    let pool = db.app_pool(1).await;
    let tdb = portal_tenants::TenantDb::new(pool.clone());

    let other = portal_tenants::TenantDb::new(db.app_pool(1).await);
    let mut holder = other.begin(&tenant).await.unwrap();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('inbox_test ' || current_schema(), 0))",
    )
    .execute(holder.conn())
    .await
    .unwrap();

    // Given up only once the server shows it waiting for the lock, inside its BEGIN.
    let mut begin = Box::pin(tdb.begin_holding_shared(&tenant, "inbox_test"));
    let waiting = async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks
                 WHERE locktype = 'advisory' AND NOT granted
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&db.admin)
            .await
            .unwrap();
            if n == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        _ = &mut begin => panic!("the shared lock waits for the exclusive holder"),
        () = waiting => {}
    }
    drop(begin);
    holder.commit().await.unwrap();

    let mut conn = pool.acquire().await.unwrap();
    let mut xid = async || -> i64 {
        sqlx::query_scalar("SELECT txid_current()")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    let (first, second) = (xid().await, xid().await);
    assert_ne!(
        first, second,
        "each statement of the next borrower is its own transaction"
    );
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(locks, 0, "nothing still holds the clinic's lock");
}
