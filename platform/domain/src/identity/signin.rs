//! Signing in and out, and changing a password while signed in.

use chrono::{DateTime, Duration, Utc};
use portal_tenants::{Tenant, TenantDb, TenantTx};

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::accounts::{self, AccountStatus};
use crate::identity::mfa;
use crate::identity::password::{self, NewPassword};
use crate::identity::scope::{SignedIn, Stage};
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
            let stage = stage_after_password(&mut tx, &a).await?;
            // With a second step still to come, the failures stay counted: clearing them here
            // would give whoever knows the password five fresh code guesses per sign-in.
            if stage != Stage::Code {
                throttle::clear_account(&mut tx, &key).await?;
            }
            SignInOutcome::SignedIn(open_session(&mut tx, &a, ctx, now, stage).await?)
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
    let stage = stage_after_password(tx, &a).await?;
    let stage = if stage == Stage::Code {
        Stage::Full
    } else {
        stage
    };
    open_session(tx, &a, ctx, now, stage).await.map(Some)
}

/// Where a right password leads: to the code page when two-step sign-in is on, to setting it
/// up when the clinic requires it and it is not on yet, else straight in.
async fn stage_after_password(
    tx: &mut TenantTx,
    a: &accounts::Account,
) -> Result<Stage, sqlx::Error> {
    if mfa::status(tx, a.id).await?.enabled {
        return Ok(Stage::Code);
    }
    if mfa::requirement(tx).await?.applies_to(a.role) {
        return Ok(Stage::Enrol);
    }
    Ok(Stage::Full)
}

/// How the second step ended.
#[derive(Debug)]
pub enum SecondStep {
    SignedIn(NewSession),
    WrongCode,
    Throttled { retry_after: Duration },
}

/// Completes a sign-in waiting for its code: a right code ends the waiting session and starts
/// a new, full one (a new token, so the half-way token is worth nothing); a wrong one counts
/// against the account exactly like a wrong password.
pub async fn complete_second_step(
    db: &TenantDb,
    tenant: &Tenant,
    pending: &SignedIn,
    code: &str,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<SecondStep, sqlx::Error> {
    let key = throttle::account_key(&pending.email);
    let client = ctx.client_addr.clone().unwrap_or_default();
    let mut tx = db.begin(tenant).await?;
    if let Err(wait) = throttle::claim(&mut tx, &key, &client, now).await? {
        tx.commit().await?;
        return Ok(SecondStep::Throttled { retry_after: wait });
    }
    let outcome = if mfa::verify(&mut tx, pending.user_id, code, ctx, now).await? {
        throttle::clear_account(&mut tx, &key).await?;
        sessions::end(&mut tx, pending.session_id, now).await?;
        match accounts::by_id(&mut tx, pending.user_id)
            .await?
            .filter(|a| a.status == AccountStatus::Active)
        {
            Some(a) => {
                SecondStep::SignedIn(open_session(&mut tx, &a, ctx, now, Stage::Full).await?)
            }
            None => SecondStep::WrongCode,
        }
    } else {
        SecondStep::WrongCode
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Ends a session that never got past its second step (the API does not keep one waiting).
pub async fn abandon(
    db: &TenantDb,
    tenant: &Tenant,
    pending: &SignedIn,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin(tenant).await?;
    sessions::end(&mut tx, pending.session_id, now).await?;
    tx.commit().await
}

/// Moves a session that had to set up two-step sign-in to a full one (a new token), once it is
/// set up.
pub async fn after_enrolment(
    tx: &mut TenantTx,
    me: &SignedIn,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<Option<NewSession>, sqlx::Error> {
    if me.stage != Stage::Enrol {
        return Ok(None);
    }
    sessions::end(tx, me.session_id, now).await?;
    let Some(a) = accounts::by_id(tx, me.user_id)
        .await?
        .filter(|a| a.status == AccountStatus::Active)
    else {
        return Ok(None);
    };
    open_session(tx, &a, ctx, now, Stage::Full).await.map(Some)
}

/// Starts a session for an account that proved who it is, and audits the sign-in (a session
/// still waiting for its code is audited when the code arrives).
async fn open_session(
    tx: &mut TenantTx,
    a: &accounts::Account,
    ctx: &AuditContext,
    now: DateTime<Utc>,
    stage: Stage,
) -> Result<NewSession, sqlx::Error> {
    let new = sessions::start(tx, a, now, stage).await?;
    if stage == Stage::Code {
        return Ok(new);
    }
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
