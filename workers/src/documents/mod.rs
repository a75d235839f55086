//! The document jobs: `document.render` prints a requested document with typst and stores it
//! sealed, and `blob.sweep` deletes a blob whose row never committed.

pub mod render;

use portal_domain::audit::{self, Action, AuditContext, AuditEvent};
use portal_domain::billing::print::{self, PayLinks};
use portal_domain::documents::printout::{self, Letterhead, PrintoutError, Section};
use portal_domain::documents::store::{self, Stored};
use portal_domain::documents::{MediaType, VaultError, vault};
use portal_domain::ids::DocumentId;
use portal_domain::record::chart::{self, Chart};
use portal_domain::scheduling::clinic_tz;
use portal_tenants::{Registry, Tenant};
use sha2::{Digest, Sha256};

pub use render::{Pdf, RenderError, Renderer};

use crate::Deps;
use crate::handlers::JobError;

/// The one template every generated document is laid out with.
pub const TEMPLATE: &str = include_str!("templates/document.typ");

/// What the person reads when a document could not be prepared after every attempt.
pub const FAILED: &str =
    "We could not prepare this document. Try again; if it fails again, call the clinic.";

impl From<VaultError> for JobError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Database(e) => e.into(),
            VaultError::Store(e) => JobError::Retry(format!("document store: {e}")),
            other => JobError::Retry(format!("vault: {other}")),
        }
    }
}

impl From<RenderError> for JobError {
    fn from(e: RenderError) -> Self {
        match e {
            // The machine may have been busy: another attempt may finish in time.
            RenderError::Timeout(_) | RenderError::Threads(_) => JobError::Retry(e.to_string()),
            // The same template and data would fail the same way again.
            RenderError::Compile(_) | RenderError::Pdf(_) | RenderError::Panicked => {
                JobError::Permanent(e.to_string())
            }
        }
    }
}

/// What a document prints from.
enum Source {
    Chart(Box<Chart>, Option<String>),
    Bills(Vec<Section>),
}

pub(crate) async fn render_job(
    deps: &Deps,
    tenant: &Tenant,
    id: DocumentId,
) -> Result<(), JobError> {
    let now = deps.clock.now();
    // The clinic's system reads the record for the document; the person's request was
    // audited when they made it.
    let ctx = AuditContext::default();
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let Some(task) = store::start_render(&mut tx, id).await? else {
        tx.commit().await?;
        return Ok(());
    };
    let tz = clinic_tz(tenant);
    // Statements and receipts print from the bills; everything else from the chart.
    let source = if task.kind.is_billing() {
        let links = PayLinks {
            bills: deps.links.clinic(tenant.slug(), "/bills"),
            guest: deps.links.clinic(tenant.slug(), "/pay"),
        };
        let subject = task
            .subject
            .ok_or_else(|| JobError::Permanent("a bill document without its subject".into()))?;
        let sections = print::sections(&mut tx, task.kind, subject, &links, tz)
            .await?
            .ok_or_else(|| JobError::Permanent("what the document prints is gone".into()))?;
        Source::Bills(sections)
    } else {
        let chart = chart::for_printout(&mut tx, &ctx, task.patient, now).await?;
        let template = match task.kind {
            portal_domain::documents::Kind::ReferralLetter => {
                Some(portal_domain::documents::letters::referral_template(&mut tx).await?)
            }
            _ => None,
        };
        Source::Chart(Box::new(chart), template)
    };
    let person = match printout::person(&mut tx, task.patient).await {
        Ok(p) => p,
        Err(PrintoutError::Database(e)) => return Err(e.into()),
        Err(e) => return Err(JobError::Permanent(e.to_string())),
    };
    audit::record(
        &mut tx,
        &ctx,
        now,
        AuditEvent::new(Action::DocumentRender, "document")
            .resource(id)
            .patient(task.patient),
    )
    .await?;
    tx.commit().await?;

    let logo = if tenant.branding().has_logo {
        Registry::new(deps.pool.clone())
            .logo(tenant.id())
            .await
            .map_err(|_| JobError::Retry("logo lookup failed".into()))?
    } else {
        None
    };
    let logo_format = logo.as_ref().and_then(|l| match l.content_type.as_str() {
        "image/png" => Some("png"),
        "image/jpeg" => Some("jpg"),
        "image/svg+xml" => Some("svg"),
        _ => None,
    });
    let letterhead = Letterhead {
        name: tenant.display_name().to_owned(),
        colour: tenant.branding().primary_color.clone(),
        logo: logo_format,
    };
    let printout = match source {
        Source::Bills(sections) => {
            printout::assemble(task.kind, letterhead, person, sections, now, tz)
        }
        Source::Chart(chart, template) => printout::build(
            task.kind,
            letterhead,
            person,
            &chart,
            printout::Extra {
                visit: task.subject,
                letter: template.as_deref().zip(task.referral.as_ref()),
            },
            now,
            tz,
        )
        .map_err(|e| JobError::Permanent(e.to_string()))?,
    };
    let data = serde_json::to_vec(&printout)
        .map_err(|_| JobError::Permanent("document data could not be encoded".into()))?;
    let pdf = deps
        .renderer
        .render(TEMPLATE, data, logo_format.and(logo).map(|l| l.bytes), now)
        .await?;

    let name = store::blob_name(id)?;
    let key = deps
        .vault
        .prepare(&deps.tenant_db, tenant, &name, now)
        .await?;
    deps.vault.put(&key, tenant.id(), &name, &pdf.bytes).await?;
    let stored = Stored {
        blob: name,
        media_type: MediaType::Pdf,
        size_bytes: pdf.bytes.len() as i64,
        sha256: Sha256::digest(&pdf.bytes).into(),
    };
    let mut tx = deps.tenant_db.begin(tenant).await?;
    let finished = store::finish_render(
        &mut tx,
        id,
        &stored,
        &printout.digest,
        i32::try_from(pdf.pages).unwrap_or(i32::MAX),
        deps.clock.now(),
    )
    .await;
    match finished {
        Ok(()) => {
            tx.commit().await?;
            Ok(())
        }
        Err(e) => {
            drop(tx);
            if matches!(e, store::DocumentError::Vault(VaultError::Swept)) {
                vault::discard(deps.vault.store(), tenant.id(), &stored.blob).await;
            }
            Err(match e {
                store::DocumentError::Database(e) => JobError::from(e),
                other => JobError::Retry(other.to_string()),
            })
        }
    }
}

/// The render's last attempt failed: the document says so, with its "Try again" button.
pub(crate) async fn render_failed(
    deps: &Deps,
    tenant: &Tenant,
    id: DocumentId,
) -> Result<(), JobError> {
    let mut tx = deps.tenant_db.begin(tenant).await?;
    store::fail_render(&mut tx, id, FAILED).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn sweep_job(deps: &Deps, tenant: &Tenant, blob: &str) -> Result<(), JobError> {
    let swept = vault::sweep(&deps.tenant_db, tenant, deps.vault.store(), blob).await?;
    if swept == vault::Swept::Deleted {
        tracing::info!("a blob whose row never committed was deleted");
    }
    Ok(())
}
