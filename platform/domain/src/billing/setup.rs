//! The clinic's payments set-up: its own Stripe account (Connect), as Stripe last described
//! it. An administrator connects it; Stripe's `account.updated` events (and the return from
//! onboarding) keep the description current.

use chrono::{DateTime, Utc};
use portal_stripe::AccountState;
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;

/// Where the clinic's set-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No Stripe account yet.
    NotConnected,
    /// Connected; Stripe still needs details before cards can be taken.
    Pending,
    /// Cards are taken and paid out.
    Enabled,
    /// Stripe has stopped charges or payouts until something is fixed.
    Restricted,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::NotConnected => "Not connected",
            Stage::Pending => "Pending",
            Stage::Enabled => "Enabled",
            Stage::Restricted => "Restricted",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Stage::NotConnected => "not_connected",
            Stage::Pending => "pending",
            Stage::Enabled => "enabled",
            Stage::Restricted => "restricted",
        }
    }
}

/// The clinic's set-up as stored.
#[derive(Debug, Clone)]
pub struct Setup {
    pub account: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements_due: Vec<String>,
    pub disabled_reason: Option<String>,
}

impl Setup {
    pub fn stage(&self) -> Stage {
        match &self.account {
            None => Stage::NotConnected,
            Some(_) if self.charges_enabled && self.payouts_enabled => Stage::Enabled,
            // Onboarding not finished: Stripe lists what it needs (a new account is
            // "disabled" until then, which is not a restriction).
            Some(_) if !self.details_submitted => Stage::Pending,
            Some(_) => Stage::Restricted,
        }
    }
}

pub async fn read(tx: &mut TenantTx) -> Result<Setup, sqlx::Error> {
    let r = sqlx::query!(
        "SELECT stripe_account, charges_enabled, payouts_enabled, details_submitted,
                requirements_due, disabled_reason
         FROM payment_settings"
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(Setup {
        account: r.stripe_account,
        charges_enabled: r.charges_enabled,
        payouts_enabled: r.payouts_enabled,
        details_submitted: r.details_submitted,
        requirements_due: r.requirements_due,
        disabled_reason: r.disabled_reason,
    })
}

/// The account cards are charged to, when it may take them.
pub(crate) async fn charging_account(tx: &mut TenantTx) -> Result<Option<String>, sqlx::Error> {
    let s = read(tx).await?;
    Ok(s.account.filter(|_| s.charges_enabled))
}

/// Records the clinic's new Stripe account: in its own settings, and in the platform's map
/// from account to clinic (stamped with this clinic by the database), which routes Stripe's
/// events here.
pub async fn connect(
    tx: &mut TenantTx,
    _scope: &AdminScope,
    ctx: &AuditContext,
    state: &AccountState,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        // No conflict target: the clinic's role may insert here but not read (which naming
        // one would need); a second click records the same account, which changes nothing.
        "INSERT INTO control.stripe_accounts (account_id, tenant_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        state.id,
        // Replaced by the trigger with the clinic of the role doing the insert.
        uuid::Uuid::nil(),
    )
    .execute(tx.conn())
    .await?;
    store(tx, state, now).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PaymentsConnect, "payment_settings").resource(&state.id),
    )
    .await
}

/// Brings the stored description up to date with Stripe's (only for the clinic's own account).
pub async fn refresh(
    tx: &mut TenantTx,
    state: &AccountState,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let ours = read(tx).await?.account;
    if ours.as_deref() == Some(state.id.as_str()) {
        store(tx, state, now).await?;
    }
    Ok(())
}

async fn store(
    tx: &mut TenantTx,
    state: &AccountState,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payment_settings
         SET stripe_account = $1, charges_enabled = $2, payouts_enabled = $3,
             details_submitted = $4, requirements_due = $5, disabled_reason = $6,
             updated_at = $7",
        state.id,
        state.charges_enabled,
        state.payouts_enabled,
        state.details_submitted,
        &state.requirements_due,
        state.disabled_reason,
        now,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
