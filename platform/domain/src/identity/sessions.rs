//! Server-side sessions. The browser holds an opaque 256-bit token; the clinic's schema holds
//! only its hash, so a session of one clinic means nothing on another clinic's host.

use chrono::{DateTime, Duration, Utc};
use portal_tenants::TenantTx;

use crate::identity::accounts::Account;
use crate::identity::scope::{SignedIn, Stage};
use crate::identity::tokens::{SecretToken, hash_token, looks_like_token};
use crate::identity::{Role, SESSION_ABSOLUTE};
use crate::ids::{PatientId, SessionId, UserId};

/// Activity is written back at most this often, so a busy session does not write on every
/// request; idle timeouts are therefore exact to within this much.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// How long the password stays good for while the two-step code is typed.
const SECOND_STEP_TTL: Duration = Duration::minutes(10);

/// A new session's secret, to be set as a cookie and then forgotten.
#[derive(Debug)]
pub struct NewSession {
    pub token: SecretToken,
    pub signed_in: SignedIn,
}

pub(crate) async fn start(
    tx: &mut TenantTx,
    account: &Account,
    now: DateTime<Utc>,
    stage: Stage,
) -> Result<NewSession, sqlx::Error> {
    let token = SecretToken::generate();
    let csrf = SecretToken::generate();
    let id = SessionId::new();
    let idle = account.role.idle_timeout().num_seconds() as i32;
    sqlx::query!(
        "INSERT INTO sessions (id, token_hash, user_id, csrf_token, created_at, last_seen_at,
                               idle_timeout_seconds, expires_at, stage)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
        id.as_uuid(),
        token.hash(),
        account.id.as_uuid(),
        csrf.expose(),
        now,
        idle,
        // A session waiting for its second step lives minutes, not hours.
        now + if stage == Stage::Code {
            SECOND_STEP_TTL
        } else {
            SESSION_ABSOLUTE
        },
        stage.as_str(),
    )
    .execute(tx.conn())
    .await?;
    Ok(NewSession {
        token,
        signed_in: SignedIn {
            user_id: account.id,
            role: account.role,
            display_name: account.display_name.clone(),
            email: account.email.clone(),
            patient_id: account.patient_id,
            session_id: id,
            csrf_token: csrf.expose().to_owned(),
            stage,
        },
    })
}

/// The person behind a presented token, if the session is live: not revoked, not idle past its
/// timeout, not past its absolute lifetime, and the account still active. Only `activity`
/// (a request the person made, not a page refreshing itself) counts as use for the idle timeout.
pub async fn authenticate(
    tx: &mut TenantTx,
    raw_token: &str,
    now: DateTime<Utc>,
    activity: bool,
) -> Result<Option<SignedIn>, sqlx::Error> {
    Ok(look_up(tx, raw_token, now, activity).await?.map(|f| f.who))
}

/// A live session as [`look_up`] finds it.
pub struct Found {
    pub who: SignedIn,
    /// Whether this lookup marked the session as used (about once a minute): the session's
    /// row is then locked until `tx` ends, so a caller that keeps `tx` open for long should
    /// commit it first.
    pub touched: bool,
}

/// [`authenticate`], also saying whether the session's row was written.
pub async fn look_up(
    tx: &mut TenantTx,
    raw_token: &str,
    now: DateTime<Utc>,
    activity: bool,
) -> Result<Option<Found>, sqlx::Error> {
    if !looks_like_token(raw_token) {
        return Ok(None);
    }
    let Some(row) = sqlx::query!(
        "SELECT s.id, s.csrf_token, s.last_seen_at, s.idle_timeout_seconds, s.expires_at, s.stage,
                u.id AS user_id, u.role, u.display_name, u.email, u.patient_id
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND u.status = 'active'",
        hash_token(raw_token)
    )
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let idle_deadline = row.last_seen_at + Duration::seconds(i64::from(row.idle_timeout_seconds));
    if now >= row.expires_at || now >= idle_deadline {
        return Ok(None);
    }
    let touched = activity && now - row.last_seen_at >= TOUCH_EVERY;
    if touched {
        sqlx::query!(
            "UPDATE sessions SET last_seen_at = $2 WHERE id = $1",
            row.id,
            now
        )
        .execute(tx.conn())
        .await?;
    }
    let (Some(role), Some(stage)) = (Role::parse(&row.role), Stage::parse(&row.stage)) else {
        return Ok(None);
    };
    Ok(Some(Found {
        who: SignedIn {
            user_id: UserId::from_uuid(row.user_id),
            role,
            display_name: row.display_name,
            email: row.email,
            patient_id: row.patient_id.map(PatientId::from_uuid),
            session_id: SessionId::from_uuid(row.id),
            csrf_token: row.csrf_token,
            stage,
        },
        touched,
    }))
}

/// Signs out one session.
pub async fn end(tx: &mut TenantTx, id: SessionId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        id.as_uuid(),
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Signs out every session of a user, except `keep` (the one that changed the password).
pub(crate) async fn end_all(
    tx: &mut TenantTx,
    user: UserId,
    keep: Option<SessionId>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE sessions SET revoked_at = $3
         WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
        user.as_uuid(),
        keep.map(|k| k.as_uuid()),
        now
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}
