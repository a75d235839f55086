use std::path::PathBuf;

use portal_domain::clock::SharedClock;
use portal_tenants::{HostResolver, Registry, TenantDb};

/// What handlers share. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub tenant_db: TenantDb,
    pub registry: Registry,
    pub resolver: HostResolver,
    pub redis: redis::Client,
    pub clock: SharedClock,
    pub cookies: CookiePolicy,
    /// The dev mailbox's directory: `Some` only with `PORTAL_DEV=1` and mail kept in files.
    pub dev_mailbox: Option<PathBuf>,
    /// How the public reaches the sites (for links shown after sign-up).
    pub links: portal_domain::links::Links,
    /// The SMS provider's auth token, which signs its webhook calls; `None` turns the
    /// inbound SMS webhook off.
    pub sms_webhook_token: Option<secrecy::SecretString>,
    /// Peers whose `X-Forwarded-For` names the client (`PORTAL_TRUSTED_PROXIES`).
    pub trusted_proxies: std::sync::Arc<[ipnet::IpNet]>,
    /// The platform's shared text-message number (clinics without their own text from it).
    pub sms_platform_number: String,
    /// Rate limits on unauthenticated work, counted in Redis across processes.
    pub limiter: std::sync::Arc<crate::limits::Limiter>,
    /// The document store, sealed with each clinic's key.
    pub vault: portal_domain::documents::Vault,
    /// Card payments: the platform's Stripe client and the secret its webhooks are signed
    /// with. `None`: the deployment takes no card payments.
    pub stripe: Option<Payments>,
    /// Recently viewed health summaries and trends (`PORTAL_RECORD_CACHE_MB`).
    pub record_cache: portal_domain::record::cache::RecordCache,
}

/// The platform's Stripe client and webhook secret.
#[derive(Clone)]
pub struct Payments {
    pub client: portal_stripe::Stripe,
    pub webhook_secret: secrecy::SecretString,
    /// The clinic each connected account belongs to (the webhook asks for every event).
    pub clinics: portal_tenants::ClinicsByStripeAccount,
    /// Origins of Stripe's own pages, which forms may lead to (`form-action`).
    pub page_origins: Vec<String>,
    /// Events this process kept (the webhook answers their second delivery from memory).
    pub kept: crate::stripe_webhook::KeptEvents,
    /// Each clinic's committer of Stripe events (a burst's deliveries share a commit).
    pub inbox: crate::stripe_group_commit::GroupCommit,
}

impl AppState {
    /// `scheme://slug.base[:port]` of a clinic's site.
    pub fn public_origin(&self, slug: &str) -> String {
        self.links.clinic(slug, "")
    }
}

/// How cookies are set. `Secure` and the `__Host-` prefix are dropped only for a development
/// deployment on `localhost`, where the site is plain HTTP.
#[derive(Clone, Copy, Debug)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-portal_session"
        } else {
            "portal_session"
        }
    }

    pub fn csrf_name(self) -> &'static str {
        if self.secure {
            "__Host-portal_csrf"
        } else {
            "portal_csrf"
        }
    }

    /// A statement's payment code, from a `/pay/code/…` link (kept apart from emailed links).
    pub fn pay_code_name(self) -> &'static str {
        if self.secure {
            "__Host-portal_paycode"
        } else {
            "portal_paycode"
        }
    }

    /// The guest payment this browser started (only it may see how it ended).
    pub fn paid_name(self) -> &'static str {
        if self.secure {
            "__Host-portal_paid"
        } else {
            "portal_paid"
        }
    }

    pub fn link_name(self) -> &'static str {
        if self.secure {
            "__Host-portal_link"
        } else {
            "portal_link"
        }
    }

    /// A `Set-Cookie` value: host-only, path `/`, HttpOnly, SameSite=Lax (Strict would drop
    /// the session when a patient follows a link from their email).
    pub fn set(self, name: &str, value: &str, max_age_secs: Option<i64>) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age_secs {
            c.push_str(&format!("; Max-Age={age}"));
        }
        c
    }

    pub fn clear(self, name: &str) -> String {
        self.set(name, "", Some(0))
    }
}
