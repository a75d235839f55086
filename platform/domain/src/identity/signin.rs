//! Signing in and out, and changing a password while signed in.

use chrono::{DateTime, Duration, Utc};
use portal_tenants::{Tenant, TenantDb, TenantTx};

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::accounts::{self, AccountStatus};
use crate::identity::password::{self, NewPassword};
use crate::identity::scope::SignedIn;
use crate::identity::sessions::{self, NewSession};
use crate::identity::throttle;
use crate::values::EmailAddress;

/// How a sign-in attempt ended. An unknown email and a wrong password are the same `Failed`,
/// and cost the same time (a real Argon2id verification either way).
#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(NewSession),
    Failed,
    /// Too many recent failures for this account or address.
    Throttled {
        retry_after: Duration,
    },
    /// Every password-checking slot stayed busy: nothing was checked or counted.
    Busy,
}

/// Checks the credentials and starts a session, in three steps that never hold a database
/// connection across Argon2: take a hashing slot; claim the attempt (throttle check and count,
/// one short transaction) and read the account; verify; then settle (clear the count and open
/// a session, or audit the failure) in a second short transaction.
pub async fn sign_in(
    db: &TenantDb,
    tenant: &Tenant,
    raw_email: &str,
    candidate: &str,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<SignInOutcome, sqlx::Error> {
    let Ok(slot) = password::slot(password::SLOT_WAIT).await else {
        return Ok(SignInOutcome::Busy);
    };
    let key = throttle::account_key(raw_email);
    let client = ctx.client_addr.clone().unwrap_or_default();
    let mut tx = db.begin(tenant).await?;
    if let Err(wait) = throttle::claim(&mut tx, &key, &client, now).await? {
        tx.commit().await?;
        return Ok(SignInOutcome::Throttled { retry_after: wait });
    }
    let account = match EmailAddress::parse(raw_email) {
        Ok(email) => accounts::by_email(&mut tx, &email).await?,
        Err(_) => None,
    }
    .filter(|a| a.status == AccountStatus::Active);
    tx.commit().await?;

    let ok = password::verify(
        &slot,
        candidate,
        account.as_ref().and_then(|a| a.password_hash.as_deref()),
    )
    .await;
    drop(slot);

    let mut tx = db.begin(tenant).await?;
    let outcome = match account {
        Some(a) if ok => {
            throttle::clear_account(&mut tx, &key).await?;
            SignInOutcome::SignedIn(open_session(&mut tx, &a, ctx, now).await?)
        }
        other => {
            let mut event = AuditEvent::new(Action::SigninFailed, "account");
            if let Some(a) = other {
                event = event.resource(a.id);
            }
            audit::record(&mut tx, ctx, now, event).await?;
            SignInOutcome::Failed
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Signs out the current session.
pub async fn sign_out(
    tx: &mut TenantTx,
    me: &SignedIn,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sessions::end(tx, me.session_id, now).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::Signout, "session").resource(me.session_id),
    )
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error("Your current password is not correct.")]
    WrongCurrent,
    #[error("Too many wrong passwords. Try again later, or reset your password by email.")]
    Throttled { retry_after: Duration },
    #[error("The portal is busy. Try again in a moment.")]
    Busy,
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// Checks a signed-in person's current password (before changing it, or their email or
/// two-step sign-in), throttled and audited exactly like signing in: a stolen session cannot
/// guess the password faster than the sign-in form allows.
pub async fn confirm_password(
    db: &TenantDb,
    tenant: &Tenant,
    me: &SignedIn,
    current: &str,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<(), ChangePasswordError> {
    let Ok(slot) = password::slot(password::SLOT_WAIT).await else {
        return Err(ChangePasswordError::Busy);
    };
    let key = throttle::account_key(&me.email);
    let client = ctx.client_addr.clone().unwrap_or_default();
    let mut tx = db.begin(tenant).await?;
    if let Err(wait) = throttle::claim(&mut tx, &key, &client, now).await? {
        tx.commit().await?;
        return Err(ChangePasswordError::Throttled { retry_after: wait });
    }
    let stored = accounts::by_id(&mut tx, me.user_id)
        .await?
        .and_then(|a| a.password_hash);
    tx.commit().await?;
    let ok = password::verify(&slot, current, stored.as_deref()).await;
    drop(slot);
    let mut tx = db.begin(tenant).await?;
    if ok {
        throttle::clear_account(&mut tx, &key).await?;
    } else {
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::new(Action::PasswordChangeFailed, "user").resource(me.user_id),
        )
        .await?;
    }
    tx.commit().await?;
    if ok {
        Ok(())
    } else {
        Err(ChangePasswordError::WrongCurrent)
    }
}

/// Changes the password after checking the current one, and signs out every other session.
#[allow(clippy::too_many_arguments)]
pub async fn change_password(
    db: &TenantDb,
    tenant: &Tenant,
    me: &SignedIn,
    current: &str,
    new: &NewPassword,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<(), ChangePasswordError> {
    confirm_password(db, tenant, me, current, ctx, now).await?;
    let hash = password::hash(new).await?;
    let mut tx = db.begin(tenant).await?;
    accounts::set_password(&mut tx, me.user_id, &hash, now).await?;
    sessions::end_all(&mut tx, me.user_id, Some(me.session_id), now).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        AuditEvent::new(Action::PasswordChange, "user").resource(me.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Starts a session for a person who just proved who they are another way (accepting an
/// invitation), so they land signed in.
pub async fn start_for(
    tx: &mut TenantTx,
    user: crate::ids::UserId,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Option<NewSession>, sqlx::Error> {
    let Some(a) = accounts::by_id(tx, user)
        .await?
        .filter(|a| a.status == AccountStatus::Active)
    else {
        return Ok(None);
    };
    open_session(tx, &a, ctx, now).await.map(Some)
}

/// Starts a session for an account that proved who it is, and audits the sign-in.
async fn open_session(
    tx: &mut TenantTx,
    a: &accounts::Account,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<NewSession, sqlx::Error> {
    let new = sessions::start(tx, a, now).await?;
    let ctx = new
        .signed_in
        .audit(ctx.client_addr.clone(), ctx.request_id.clone());
    let mut event = AuditEvent::new(Action::Signin, "session").resource(new.signed_in.session_id);
    if let Some(p) = a.patient_id {
        event = event.patient(p);
    }
    audit::record(tx, &ctx, now, event).await?;
    Ok(new)
}
