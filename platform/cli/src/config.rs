//! Typed configuration from `PORTAL_*` environment variables, validated at boot. Secrets are
//! wrapped so that `Debug` never prints them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;

/// Everything the processes need to know, checked once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The application's unprivileged login role (serve, work).
    pub database_url: SecretString,
    /// The owner role for migrations and provisioning (migrate, tenants, demo).
    pub database_admin_url: Option<SecretString>,
    pub database_pool_size: u32,
    pub redis_url: SecretString,
    /// Prefix for every Redis key, so several deployments (or test runs) can share one Redis.
    pub redis_prefix: String,
    pub http_addr: SocketAddr,
    /// Clinics live at `<slug>.<base domain>`; the platform's own site at the base domain.
    pub base_domain: String,
    /// Development conveniences (such as the dev mailbox) are on only when this is set.
    pub dev: bool,
    pub log_json: bool,
    /// Scheme of the public links in emails: `https` unless the base domain is `localhost`.
    pub public_scheme: String,
    /// Port of the public links, when not the scheme's default (defaults to the HTTP port for
    /// a `localhost` base domain).
    pub public_port: Option<u16>,
    /// SMTP server for outgoing mail; without it, mail is written to `mail_dir`.
    pub smtp_url: Option<SecretString>,
    pub mail_dir: std::path::PathBuf,
    pub mail_from: String,
    /// Job attempts before a job is dead, and the first retry delay (doubling each time).
    pub job_max_attempts: u32,
    pub job_retry_base: std::time::Duration,
    pub job_concurrency: usize,
    /// How often idle workers and the relay look for work when no wake-up arrives (Redis
    /// pub/sub for workers, PostgreSQL NOTIFY for the relay): the pickup bound when one is
    /// lost, how late a delayed job (a reminder) may be found, and the workers' heartbeat.
    pub job_poll: std::time::Duration,
    /// A relayed job not picked up within this time is pushed to Redis again.
    pub job_reconcile_after: std::time::Duration,
    /// A running job silent this long is taken to be orphaned (its worker died).
    pub job_lease: std::time::Duration,
    /// Megabytes of recently viewed health summaries and trends the web keeps, each checked
    /// against the record's version on every view (0: none).
    pub record_cache_mb: u64,
    /// The password every demo account gets (`portal demo`).
    pub demo_password: SecretString,
    /// Where text messages go: a log file (default) or a Twilio-compatible API.
    pub sms: portal_workers::SmsConfig,
    /// Peers (the TLS proxy in front) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Wraps every clinic's document key (`portal-vault`). Required: a deployment without it
    /// would have to store documents in the clear, so no process starts without one.
    pub master_key: portal_vault::MasterKey,
    /// Where documents' sealed blobs are kept.
    pub blobs: BlobConfig,
    /// A PDF render running longer than this is abandoned and retried.
    pub render_timeout: std::time::Duration,
    /// Card payments: the platform's Stripe keys (`PORTAL_STRIPE_*`). Without them the portal
    /// runs, and says online card payment is not available.
    pub stripe: Option<StripeConfig>,
}

/// The platform's Stripe account: its secret key, the secret that signs its webhooks, and
/// where its API is (Stripe's own by default; a local fake in tests and `infra/run`).
#[derive(Clone)]
pub struct StripeConfig {
    pub secret_key: SecretString,
    pub webhook_secret: SecretString,
    pub base_url: String,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl StripeConfig {
    /// The client. A call gets 10 s per attempt and three attempts (with the same key).
    pub fn client(&self) -> anyhow::Result<portal_stripe::Stripe> {
        Ok(portal_stripe::Stripe::new(
            &portal_stripe::StripeSettings {
                secret_key: self.secret_key.clone(),
                base_url: self.base_url.clone(),
                timeout: std::time::Duration::from_secs(10),
                attempts: 3,
            },
        )?)
    }
}

/// The document store: a local directory (the default, `PORTAL_BLOB_DIR`) or S3-compatible
/// object storage (`PORTAL_BLOB_STORE=s3` and the `PORTAL_S3_*` settings).
#[derive(Debug, Clone)]
pub enum BlobConfig {
    Dir(std::path::PathBuf),
    S3(portal_vault::S3Settings),
}

impl Config {
    /// Opens the document store. A local directory is created and written to now, so a
    /// deployment that cannot store documents fails at start-up, not at a patient's first
    /// upload; object storage is only reached when used (it being down fails uploads clearly
    /// and makes renders retry).
    pub async fn vault(&self) -> anyhow::Result<portal_domain::documents::Vault> {
        use anyhow::Context;
        use portal_vault::BlobStore;
        let store: std::sync::Arc<dyn portal_vault::BlobStore> = match &self.blobs {
            BlobConfig::Dir(dir) => {
                let local = portal_vault::LocalDir::open(dir.clone())
                    .await
                    .with_context(|| {
                        format!("PORTAL_BLOB_DIR {} cannot be created", dir.display())
                    })?;
                let probe = portal_vault::BlobKey::new("probe/start-up")
                    .context("the start-up probe's name")?;
                local.put(&probe, b"ok".to_vec()).await.with_context(|| {
                    format!("PORTAL_BLOB_DIR {} is not writable", dir.display())
                })?;
                local.delete(&probe).await.ok();
                std::sync::Arc::new(local)
            }
            BlobConfig::S3(settings) => std::sync::Arc::new(
                portal_vault::S3Blobs::new(settings).context("PORTAL_S3_* settings")?,
            ),
        };
        Ok(portal_domain::documents::Vault::new(
            store,
            self.master_key.clone(),
        ))
    }
}

/// A comma-separated list of CIDRs (`10.0.0.0/8, 2001:db8::/32`); a bare address is one host.
fn parse_cidrs(raw: &str) -> Result<Vec<ipnet::IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("'{s}' is not an address or CIDR like 10.0.0.0/8"))
        })
        .collect()
}

/// The documented default password of the demo accounts.
pub const DEFAULT_DEMO_PASSWORD: &str = "demo passphrase for portal";

/// A configuration problem, naming the variable to fix.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the configuration from name/value pairs (the environment, or a test's map).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("PORTAL_"))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let invalid = |var: &'static str, reason: String| ConfigError::Invalid { var, reason };

        let database_url =
            get("PORTAL_DATABASE_URL").ok_or(ConfigError::Missing("PORTAL_DATABASE_URL"))?;
        check_pg_url(&database_url).map_err(|r| invalid("PORTAL_DATABASE_URL", r))?;
        let database_admin_url = get("PORTAL_DATABASE_ADMIN_URL");
        if let Some(url) = &database_admin_url {
            check_pg_url(url).map_err(|r| invalid("PORTAL_DATABASE_ADMIN_URL", r))?;
        }
        let database_pool_size = match get("PORTAL_DATABASE_POOL_SIZE") {
            None => 16,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "PORTAL_DATABASE_POOL_SIZE",
                        format!("'{v}' is not a number from 1 to 500"),
                    )
                })?,
        };

        let master_key = get("PORTAL_MASTER_KEY")
            .ok_or(ConfigError::Missing("PORTAL_MASTER_KEY"))
            .and_then(|k| {
                portal_vault::MasterKey::from_base64(&k)
                    .map_err(|e| invalid("PORTAL_MASTER_KEY", e.to_string()))
            })?;

        let redis_url = get("PORTAL_REDIS_URL").ok_or(ConfigError::Missing("PORTAL_REDIS_URL"))?;
        redis::Client::open(redis_url.as_str()).map_err(|_| {
            invalid(
                "PORTAL_REDIS_URL",
                "not a Redis URL (expected redis://host:port)".into(),
            )
        })?;
        let redis_prefix = get("PORTAL_REDIS_PREFIX").unwrap_or_else(|| "portal".to_owned());
        if !redis_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "PORTAL_REDIS_PREFIX",
                "use letters, digits, '-' and '_' only".into(),
            ));
        }

        let trusted_proxies = get("PORTAL_TRUSTED_PROXIES")
            .map(|v| parse_cidrs(&v))
            .transpose()
            .map_err(|r| invalid("PORTAL_TRUSTED_PROXIES", r))?
            .unwrap_or_default();

        let http_addr = get("PORTAL_HTTP_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let http_addr = SocketAddr::from_str(&http_addr).map_err(|_| {
            invalid(
                "PORTAL_HTTP_ADDR",
                format!("'{http_addr}' is not an address like 127.0.0.1:8080"),
            )
        })?;

        let base_domain = get("PORTAL_BASE_DOMAIN")
            .unwrap_or_else(|| "localhost".to_owned())
            .to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if base_domain.len() > 200 || !base_domain.split('.').all(label_ok) {
            return Err(invalid(
                "PORTAL_BASE_DOMAIN",
                format!("'{base_domain}' is not a domain name"),
            ));
        }

        let flag = |var: &'static str| match get(var).as_deref() {
            None | Some("0" | "false" | "no") => Ok(false),
            Some("1" | "true" | "yes") => Ok(true),
            Some(other) => Err(invalid(var, format!("'{other}' is not 1/0 or true/false"))),
        };
        let log_json = match get("PORTAL_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(invalid(
                    "PORTAL_LOG_FORMAT",
                    format!("'{other}' is not text or json"),
                ));
            }
        };

        let localhost = base_domain == "localhost" || base_domain.ends_with(".localhost");
        let public_scheme = match get("PORTAL_PUBLIC_SCHEME").as_deref() {
            None => if localhost { "http" } else { "https" }.to_owned(),
            Some(s @ ("http" | "https")) => s.to_owned(),
            Some(other) => {
                return Err(invalid(
                    "PORTAL_PUBLIC_SCHEME",
                    format!("'{other}' is not http or https"),
                ));
            }
        };
        let public_port = match get("PORTAL_PUBLIC_PORT") {
            Some(p) => Some(p.parse::<u16>().map_err(|_| {
                invalid("PORTAL_PUBLIC_PORT", format!("'{p}' is not a port number"))
            })?),
            None if localhost && http_addr.port() != 80 && http_addr.port() != 0 => {
                Some(http_addr.port())
            }
            None => None,
        };
        let smtp_url = get("PORTAL_SMTP_URL");
        if let Some(u) = &smtp_url
            && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
        {
            return Err(invalid(
                "PORTAL_SMTP_URL",
                "must start with smtp:// or smtps://".into(),
            ));
        }
        let mail_from =
            get("PORTAL_MAIL_FROM").unwrap_or_else(|| format!("no-reply@{base_domain}"));
        if !mail_from.contains('@') {
            return Err(invalid(
                "PORTAL_MAIL_FROM",
                format!("'{mail_from}' is not an email address"),
            ));
        }
        let number =
            |var: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                match get(var) {
                    None => Ok(default),
                    Some(v) => v
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (min..=max).contains(n))
                        .ok_or_else(|| {
                            invalid(var, format!("'{v}' is not a number from {min} to {max}"))
                        }),
                }
            };

        let sms = match get("PORTAL_SMS_PROVIDER").as_deref() {
            None | Some("log") => portal_workers::SmsConfig::Log(
                get("PORTAL_SMS_LOG")
                    .unwrap_or_else(|| "var/sms.jsonl".to_owned())
                    .into(),
            ),
            Some("twilio") => {
                let need = |var: &'static str| get(var).ok_or(ConfigError::Missing(var));
                let base_url = get("PORTAL_TWILIO_BASE_URL")
                    .unwrap_or_else(|| "https://api.twilio.com".to_owned());
                if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
                    return Err(invalid(
                        "PORTAL_TWILIO_BASE_URL",
                        "must be an http(s) URL".into(),
                    ));
                }
                portal_workers::SmsConfig::Twilio {
                    base_url,
                    account_sid: need("PORTAL_TWILIO_ACCOUNT_SID")?,
                    auth_token: need("PORTAL_TWILIO_AUTH_TOKEN")?.into(),
                    from: need("PORTAL_TWILIO_FROM")?,
                }
            }
            Some(other) => {
                return Err(invalid(
                    "PORTAL_SMS_PROVIDER",
                    format!("'{other}' is not log or twilio"),
                ));
            }
        };
        let blobs = match get("PORTAL_BLOB_STORE").as_deref() {
            None | Some("dir") => BlobConfig::Dir(
                get("PORTAL_BLOB_DIR")
                    .unwrap_or_else(|| "var/blobs".to_owned())
                    .into(),
            ),
            Some("s3") => {
                let need = |var: &'static str| get(var).ok_or(ConfigError::Missing(var));
                let endpoint = need("PORTAL_S3_ENDPOINT")?;
                if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                    return Err(invalid(
                        "PORTAL_S3_ENDPOINT",
                        "must be an http(s) URL".into(),
                    ));
                }
                BlobConfig::S3(portal_vault::S3Settings {
                    endpoint,
                    bucket: need("PORTAL_S3_BUCKET")?,
                    region: get("PORTAL_S3_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
                    access_key_id: need("PORTAL_S3_ACCESS_KEY_ID")?,
                    secret_access_key: need("PORTAL_S3_SECRET_ACCESS_KEY")?,
                })
            }
            Some(other) => {
                return Err(invalid(
                    "PORTAL_BLOB_STORE",
                    format!("'{other}' is not dir or s3"),
                ));
            }
        };
        let stripe = match (
            get("PORTAL_STRIPE_SECRET_KEY"),
            get("PORTAL_STRIPE_WEBHOOK_SECRET"),
        ) {
            (None, None) => None,
            (Some(key), Some(hook)) => {
                if !(key.starts_with("sk_") || key.starts_with("rk_")) {
                    return Err(invalid(
                        "PORTAL_STRIPE_SECRET_KEY",
                        "must be a secret key (sk_…) or restricted key (rk_…)".into(),
                    ));
                }
                if !hook.starts_with("whsec_") {
                    return Err(invalid(
                        "PORTAL_STRIPE_WEBHOOK_SECRET",
                        "must be a webhook signing secret (whsec_…)".into(),
                    ));
                }
                let base_url = get("PORTAL_STRIPE_BASE_URL")
                    .unwrap_or_else(|| "https://api.stripe.com/".to_owned());
                // Plain http only to this machine (the local stand-in): the secret key must
                // never cross a network unencrypted.
                let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|p| {
                        base_url.strip_prefix(p).is_some_and(|rest| {
                            rest.is_empty() || rest.starts_with(':') || rest.starts_with('/')
                        })
                    });
                if !(base_url.starts_with("https://") || local) {
                    return Err(invalid(
                        "PORTAL_STRIPE_BASE_URL",
                        "must be an https URL (plain http only to 127.0.0.1 or localhost)".into(),
                    ));
                }
                Some(StripeConfig {
                    secret_key: key.into(),
                    webhook_secret: hook.into(),
                    base_url,
                })
            }
            (None, Some(_)) => return Err(ConfigError::Missing("PORTAL_STRIPE_SECRET_KEY")),
            (Some(_), None) => return Err(ConfigError::Missing("PORTAL_STRIPE_WEBHOOK_SECRET")),
        };
        Ok(Self {
            stripe,
            blobs,
            render_timeout: std::time::Duration::from_millis(number(
                "PORTAL_RENDER_TIMEOUT_MS",
                20_000,
                100,
                600_000,
            )?),
            sms,
            public_scheme,
            public_port,
            smtp_url: smtp_url.map(Into::into),
            mail_dir: get("PORTAL_MAIL_DIR")
                .unwrap_or_else(|| "var/mail".to_owned())
                .into(),
            mail_from,
            job_max_attempts: number("PORTAL_JOB_MAX_ATTEMPTS", 8, 1, 100)? as u32,
            job_retry_base: std::time::Duration::from_millis(number(
                "PORTAL_JOB_RETRY_BASE_MS",
                2000,
                1,
                3_600_000,
            )?),
            job_concurrency: number("PORTAL_JOB_CONCURRENCY", 32, 1, 1024)? as usize,
            record_cache_mb: number("PORTAL_RECORD_CACHE_MB", 64, 0, 65_536)?,
            job_lease: std::time::Duration::from_millis(number(
                "PORTAL_JOB_LEASE_MS",
                60_000,
                300,
                3_600_000,
            )?),
            job_poll: std::time::Duration::from_millis(number(
                "PORTAL_JOB_POLL_MS",
                1000,
                50,
                60_000,
            )?),
            job_reconcile_after: std::time::Duration::from_millis(number(
                "PORTAL_JOB_RECONCILE_AFTER_MS",
                300_000,
                100,
                86_400_000,
            )?),
            demo_password: get("PORTAL_DEMO_PASSWORD")
                .unwrap_or_else(|| DEFAULT_DEMO_PASSWORD.to_owned())
                .into(),
            database_url: database_url.into(),
            database_admin_url: database_admin_url.map(Into::into),
            database_pool_size,
            redis_url: redis_url.into(),
            redis_prefix,
            http_addr,
            base_domain,
            dev: flag("PORTAL_DEV")?,
            log_json,
            trusted_proxies,
            master_key,
        })
    }

    /// The app's connection. JIT compilation is off: the portal's statements are short, and
    /// a mis-estimated one (a union over a clinic's payments) was compiled for a second on
    /// every call, five times its run (docs/BENCHMARKS.md, bills).
    pub fn database_options(&self) -> Result<PgConnectOptions, ConfigError> {
        PgConnectOptions::from_str(self.database_url.expose_secret())
            .map(|o| o.options([("jit", "off")]))
            .map_err(|e| ConfigError::Invalid {
                var: "PORTAL_DATABASE_URL",
                reason: e.to_string(),
            })
    }

    /// The admin connection, required by commands that change the control plane.
    pub fn admin_options(&self) -> Result<PgConnectOptions, ConfigError> {
        let url = self
            .database_admin_url
            .as_ref()
            .ok_or(ConfigError::Missing("PORTAL_DATABASE_ADMIN_URL"))?;
        PgConnectOptions::from_str(url.expose_secret()).map_err(|e| ConfigError::Invalid {
            var: "PORTAL_DATABASE_ADMIN_URL",
            reason: e.to_string(),
        })
    }

    /// The application's login role, which `portal migrate` creates and clinics' roles admit.
    pub fn app_role(&self) -> Result<String, ConfigError> {
        Ok(self.database_options()?.get_username().to_owned())
    }

    /// The public host of a site, with the port when it is not 80: `sunrise.localhost:8080`
    /// for a clinic, `localhost:8080` for the platform itself.
    pub fn public_host(&self, slug: Option<&str>) -> String {
        let port = self.http_addr.port();
        let port = if port == 80 {
            String::new()
        } else {
            format!(":{port}")
        };
        match slug {
            Some(slug) => format!("{slug}.{}{port}", self.base_domain),
            None => format!("{}{port}", self.base_domain),
        }
    }

    /// A development deployment on `localhost` (plain HTTP).
    pub fn is_local(&self) -> bool {
        self.base_domain == "localhost" || self.base_domain.ends_with(".localhost")
    }

    /// How links to the sites are built; `bound_port` is the server's real port when it was
    /// configured as port 0.
    pub fn links(&self, bound_port: Option<u16>) -> portal_domain::links::Links {
        portal_domain::links::Links {
            scheme: self.public_scheme.clone(),
            base_domain: self.base_domain.clone(),
            port: self
                .public_port
                .or(if self.is_local() { bound_port } else { None }),
        }
    }

    /// The public address of a clinic's site, for printing (e.g. `http://sunrise.localhost:8080`).
    pub fn clinic_url(&self, slug: &str) -> String {
        format!("http://{}", self.public_host(Some(slug)))
    }
}

fn check_pg_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("must start with postgres://".into());
    }
    PgConnectOptions::from_str(url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const OK: &[(&str, &str)] = &[
        (
            "PORTAL_DATABASE_URL",
            "postgres://portal_app:s3cret-pw@127.0.0.1:5432/portal",
        ),
        ("PORTAL_REDIS_URL", "redis://127.0.0.1:6379"),
        (
            "PORTAL_MASTER_KEY",
            "1+vFLT7Kqpae3PODVY9h/AEzUhsvCBwRHN0UsPIQrjs=",
        ),
    ];

    fn with(extra: (&str, &str)) -> Result<Config, ConfigError> {
        let mut v = vars(OK);
        v.retain(|(k, _)| k != extra.0);
        v.push((extra.0.to_owned(), extra.1.to_owned()));
        Config::from_vars(v)
    }

    #[test]
    fn defaults_apply_and_secrets_stay_out_of_debug() {
        let c = Config::from_vars(vars(OK)).ok();
        let c = c.as_ref();
        assert_eq!(
            c.map(|c| c.http_addr.to_string()),
            Some("127.0.0.1:8080".into())
        );
        assert_eq!(c.map(|c| c.base_domain.as_str()), Some("localhost"));
        assert_eq!(c.and_then(|c| c.app_role().ok()), Some("portal_app".into()));
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
        assert!(!debug.contains("1+vFLT7K"), "{debug}");
    }

    #[test]
    fn stripe_keys_come_in_pairs_and_never_travel_in_the_clear() {
        let stripe = |base: &str| {
            let mut v = vars(OK);
            v.push(("PORTAL_STRIPE_SECRET_KEY".into(), "sk_test_abc".into()));
            v.push(("PORTAL_STRIPE_WEBHOOK_SECRET".into(), "whsec_abc".into()));
            v.push(("PORTAL_STRIPE_BASE_URL".into(), base.into()));
            Config::from_vars(v)
        };
        let c = stripe("http://127.0.0.1:12111").ok();
        assert!(c.as_ref().and_then(|c| c.stripe.as_ref()).is_some());
        assert!(!format!("{c:?}").contains("sk_test_abc"));
        assert!(stripe("https://api.stripe.com/").is_ok());
        assert!(stripe("http://localhost:12111").is_ok());
        for bad in [
            "http://stripe.example.com",
            "http://127.0.0.1.evil.example",
            "ftp://x",
        ] {
            assert!(
                matches!(
                    stripe(bad),
                    Err(ConfigError::Invalid {
                        var: "PORTAL_STRIPE_BASE_URL",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            with(("PORTAL_STRIPE_SECRET_KEY", "sk_test_abc")).err(),
            Some(ConfigError::Missing("PORTAL_STRIPE_WEBHOOK_SECRET"))
        );
        assert!(Config::from_vars(vars(OK)).is_ok_and(|c| c.stripe.is_none()));
    }

    #[test]
    fn nothing_starts_without_a_master_key() {
        let mut v = vars(OK);
        v.retain(|(k, _)| k != "PORTAL_MASTER_KEY");
        assert_eq!(
            Config::from_vars(v).err(),
            Some(ConfigError::Missing("PORTAL_MASTER_KEY"))
        );
    }

    #[test]
    fn each_bad_variable_is_named() {
        assert_eq!(
            Config::from_vars(vec![]).err(),
            Some(ConfigError::Missing("PORTAL_DATABASE_URL"))
        );
        let cases = [
            ("PORTAL_DATABASE_URL", "mysql://x"),
            ("PORTAL_REDIS_URL", "http://nope"),
            ("PORTAL_HTTP_ADDR", "localhost"),
            ("PORTAL_BASE_DOMAIN", "bad domain"),
            ("PORTAL_DATABASE_POOL_SIZE", "0"),
            ("PORTAL_DEV", "maybe"),
            ("PORTAL_LOG_FORMAT", "xml"),
            ("PORTAL_MASTER_KEY", "CHANGE-ME"),
            (
                "PORTAL_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ];
        for (var, value) in cases {
            match with((var, value)) {
                Err(ConfigError::Invalid { var: named, .. }) => assert_eq!(named, var),
                other => panic!("{var}={value} gave {other:?}"),
            }
        }
    }
}
