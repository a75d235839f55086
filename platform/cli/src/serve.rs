use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use portal_domain::clock::SharedClock;
use portal_tenants::{HostResolver, Registry, TenantDb, verify_app_role};
use portal_web::{AppState, CookiePolicy};
use secrecy::ExposeSecret;

use crate::{Config, pools};

/// A web server that is listening.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds, then serves until `shutdown` completes. Refuses to start on a database role that
/// could read tenant data without acting as a clinic.
pub async fn start(
    config: &Config,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let acceptor = TcpListener::bind(config.http_addr)
        .into_acceptor()
        .await
        .with_context(|| {
            format!(
                "could not listen on {} (PORTAL_HTTP_ADDR)",
                config.http_addr
            )
        })?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("listener has no address")?;
    // The web holds only the application role: no owner credentials (clinic sign-up is
    // provisioned by a worker; a clinic changes its own branding through its own role).
    let pool = pools::app_pool(config).await?;
    verify_app_role(&pool).await.map_err(anyhow::Error::msg)?;
    let registry = Registry::new(pool.clone());
    let limiter_key = registry
        .platform_secret("limiter")
        .await?
        .context("control.platform_secrets has no limiter key: run `portal migrate`")?;
    let resolver = HostResolver::new(registry.clone(), &config.base_domain);
    resolver.spawn_invalidation_listener(pool.clone());
    let redis =
        redis::Client::open(config.redis_url.expose_secret()).context("PORTAL_REDIS_URL")?;
    let stripe = match &config.stripe {
        Some(s) => Some(portal_web::Payments {
            client: s.client()?,
            webhook_secret: s.webhook_secret.clone(),
            clinics: {
                let clinics = portal_tenants::ClinicsByStripeAccount::new(
                    registry.clone(),
                    std::time::Duration::from_secs(60),
                );
                clinics.spawn_invalidation_listener(pool.clone());
                clinics
            },
            page_origins: portal_stripe::hosted_page_origins(&s.base_url),
            kept: portal_web::KeptEvents::new(),
            inbox: portal_web::GroupCommit::new(TenantDb::new(pool.clone())),
        }),
        None => None,
    };
    let state = AppState {
        record_cache: portal_domain::record::cache::RecordCache::new(config.record_cache_mb),
        stripe,
        vault: config.vault().await?,
        tenant_db: TenantDb::new(pool),
        registry,
        resolver,
        redis: redis.clone(),
        clock,
        cookies: CookiePolicy {
            secure: !(config.dev && config.is_local()),
        },
        // Only for a development deployment on localhost: never on a public base domain, even
        // with PORTAL_DEV set by mistake.
        dev_mailbox: (config.dev && config.is_local() && config.smtp_url.is_none())
            .then(|| config.mail_dir.clone()),
        links: config.links(Some(addr.port())),
        sms_webhook_token: match &config.sms {
            portal_workers::SmsConfig::Twilio { auth_token, .. } => Some(auth_token.clone()),
            portal_workers::SmsConfig::Log(_) => None,
        },
        trusted_proxies: config.trusted_proxies.clone().into(),
        sms_platform_number: match &config.sms {
            portal_workers::SmsConfig::Twilio { from, .. } => from.clone(),
            portal_workers::SmsConfig::Log(_) => "log".to_owned(),
        },
        limiter: std::sync::Arc::new(portal_web::Limiter::new(
            redis.clone(),
            &config.redis_prefix,
            limiter_key,
        )),
    };

    let server = Server::new_with_acceptor(acceptor);
    let handle = tokio::spawn(server.run_with_graceful_shutdown(
        portal_web::app(state),
        shutdown,
        Some(Duration::from_secs(10)),
    ));
    Ok(Running { addr, handle })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
