//! `portal`: the one binary. `serve` the web and API, `work` the background jobs, `migrate` the
//! databases, manage `tenants`, seed the `demo`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use portal::tenants::{CreateArgs, describe, provisioner};
use portal::{Config, demo, migrate, serve, work};
use portal_domain::clock::{SharedClock, SystemClock};
use portal_tenants::{DomainName, Registry, Slug, TenantStatus};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "portal", version, about = "Patient portal platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the clinics' sites and the API (with --with-workers, the background jobs too).
    Serve {
        #[arg(long)]
        with_workers: bool,
    },
    /// Run the background workers.
    Work,
    /// Apply control-plane migrations, then tenant migrations to every clinic.
    Migrate {
        /// How many clinic schemas to migrate at once.
        #[arg(long, default_value_t = 4)]
        parallelism: usize,
    },
    /// Create, list, suspend and resume clinics; manage their domains.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Jobs that ran out of attempts: list them, or send them again.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// A clinic's API keys (for its EHR's FHIR import): create one (printed once), list,
    /// revoke.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Create (or refresh) the two demo clinics.
    Demo {
        /// Print a machine-readable manifest of what exists.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List dead jobs (newest last).
    Dead {
        #[arg(long)]
        json: bool,
    },
    /// List jobs held because their clinic is suspended (they go out when it is resumed).
    Held {
        #[arg(long)]
        json: bool,
    },
    /// Put dead jobs back in the queue with fresh attempts.
    Retry {
        /// The job id (`job_…`) to retry.
        job: Option<String>,
        /// Retry every dead job.
        #[arg(long, conflicts_with = "job")]
        all: bool,
    },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Provision a clinic: its schema, its database role, its migrations.
    Create(CreateCmd),
    /// List clinics.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Close a clinic's portal (its data stays; its site says it is not available).
    Suspend { slug: String },
    /// Reopen a suspended clinic's portal.
    Resume { slug: String },
    /// Register a custom domain for a clinic (it routes once verified).
    AddDomain { slug: String, domain: String },
    /// Mark a clinic's custom domain verified, after checking its DNS points at the platform.
    VerifyDomain { slug: String, domain: String },
    /// Give a clinic its own text-message number (E.164, e.g. +15551230000), or `none` to
    /// text from the platform's shared number again.
    SetSmsNumber { slug: String, number: String },
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Make a key; it is printed once and kept only as a hash.
    Create {
        #[arg(long)]
        clinic: String,
        /// What will use it, e.g. "Epic nightly export".
        #[arg(long)]
        name: String,
    },
    /// List a clinic's keys (never the keys themselves).
    List {
        #[arg(long)]
        clinic: String,
    },
    /// Revoke a key by its id; it stops working at once.
    Revoke {
        #[arg(long)]
        clinic: String,
        id: String,
    },
}

#[derive(Args)]
struct CreateCmd {
    #[arg(long)]
    slug: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    time_zone: String,
    #[arg(long, default_value = "#1f3a5f")]
    primary_color: String,
    #[arg(long, default_value = "#2a7f62")]
    accent_color: String,
    /// Sender name on emails and SMS (defaults to the clinic's name).
    #[arg(long)]
    sender_name: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter =
        EnvFilter::try_from_env("PORTAL_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[allow(clippy::print_stdout)] // printing is this command-line tool's job
async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { with_workers } => {
            if !with_workers && config.database_admin_url.is_some() {
                tracing::warn!(
                    "PORTAL_DATABASE_ADMIN_URL is set but `serve` never uses it: remove it from \
                     the web's environment (only `work` and operators' commands need it)"
                );
            }
            let clock: SharedClock = Arc::new(SystemClock);
            let running = serve::start(&config, clock.clone(), serve::shutdown_signal()).await?;
            tracing::info!(addr = %running.addr, base_domain = %config.base_domain, "serving");
            println!(
                "Serving on http://{} — clinics at {}",
                running.addr,
                config.clinic_url("<slug>")
            );
            if with_workers {
                let deps = work::deps(&config, clock, Some(running.addr.port())).await?;
                tokio::spawn(portal_workers::run(deps, serve::shutdown_signal()));
            }
            running.handle.await??;
        }
        Command::Work => work::run(&config, serve::shutdown_signal()).await?,
        Command::Migrate { parallelism } => {
            let report = migrate::run(&config, parallelism).await?;
            println!(
                "control plane up to date; clinics: {} migrated, {} already up to date, {} failed",
                report.migrated.len(),
                report.up_to_date,
                report.failed.len()
            );
            for (slug, error) in &report.failed {
                println!("  failed: {slug}: {error}");
            }
            if !report.failed.is_empty() {
                anyhow::bail!(
                    "{} clinic(s) failed to migrate; re-run `portal migrate` after fixing",
                    report.failed.len()
                );
            }
        }
        Command::Tenants(cmd) => tenants(cmd, &config).await?,
        Command::ApiKeys(cmd) => api_keys(cmd, &config).await?,
        Command::Jobs(cmd) => {
            let admin = portal::pools::admin_pool(&config).await?;
            match cmd {
                JobsCommand::Dead { json } | JobsCommand::Held { json } => {
                    let held = matches!(cmd, JobsCommand::Held { .. });
                    let dead = if held {
                        portal_workers::dead::held(&admin).await?
                    } else {
                        portal_workers::dead::list(&admin).await?
                    };
                    if json {
                        println!("{}", serde_json::to_string_pretty(&dead)?);
                    } else if dead.is_empty() {
                        println!("no {} jobs", if held { "held" } else { "dead" });
                    } else {
                        for d in &dead {
                            println!(
                                "{}  {:<22} {:<16} attempts {:<3} {}  {}",
                                d.job_id,
                                d.kind,
                                d.tenant,
                                d.attempts,
                                d.failed_at.format("%Y-%m-%d %H:%M:%S"),
                                d.last_error.as_deref().unwrap_or("")
                            );
                        }
                    }
                }
                JobsCommand::Retry { job, all } => {
                    let id = match (job, all) {
                        (Some(j), false) => Some(
                            portal_domain::ids::JobId::parse(&j)
                                .ok_or_else(|| anyhow::anyhow!("'{j}' is not a job id (job_…)"))?
                                .as_uuid(),
                        ),
                        (None, true) => None,
                        _ => anyhow::bail!("name a job id, or pass --all"),
                    };
                    let n = portal_workers::dead::retry(&admin, id).await?;
                    println!("{n} job(s) queued again");
                }
            }
        }
        Command::Demo { json } => {
            let manifest = demo::run(&config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&manifest)?);
            } else {
                println!("Demo clinics ready. Platform: {}", manifest.platform_url);
                for t in &manifest.tenants {
                    println!("  {:<26} {}", t.name, t.url);
                }
                println!(
                    "Demo accounts (password from PORTAL_DEMO_PASSWORD, default \"{}\"):",
                    portal::config::DEFAULT_DEMO_PASSWORD
                );
                for u in &manifest.users {
                    println!("  {:<10} {:<34} {}", u.tenant, u.email, u.role);
                }
            }
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn api_keys(cmd: ApiKeysCommand, config: &Config) -> anyhow::Result<()> {
    use portal_domain::audit::AuditContext;
    use portal_domain::clock::Clock as _;
    use portal_domain::identity::api_keys;
    let slug = match &cmd {
        ApiKeysCommand::Create { clinic, .. }
        | ApiKeysCommand::List { clinic }
        | ApiKeysCommand::Revoke { clinic, .. } => clinic.clone(),
    };
    let registry = Registry::new(portal::pools::admin_pool(config).await?);
    let tenant = registry
        .by_slug(&slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no clinic {slug}"))?;
    let db = portal_tenants::TenantDb::new(portal::pools::app_pool(config).await?);
    let mut tx = db.begin(&tenant).await?;
    let now = portal_domain::clock::SystemClock.now();
    let ctx = AuditContext::default();
    match cmd {
        ApiKeysCommand::Create { name, .. } => {
            let (id, key) = api_keys::create(&mut tx, None, &ctx, &name, now).await?;
            tx.commit().await?;
            println!("created key {id} for {slug}; it is shown only now:\n{key}");
        }
        ApiKeysCommand::List { .. } => {
            let keys = portal_domain::identity::api_keys::list_all(&mut tx).await?;
            tx.commit().await?;
            for k in keys {
                let state = match k.revoked_at {
                    Some(t) => format!("revoked {}", t.format("%Y-%m-%d")),
                    None => "active".to_owned(),
                };
                println!("{}  {}…  {}  {}", k.id, k.prefix, state, k.name);
            }
        }
        ApiKeysCommand::Revoke { id, .. } => {
            let id = uuid::Uuid::try_parse(&id).map_err(|_| anyhow::anyhow!("not a key id"))?;
            let done = api_keys::revoke(&mut tx, None, &ctx, id, now).await?;
            tx.commit().await?;
            if !done {
                anyhow::bail!("no active key {id} in {slug}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn tenants(cmd: TenantsCommand, config: &Config) -> anyhow::Result<()> {
    let p = provisioner(config).await?;
    match cmd {
        TenantsCommand::Create(c) => {
            let new = CreateArgs {
                slug: c.slug,
                name: c.name,
                time_zone: c.time_zone,
                primary_color: c.primary_color,
                accent_color: c.accent_color,
                sender_name: c.sender_name,
            }
            .parse()?;
            let t = p.create(new).await?;
            println!("created {} — {}", t.slug(), config.clinic_url(t.slug()));
        }
        TenantsCommand::List { json } => {
            let list = Registry::new(portal::pools::admin_pool(config).await?)
                .list()
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in &list {
                    println!("{}", describe(config, t));
                }
            }
        }
        TenantsCommand::Suspend { slug } => {
            let t = p
                .set_status(&Slug::parse(&slug)?, TenantStatus::Suspended)
                .await?;
            println!("suspended {}", t.slug());
        }
        TenantsCommand::Resume { slug } => {
            let t = p
                .set_status(&Slug::parse(&slug)?, TenantStatus::Active)
                .await?;
            println!("resumed {}", t.slug());
        }
        TenantsCommand::AddDomain { slug, domain } => {
            let domain = DomainName::parse(&domain)?;
            p.add_domain(&Slug::parse(&slug)?, &domain).await?;
            println!(
                "added {} (pending verification: point its DNS here, then run verify-domain)",
                domain.as_str()
            );
        }
        TenantsCommand::VerifyDomain { slug, domain } => {
            let domain = DomainName::parse(&domain)?;
            p.verify_domain(&Slug::parse(&slug)?, &domain).await?;
            println!("verified {}", domain.as_str());
        }
        TenantsCommand::SetSmsNumber { slug, number } => {
            let number = match number.trim() {
                "none" | "" => None,
                raw => Some(
                    portal_domain::values::PhoneE164::parse(raw)
                        .map_err(|e| anyhow::anyhow!("{}", e.0))?,
                ),
            };
            let t = p
                .set_sms_number(&Slug::parse(&slug)?, number.as_ref().map(|n| n.as_str()))
                .await?;
            match t.sms_number() {
                Some(n) => println!("{} now texts from {n}", t.slug()),
                None => println!("{} now texts from the platform's number", t.slug()),
            }
        }
    }
    Ok(())
}
