//! Signing in and out, and changing a password while signed in.

use chrono::{DateTime, Duration, Utc};
use portal_tenants::TenantTx;

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
    Throttled { retry_after: Duration },
}

/// Checks the credentials and starts a session. Failures are recorded (for throttling and the
/// audit trail), so the caller commits the transaction whatever the outcome.
pub async fn sign_in(
    tx: &mut TenantTx,
    raw_email: &str,
    candidate: &str,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<SignInOutcome, sqlx::Error> {
    let key = throttle::account_key(raw_email);
    let client = ctx.client_addr.clone().unwrap_or_default();
    if let Err(wait) = throttle::check(tx, &key, &client, now).await? {
        return Ok(SignInOutcome::Throttled { retry_after: wait });
    }
    let account = match EmailAddress::parse(raw_email) {
        Ok(email) => accounts::by_email(tx, &email).await?,
        Err(_) => None,
    }
    .filter(|a| a.status == AccountStatus::Active);
    let ok = password::verify(
        candidate,
        account.as_ref().and_then(|a| a.password_hash.as_deref()),
    )
    .await;
    match account {
        Some(a) if ok => {
            throttle::clear_account(tx, &key).await?;
            Ok(SignInOutcome::SignedIn(
                open_session(tx, &a, ctx, now).await?,
            ))
        }
        other => {
            throttle::record_failure(tx, &key, &client, now).await?;
            let mut event = AuditEvent::new(Action::SigninFailed, "account");
            if let Some(a) = other {
                event = event.resource(a.id);
            }
            audit::record(tx, ctx, now, event).await?;
            Ok(SignInOutcome::Failed)
        }
    }
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
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// Changes the password after checking the current one, and signs out every other session.
pub async fn change_password(
    tx: &mut TenantTx,
    me: &SignedIn,
    current: &str,
    new: &NewPassword,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<(), ChangePasswordError> {
    let account = accounts::by_id(tx, me.user_id).await?;
    let stored = account.as_ref().and_then(|a| a.password_hash.as_deref());
    if !password::verify(current, stored).await {
        return Err(ChangePasswordError::WrongCurrent);
    }
    let hash = password::hash(new).await?;
    accounts::set_password(tx, me.user_id, &hash, now).await?;
    sessions::end_all(tx, me.user_id, Some(me.session_id), now).await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::PasswordChange, "user").resource(me.user_id),
    )
    .await?;
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
