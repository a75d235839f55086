//! The test harness, the first user of the platform: `TestApp::spawn()` starts the real web
//! server on port 0 against a fresh database on the local PostgreSQL (migrated, with its own
//! application role) and a fresh Redis key prefix. Dropping it stops the server and removes
//! the database and the roles it created.

use std::collections::HashMap;
use std::net::SocketAddr;

use portal::{Config, migrate, serve};
use portal_tenants::{
    HexColor, NewTenant, Provisioner, Registry, SenderName, Slug, Tenant, TenantDb,
};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Where the local PostgreSQL superuser connects (override with PORTAL_TEST_PG_URL).
pub fn pg_server_url() -> String {
    std::env::var("PORTAL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("PORTAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A fresh, migrated database with its own application role.
pub struct TestDb {
    pub name: String,
    pub app_role: String,
    pub admin: PgPool,
    pub config: Config,
}

impl TestDb {
    pub async fn create() -> Self {
        Self::create_with(HashMap::new()).await
    }

    /// `overrides` replace or add `PORTAL_*` variables of the generated configuration.
    pub async fn create_with(overrides: HashMap<&str, String>) -> Self {
        let name = format!(
            "portal_test_{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let server = pg_server_url();
        let root = PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{server}/postgres"))
            .await
            .expect("connect to local PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&root)
            .await
            .expect("create test database");
        root.close().await;

        let app_role = format!("{name}_app");
        let host = server
            .trim_start_matches("postgres://")
            .split('@')
            .nth(1)
            .unwrap_or("127.0.0.1:5432")
            .to_owned();
        let mut vars: HashMap<String, String> = HashMap::from([
            (
                "PORTAL_DATABASE_URL".into(),
                format!("postgres://{app_role}@{host}/{name}"),
            ),
            (
                "PORTAL_DATABASE_ADMIN_URL".into(),
                format!("{server}/{name}"),
            ),
            ("PORTAL_REDIS_URL".into(), redis_url()),
            ("PORTAL_REDIS_PREFIX".into(), format!("test_{name}")),
            ("PORTAL_HTTP_ADDR".into(), "127.0.0.1:0".into()),
            ("PORTAL_BASE_DOMAIN".into(), "portal.test".into()),
            ("PORTAL_DATABASE_POOL_SIZE".into(), "8".into()),
        ]);
        for (k, v) in overrides {
            vars.insert(k.to_owned(), v);
        }
        let config = Config::from_vars(vars).expect("test configuration");
        migrate::run(&config, 4)
            .await
            .expect("migrate test database");
        let admin = portal::pools::admin_pool(&config)
            .await
            .expect("admin pool");
        Self {
            name,
            app_role,
            admin,
            config,
        }
    }

    pub fn provisioner(&self) -> Provisioner {
        Provisioner::new(self.admin.clone(), self.app_role.clone())
    }

    pub fn registry(&self) -> Registry {
        Registry::new(self.admin.clone())
    }

    /// An application pool of `size` connections, logged in as the unprivileged app role.
    pub async fn app_pool(&self, size: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(size)
            .connect_with(self.config.database_options().expect("app options"))
            .await
            .expect("app pool")
    }

    pub async fn tenant_db(&self) -> TenantDb {
        TenantDb::new(self.app_pool(4).await)
    }

    /// Provisions a clinic with the given slug and a name derived from it.
    pub async fn create_tenant(&self, slug: &str) -> Tenant {
        self.provisioner()
            .create(new_tenant(slug, "America/New_York"))
            .await
            .expect("provision tenant")
    }
}

/// A valid `NewTenant` for tests.
pub fn new_tenant(slug: &str, tz: &str) -> NewTenant {
    let name = portal_tenants::DisplayName::parse(&format!("Clinic {slug}")).expect("name");
    NewTenant {
        slug: Slug::parse(slug).expect("slug"),
        sender_name: SenderName::from_display_name(&name),
        display_name: name,
        time_zone: portal_tenants::TimeZoneName::parse(tz).expect("tz"),
        primary_color: HexColor::parse("#123456").expect("colour"),
        accent_color: HexColor::parse("#0f766e").expect("colour"),
        logo: None,
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let app_role = self.app_role.clone();
        // Async cleanup from Drop: a separate thread with its own runtime and its own
        // connections (the test's pool belongs to the test's runtime, which is blocked here).
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let server = pg_server_url();
                let roles: Vec<String> =
                    match sqlx::PgPool::connect(&format!("{server}/{name}")).await {
                        Ok(db) => {
                            let roles = sqlx::query_scalar("SELECT role_name FROM control.tenants")
                                .fetch_all(&db)
                                .await
                                .unwrap_or_default();
                            db.close().await;
                            roles
                        }
                        Err(_) => Vec::new(),
                    };
                let Ok(root) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&format!("{server}/postgres"))
                    .await
                else {
                    return;
                };
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&root)
                .await;
                for role in roles.iter().chain(std::iter::once(&app_role)) {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP ROLE IF EXISTS \"{role}\""
                    )))
                    .execute(&root)
                    .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The real web server on port 0, plus a client that can speak to any host name on it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: TestDb,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(HashMap::new()).await
    }

    pub async fn spawn_with(overrides: HashMap<&str, String>) -> Self {
        let db = TestDb::create_with(overrides).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = serve::start(&db.config, async move {
            let _ = rx.await;
        })
        .await
        .expect("start server");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            addr: running.addr,
            db,
            client,
            shutdown: Some(tx),
        }
    }

    /// GET `path` as a browser at `host` would send it.
    pub async fn get(&self, host: &str, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, host, path).await
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        host: &str,
        path: &str,
    ) -> reqwest::Response {
        self.client
            .request(method, format!("http://{}{path}", self.addr))
            .header("host", host)
            .send()
            .await
            .expect("request")
    }

    /// Polls until `host` + `path` answers `expected` (control-plane changes reach the server
    /// through NOTIFY, asynchronously), giving up after two seconds; returns the last status.
    pub async fn status_becomes(&self, host: &str, path: &str, expected: u16) -> u16 {
        let mut status = 0;
        for _ in 0..100 {
            status = self.get(host, path).await.status().as_u16();
            if status == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        status
    }

    /// The host name of a clinic's site.
    pub fn host(&self, slug: &str) -> String {
        format!("{slug}.{}", self.db.config.base_domain)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
