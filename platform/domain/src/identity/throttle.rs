//! Sign-in throttling, per account and per client address, kept in the clinic's schema (so it
//! survives restarts and works without Redis). An attempt is *claimed* before its password is
//! checked: under a per-account lock, the limits are read and the attempt is counted as a
//! failure straight away (a success then clears it), so parallel guesses are counted as they
//! arrive instead of after their Argon2 runs. Unknown accounts are throttled exactly like
//! known ones. The reset-by-email path is never throttled by failed sign-ins, so an attacker
//! hammering an account cannot keep its owner out: a completed reset clears the account's count.

use chrono::{DateTime, Duration, Utc};
use portal_tenants::TenantTx;
use sha2::{Digest, Sha256};

/// Failures allowed per account per hour, at most.
pub const ACCOUNT_PER_HOUR: i64 = 100;
/// Failures allowed per client address per hour (an office may share one address).
pub const CLIENT_PER_HOUR: i64 = 300;
/// Failures before the backoff starts.
const FREE_FAILURES: i64 = 5;
const MAX_BACKOFF: Duration = Duration::minutes(15);

/// The account key: a hash of the normalised email, known account or not.
pub fn account_key(raw_email: &str) -> Vec<u8> {
    Sha256::digest(raw_email.trim().to_lowercase().as_bytes()).to_vec()
}

/// Claims one attempt for `account` from `client`: `Err(wait)` when it must wait; otherwise the
/// attempt is already counted (as a failure, until [`clear_account`] says it succeeded). Takes
/// a transaction-scoped lock on the account key, so concurrent claims for one account queue
/// here for the length of this short transaction, never across a password check.
pub async fn claim(
    tx: &mut TenantTx,
    account: &[u8],
    client: &str,
    now: DateTime<Utc>,
) -> Result<Result<(), Duration>, sqlx::Error> {
    let client = &address_key(client);
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", lock_id(account))
        .execute(tx.conn())
        .await?;
    if let Err(wait) = check(tx, account, client, now).await? {
        return Ok(Err(wait));
    }
    record_failure(tx, account, client, now).await?;
    Ok(Ok(()))
}

/// What an address is limited as: an IPv4 address itself, an IPv6 address by its /64 (one
/// customer's network: a single host can use all 2^64 addresses in it).
pub fn address_key(client: &str) -> String {
    match client.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Ok(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(String::new, |v4| v4.to_string()),
        _ => client.to_owned(),
    }
}

/// The advisory lock id of an account key (its first eight bytes; a collision between two
/// accounts only makes them queue together).
fn lock_id(account: &[u8]) -> i64 {
    let mut first = [0u8; 8];
    for (d, s) in first.iter_mut().zip(account) {
        *d = *s;
    }
    i64::from_be_bytes(first)
}

/// `Err(wait)` when another attempt must wait.
async fn check(
    tx: &mut TenantTx,
    account: &[u8],
    client: &str,
    now: DateTime<Utc>,
) -> Result<Result<(), Duration>, sqlx::Error> {
    let since = now - Duration::hours(1);
    let row = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM login_failures WHERE account_key = $1 AND at > $3) AS "account!",
             (SELECT max(at) FROM login_failures WHERE account_key = $1 AND at > $3) AS last_failure,
             (SELECT min(at) FROM login_failures WHERE account_key = $1 AND at > $3) AS first_failure,
             (SELECT count(*) FROM login_failures WHERE client_addr = $2 AND at > $3) AS "client!",
             (SELECT min(at) FROM login_failures WHERE client_addr = $2 AND at > $3) AS first_client"#,
        account,
        client,
        since
    )
    .fetch_one(tx.conn())
    .await?;
    if row.account >= ACCOUNT_PER_HOUR {
        let until = row.first_failure.unwrap_or(now) + Duration::hours(1);
        return Ok(Err(until - now));
    }
    if row.client >= CLIENT_PER_HOUR {
        let until = row.first_client.unwrap_or(now) + Duration::hours(1);
        return Ok(Err(until - now));
    }
    if row.account >= FREE_FAILURES {
        let exp = u32::try_from(row.account - FREE_FAILURES)
            .unwrap_or(u32::MAX)
            .min(10);
        let wait = Duration::seconds(1i64 << exp).min(MAX_BACKOFF);
        if let Some(last) = row.last_failure
            && now < last + wait
        {
            return Ok(Err(last + wait - now));
        }
    }
    Ok(Ok(()))
}

async fn record_failure(
    tx: &mut TenantTx,
    account: &[u8],
    client: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO login_failures (account_key, client_addr, at) VALUES ($1, $2, $3)",
        account,
        client,
        now
    )
    .execute(tx.conn())
    .await?;
    // Old rows are no use to any limit.
    sqlx::query!(
        "DELETE FROM login_failures WHERE account_key = $1 AND at < $2",
        account,
        now - Duration::hours(2)
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Forgets an account's failures (after a successful sign-in or password reset).
pub async fn clear_account(tx: &mut TenantTx, account: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM login_failures WHERE account_key = $1", account)
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn ipv6_clients_are_limited_per_64_and_ipv4_per_address() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(address_key("::ffff:203.0.113.9"), "203.0.113.9");
    }
}
