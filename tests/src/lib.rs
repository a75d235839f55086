//! The test harness, the first user of the platform: `TestApp::spawn()` starts the real web
//! server on port 0 against a fresh database on the local PostgreSQL (migrated, with its own
//! application role) and a fresh Redis key prefix. Dropping it stops the server and removes
//! the database and the roles it created.

pub mod bench;
pub mod bills;
pub mod cards;
pub mod scheduling;
pub mod stripe_fake;
pub mod twilio_fake;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use portal::{Config, migrate, serve};
use portal_domain::clock::{Clock, ManualClock};
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
    /// The document store's directory (its own per test, removed with it), unless the test
    /// chose another store.
    pub blob_dir: Option<PathBuf>,
    _blobs: Option<TempDir>,
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
            // A fixed key for tests; deployments make their own (`openssl rand -base64 32`).
            (
                "PORTAL_MASTER_KEY".into(),
                "dGVzdHMgb25seTogbm90IGEgcmVhbCBtYXN0ZXIga3k=".into(),
            ),
        ]);
        let blobs = (!overrides.contains_key("PORTAL_BLOB_DIR")
            && !overrides.contains_key("PORTAL_BLOB_STORE"))
        .then(|| TempDir::new("blobs"));
        if let Some(b) = &blobs {
            vars.insert("PORTAL_BLOB_DIR".into(), b.0.display().to_string());
        }
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
            blob_dir: match &config.blobs {
                portal::config::BlobConfig::Dir(d) => Some(d.clone()),
                portal::config::BlobConfig::S3(_) => None,
            },
            config,
            _blobs: blobs,
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

    /// Provisions a clinic with the given slug and a name derived from it. Test clinics do
    /// not require two-step sign-in (the product's default requires it of administrators;
    /// `tests/tests/mfa.rs` tests that default on a clinic from [`Self::create_tenant_as_new`]).
    pub async fn create_tenant(&self, slug: &str) -> Tenant {
        let tenant = self.create_tenant_as_new(slug).await;
        let db = self.tenant_db().await;
        let mut tx = db.begin(&tenant).await.expect("begin");
        portal_domain::identity::mfa::seed_requirement(
            &mut tx,
            portal_domain::identity::mfa::Requirement::Off,
        )
        .await
        .expect("requirement");
        tx.commit().await.expect("commit");
        tenant
    }

    /// Provisions a clinic exactly as sign-up does, defaults untouched.
    pub async fn create_tenant_as_new(&self, slug: &str) -> Tenant {
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

/// The real web server on port 0 (and, when asked, the real job pipeline in the same process),
/// plus a client that can speak to any host name on it. Time is a [`ManualClock`] the test can
/// move; emails land in `mail_dir` (the file transport, or the SMTP sink's directory).
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub mail_dir: PathBuf,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    _mail_tmp: Option<TempDir>,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("portal-{label}-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(HashMap::new()).await
    }

    pub async fn spawn_with(overrides: HashMap<&str, String>) -> Self {
        Self::start(overrides, false).await
    }

    /// The server plus the job pipeline (outbox relay and workers on the test's Redis prefix).
    pub async fn spawn_with_workers(overrides: HashMap<&str, String>) -> Self {
        Self::start(overrides, true).await
    }

    async fn start(mut overrides: HashMap<&str, String>, workers: bool) -> Self {
        // PORTAL_TEST_LOG=debug (any filter) shows the server's and workers' logs.
        if let Ok(filter) = std::env::var("PORTAL_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let tmp = if overrides.contains_key("PORTAL_MAIL_DIR") {
            None
        } else {
            let t = TempDir::new("mail");
            overrides.insert("PORTAL_MAIL_DIR", t.0.display().to_string());
            Some(t)
        };
        // Fast retries, so fault tests see a job die in well under a second.
        overrides
            .entry("PORTAL_JOB_RETRY_BASE_MS")
            .or_insert_with(|| "20".into());
        overrides
            .entry("PORTAL_JOB_MAX_ATTEMPTS")
            .or_insert_with(|| "3".into());
        // A short lease, so a killed worker's job is taken over within the test's patience.
        overrides
            .entry("PORTAL_JOB_LEASE_MS")
            .or_insert_with(|| "2000".into());
        let db = TestDb::create_with(overrides).await;
        let clock = Arc::new(ManualClock::default());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut stop = rx.clone();
        let running = serve::start(&db.config, clock.clone(), async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
        .expect("start server");
        if workers {
            let deps = portal::work::deps(&db.config, clock.clone(), Some(running.addr.port()))
                .await
                .expect("worker deps");
            let mut stop = rx.clone();
            tokio::spawn(portal_workers::run(deps, async move {
                let _ = stop.wait_for(|s| *s).await;
            }));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            addr: running.addr,
            mail_dir: db.config.mail_dir.clone(),
            db,
            client,
            clock,
            shutdown: Some(tx),
            _mail_tmp: tmp,
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

    /// A browser-like client for one host: keeps cookies, fills in form tokens.
    pub fn browser(&self, host: &str) -> Browser {
        Browser {
            addr: self.addr,
            host: host.to_owned(),
            client: self.client.clone(),
            jar: HashMap::new(),
        }
    }

    /// Signs in through the sign-in form; panics unless it succeeds.
    pub async fn sign_in(&self, host: &str, email: &str, password: &str) -> Browser {
        let mut b = self.browser(host);
        let resp = b
            .post_form("/login", &[("email", email), ("password", password)])
            .await;
        assert_eq!(resp.status().as_u16(), 303, "sign-in of {email} failed");
        b
    }

    /// Waits for an email to `to` (the job pipeline runs asynchronously) and returns it.
    pub async fn email_to(&self, to: &str) -> Email {
        self.email_in(&self.mail_dir.clone(), to, 0).await
    }

    /// The `nth` (0-based) email to `to` in `dir`, waiting up to 20 seconds for it.
    pub async fn email_in(&self, dir: &std::path::Path, to: &str, nth: usize) -> Email {
        for _ in 0..1000 {
            let found = read_emails(dir)
                .into_iter()
                .filter(|e| e.to.eq_ignore_ascii_case(to))
                .nth(nth);
            if let Some(e) = found {
                // The worker hands the email over, then commits (a link's token is committed
                // only once its email is out). Wait for that, as a person's few seconds would,
                // or a link opened at once can find its token not there yet.
                self.jobs_settled().await;
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no email to {to} in {}", dir.display());
    }

    /// Waits until no job is waiting or running: nothing due is left in the outbox (delayed
    /// jobs not yet due by the test's clock do not count) and every delivery is done or dead.
    /// Returns the number of dead jobs.
    pub async fn jobs_settled(&self) -> i64 {
        for _ in 0..1000 {
            let (pending, dead): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM control.outbox
                         WHERE not_before IS NULL OR not_before <= $1)
                        + (SELECT count(*) FROM control.job_deliveries
                           WHERE status IN ('queued', 'running')),
                        (SELECT count(*) FROM control.job_deliveries WHERE status = 'dead')",
            )
            .bind(self.clock.now())
            .fetch_one(&self.db.admin)
            .await
            .expect("job counts");
            if pending == 0 {
                return dead;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("jobs did not settle");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}

/// An email as a person would read it.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Email {
    /// The first link in the text part.
    pub fn link(&self) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no link in email: {}", self.text))
            .to_owned()
    }

    /// The link's path (`/invite/…`), to follow it on the test server.
    pub fn link_path(&self) -> String {
        let link = self.link();
        let after_scheme = link.split_once("://").map_or(link.as_str(), |x| x.1);
        after_scheme[after_scheme.find('/').unwrap_or(0)..].to_owned()
    }
}

/// Every `.eml` file in `dir`, oldest first.
pub fn read_emails(dir: &std::path::Path) -> Vec<Email> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, p)| {
            let raw = std::fs::read(&p).ok()?;
            let m = mail_parser::MessageParser::default().parse(&raw)?;
            let addr = |a: Option<&mail_parser::Address<'_>>| {
                a.and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or_default()
                    .to_owned()
            };
            Some(Email {
                to: addr(m.to()),
                from: addr(m.from()),
                subject: m.subject().unwrap_or_default().to_owned(),
                text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
                raw: String::from_utf8_lossy(&raw).into_owned(),
            })
        })
        .collect()
}

/// A client bound to one host with its own cookies, like one browser tab.
pub struct Browser {
    addr: SocketAddr,
    pub host: String,
    client: reqwest::Client,
    pub jar: HashMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let Ok(v) = v.to_str() else { continue };
            let Some((kv, attrs)) = v.split_once(';').or(Some((v, ""))) else {
                continue;
            };
            let Some((k, val)) = kv.split_once('=') else {
                continue;
            };
            if attrs.contains("Max-Age=0") {
                self.jar.remove(k.trim());
            } else {
                self.jar.insert(k.trim().to_owned(), val.trim().to_owned());
            }
        }
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let resp = req
            .header("host", &self.host)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep_cookies(&resp);
        resp
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let req = self.client.get(format!("http://{}{path}", self.addr));
        self.send(req).await
    }

    /// GET, and the page text.
    pub async fn page(&mut self, path: &str) -> (u16, String) {
        let resp = self.get(path).await;
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// The form token, fetched the way a browser gets it: by loading a page first.
    pub async fn csrf(&mut self) -> String {
        if let Some(t) = self.jar.iter().find(|(k, _)| k.ends_with("portal_csrf")) {
            return t.1.clone();
        }
        self.get("/login").await;
        self.jar
            .iter()
            .find(|(k, _)| k.ends_with("portal_csrf"))
            .map(|t| t.1.clone())
            .expect("csrf cookie")
    }

    /// POSTs a multipart form (a file upload) with its token added.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> reqwest::Response {
        let csrf = self.csrf().await;
        let req = self
            .client
            .post(format!("http://{}{path}", self.addr))
            .multipart(form.text("csrf", csrf));
        self.send(req).await
    }

    /// POSTs a form with its token, like a browser submitting a page's form.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let req = self
            .client
            .post(format!("http://{}{path}", self.addr))
            .form(&all);
        self.send(req).await
    }

    /// The session cookie's value, if signed in.
    pub fn session_token(&self) -> Option<String> {
        self.jar
            .iter()
            .find(|(k, _)| k.ends_with("portal_session"))
            .map(|t| t.1.clone())
    }
}

/// A real SMTP server (Debian's python3-aiosmtpd) on a free loopback port, writing what it
/// accepts into its own directory. `stop` kills it, so the product sees connections refused.
pub struct SmtpSink {
    pub port: u16,
    pub dir: TempDir,
    child: Option<std::process::Child>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = TempDir::new("smtp");
        let mut sink = Self {
            port,
            dir,
            child: None,
        };
        sink.restart().await;
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and directory.
    pub async fn restart(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp_sink.py");
        // Debian's interpreter, where python3-aiosmtpd is installed.
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let child = std::process::Command::new(python)
            .args([script, "--port", &self.port.to_string(), "--dir"])
            .arg(&self.dir.0)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start SMTP sink (apt-get install python3-aiosmtpd)");
        self.child = Some(child);
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("SMTP sink did not start");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The password test accounts get.
pub const PASSWORD: &str = "violet tugboat orchard";

impl TestApp {
    /// Provisions a clinic (without anyone in it).
    pub async fn clinic(&self, slug: &str) -> Tenant {
        self.db.create_tenant(slug).await
    }

    /// An active staff account with [`PASSWORD`].
    pub async fn staff(&self, tenant: &Tenant, email: &str, role: portal_domain::identity::Role) {
        let db = self.db.tenant_db().await;
        let mut tx = db.begin(tenant).await.expect("begin");
        let hash = portal_domain::identity::password::hash(
            &portal_domain::identity::password::NewPassword::parse(PASSWORD, None).expect("pw"),
        )
        .await
        .expect("hash");
        portal_domain::identity::accounts::create_active(
            &mut tx,
            &portal_domain::values::EmailAddress::parse(email).expect("email"),
            "Test Staff",
            role,
            None,
            &hash,
            self.clock.now(),
        )
        .await
        .expect("staff account");
        tx.commit().await.expect("commit");
    }

    /// An active patient account with [`PASSWORD`], born 1984-03-27.
    pub async fn patient(
        &self,
        tenant: &Tenant,
        given: &str,
        email: &str,
    ) -> portal_domain::ids::PatientId {
        use portal_domain::values::*;
        let db = self.db.tenant_db().await;
        let mut tx = db.begin(tenant).await.expect("begin");
        let hash = portal_domain::identity::password::hash(
            &portal_domain::identity::password::NewPassword::parse(PASSWORD, None).expect("pw"),
        )
        .await
        .expect("hash");
        let new = portal_domain::patients::NewPatient {
            given_name: PersonName::parse(given, "given name").expect("name"),
            family_name: PersonName::parse("Tester", "family name").expect("name"),
            date_of_birth: DateOfBirth::from_date(
                chrono::NaiveDate::from_ymd_opt(1984, 3, 27).expect("date"),
            ),
            email: Some(EmailAddress::parse(email).expect("email")),
            phone: None,
        };
        let id = portal_domain::identity::accounts::create_active_patient(
            &mut tx,
            &new,
            &hash,
            self.clock.now(),
        )
        .await
        .expect("patient");
        tx.commit().await.expect("commit");
        id
    }
}

/// A local S3-compatible server (PyPI's `moto[server]`, installed by `infra/test`), on its own
/// port, with one empty bucket; stopped when dropped.
pub struct S3Server {
    pub port: u16,
    pub bucket: String,
    child: std::process::Child,
}

impl S3Server {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("port")
            .port();
        // `infra/test` names the interpreter that has moto; a machine's own python3 may.
        let python = std::env::var("PORTAL_TEST_S3_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = std::process::Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto (python3 -m pip install 'moto[server]')");
        // Owned at once, so a failed start below still stops it (Drop).
        let server = Self {
            port,
            bucket: "portal-documents".to_owned(),
            child,
        };
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/{}", server.bucket);
        for _ in 0..300 {
            // moto takes an unsigned bucket creation; objects then need signed requests.
            if let Ok(r) = client.put(&url).send().await {
                assert!(r.status().is_success(), "create bucket: {}", r.status());
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("moto did not start (is `moto[server]` installed for python3?)");
    }

    pub fn settings(&self) -> portal_vault::S3Settings {
        portal_vault::S3Settings {
            endpoint: format!("http://127.0.0.1:{}", self.port),
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of a PDF, as poppler's `pdftotext` reads it.
pub fn pdftotext(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("portal-doc-{}.pdf", uuid::Uuid::new_v4()));
    std::fs::write(&path, pdf).expect("a temporary file");
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed");
    std::fs::remove_file(&path).ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The smallest whole PNG (one pixel), for uploads.
pub const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 13, b'I', b'D', b'A', b'T',
    0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0, b'I', b'E', b'N',
    b'D', 0xAE, 0x42, 0x60, 0x82,
];
