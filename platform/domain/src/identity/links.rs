//! Single-use links sent by email: invitations (valid 7 days; patients confirm their date of
//! birth) and password resets (valid 30 minutes). The worker that sends the email creates the
//! token, so only its hash is ever stored.

use chrono::{DateTime, NaiveDate, Utc};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::accounts::{self, AccountStatus};
use crate::identity::password::{self, NewPassword};
use crate::identity::tokens::{SecretToken, hash_token, looks_like_token};
use crate::identity::{INVITATION_TTL, RESET_TTL, Role, sessions, throttle};
use crate::ids::UserId;
use crate::jobs::{self, EnqueueError, Job};
use crate::values::{DateOfBirth, EmailAddress};

/// Wrong dates of birth tolerated on one invitation before it is spent.
pub const MAX_DOB_FAILURES: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Invitation,
    PasswordReset,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// Creates a fresh link token for `user` (earlier unused links of the same kind stop working).
/// `None` when the user no longer needs one (already active for an invitation, not active for
/// a reset, or gone): the email is then not sent.
pub async fn issue(
    tx: &mut TenantTx,
    user: UserId,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<Option<(SecretToken, String)>, sqlx::Error> {
    let Some(account) = accounts::by_id(tx, user).await? else {
        return Ok(None);
    };
    let wanted = match purpose {
        LinkPurpose::Invitation => AccountStatus::Invited,
        LinkPurpose::PasswordReset => AccountStatus::Active,
    };
    if account.status != wanted {
        return Ok(None);
    }
    sqlx::query!(
        "UPDATE user_tokens SET expires_at = LEAST(expires_at, $3)
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        user.as_uuid(),
        purpose.as_str(),
        now
    )
    .execute(tx.conn())
    .await?;
    let ttl = match purpose {
        LinkPurpose::Invitation => INVITATION_TTL,
        LinkPurpose::PasswordReset => RESET_TTL,
    };
    let token = SecretToken::generate();
    sqlx::query!(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        token.hash(),
        user.as_uuid(),
        purpose.as_str(),
        now,
        now + ttl
    )
    .execute(tx.conn())
    .await?;
    Ok(Some((token, account.email)))
}

/// What a presented link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Valid(LinkInfo),
    /// Already used (or spent by too many wrong dates of birth).
    Used,
    Expired,
    /// Never issued, mistyped or tampered with.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub user_id: UserId,
    pub email: EmailAddress,
    pub role: Role,
    /// Patients confirm their date of birth when accepting an invitation.
    pub asks_date_of_birth: bool,
    dob: Option<NaiveDate>,
}

pub async fn inspect(
    tx: &mut TenantTx,
    raw: &str,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<LinkState, sqlx::Error> {
    if !looks_like_token(raw) {
        return Ok(LinkState::Unknown);
    }
    let Some(row) = sqlx::query!(
        "SELECT t.user_id, t.expires_at, t.used_at, u.email, u.role, u.status, p.date_of_birth AS \"dob?\"
         FROM user_tokens t JOIN users u ON u.id = t.user_id
         LEFT JOIN patients p ON p.id = u.patient_id
         WHERE t.token_hash = $1 AND t.purpose = $2
         FOR UPDATE OF t",
        hash_token(raw),
        purpose.as_str()
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(LinkState::Unknown);
    };
    if row.used_at.is_some() {
        return Ok(LinkState::Used);
    }
    if now >= row.expires_at {
        return Ok(LinkState::Expired);
    }
    let (Ok(email), Some(role)) = (EmailAddress::parse(&row.email), Role::parse(&row.role)) else {
        return Ok(LinkState::Unknown);
    };
    let usable = match purpose {
        LinkPurpose::Invitation => row.status == "invited",
        LinkPurpose::PasswordReset => row.status == "active",
    };
    if !usable {
        return Ok(LinkState::Used);
    }
    Ok(LinkState::Valid(LinkInfo {
        user_id: UserId::from_uuid(row.user_id),
        email,
        role,
        asks_date_of_birth: row.dob.is_some() && purpose == LinkPurpose::Invitation,
        dob: row.dob,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("This link cannot be used.")]
    NotValid(LinkState),
    #[error("The date of birth does not match our records.")]
    DateOfBirthMismatch { attempts_left: i32 },
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

async fn spend(tx: &mut TenantTx, raw: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE user_tokens SET used_at = $2 WHERE token_hash = $1",
        hash_token(raw),
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Accepts an invitation: checks the date of birth (patients), sets the password, activates
/// the account and spends the link. The caller commits even on a date-of-birth mismatch, so
/// the failed check counts.
pub async fn accept_invitation(
    tx: &mut TenantTx,
    raw: &str,
    dob: Option<DateOfBirth>,
    new: &NewPassword,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<UserId, RedeemError> {
    let info = match inspect(tx, raw, LinkPurpose::Invitation, now).await? {
        LinkState::Valid(info) => info,
        other => return Err(RedeemError::NotValid(other)),
    };
    if let Some(expected) = info.dob
        && dob.map(|d| d.date()) != Some(expected)
    {
        let failed = sqlx::query_scalar!(
            "UPDATE user_tokens SET failed_checks = failed_checks + 1,
                    used_at = CASE WHEN failed_checks + 1 >= $2 THEN $3 ELSE used_at END
             WHERE token_hash = $1 RETURNING failed_checks",
            hash_token(raw),
            MAX_DOB_FAILURES,
            now
        )
        .fetch_one(tx.conn())
        .await?;
        return Err(RedeemError::DateOfBirthMismatch {
            attempts_left: (MAX_DOB_FAILURES - failed).max(0),
        });
    }
    let hash = password::hash(new).await?;
    accounts::set_password(tx, info.user_id, &hash, now).await?;
    spend(tx, raw, now).await?;
    let ctx = AuditContext {
        actor: Some((info.user_id, info.role)),
        ..ctx.clone()
    };
    let account = accounts::by_id(tx, info.user_id).await?;
    let mut event = AuditEvent::new(Action::InvitationAccept, "user").resource(info.user_id);
    if let Some(p) = account.and_then(|a| a.patient_id) {
        event = event.patient(p);
    }
    audit::record(tx, &ctx, now, event).await?;
    Ok(info.user_id)
}

/// Queues a reset email if an active account has this address. Says nothing either way: the
/// caller shows the same page whether or not the account exists.
pub async fn request_reset(tx: &mut TenantTx, email: &EmailAddress) -> Result<(), EnqueueError> {
    if let Some(a) = accounts::by_email(tx, email).await?
        && a.status == AccountStatus::Active
    {
        jobs::enqueue(tx, &Job::SendPasswordReset { user_id: a.id }).await?;
    }
    Ok(())
}

/// Completes a reset: new password, link spent, every session signed out, and the account's
/// failed sign-ins forgotten (so the owner is never locked out by someone guessing).
pub async fn complete_reset(
    tx: &mut TenantTx,
    raw: &str,
    new: &NewPassword,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<UserId, RedeemError> {
    let info = match inspect(tx, raw, LinkPurpose::PasswordReset, now).await? {
        LinkState::Valid(info) => info,
        other => return Err(RedeemError::NotValid(other)),
    };
    let hash = password::hash(new).await?;
    accounts::set_password(tx, info.user_id, &hash, now).await?;
    spend(tx, raw, now).await?;
    sessions::end_all(tx, info.user_id, None, now).await?;
    // A reset proves the mailbox, not the authenticator: with two-step sign-in on, wrong codes
    // stay counted, or whoever holds the mailbox could reset their way to unlimited guesses.
    if !crate::identity::mfa::status(tx, info.user_id)
        .await?
        .enabled
    {
        throttle::clear_account(tx, &throttle::account_key(info.email.as_str())).await?;
    }
    let ctx = AuditContext {
        actor: Some((info.user_id, info.role)),
        ..ctx.clone()
    };
    audit::record(
        tx,
        &ctx,
        now,
        AuditEvent::new(Action::PasswordReset, "user").resource(info.user_id),
    )
    .await?;
    Ok(info.user_id)
}
