//! Rate limits on work anyone can ask for without signing in (clinic sign-up, forgot-password,
//! self-registration) and on invitation resends: so many per client address and per target
//! email in a window. Counts live in Redis, so the limits hold across every web process; if
//! Redis cannot be reached the process counts on its own, so a Redis outage weakens a limit
//! to per-process but never turns it off. Subjects are keyed hashes (HMAC-SHA256 with a
//! deployment secret): no email address or client address can be read or guessed from Redis.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One limit: at most `max` in each window of `window_secs`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub max: u32,
    pub window_secs: i64,
}

impl Limit {
    /// At most `max` an hour.
    pub const fn per_hour(name: &'static str, max: u32) -> Self {
        Limit {
            name,
            max,
            window_secs: 3600,
        }
    }
}

pub const SIGNUP_PER_ADDRESS: Limit = Limit::per_hour("signup-addr", 5);
pub const SIGNUP_PER_EMAIL: Limit = Limit::per_hour("signup-email", 3);
pub const FORGOT_PER_ADDRESS: Limit = Limit::per_hour("forgot-addr", 20);
pub const FORGOT_PER_EMAIL: Limit = Limit::per_hour("forgot-email", 3);
pub const REGISTER_PER_ADDRESS: Limit = Limit::per_hour("register-addr", 10);
pub const REGISTER_PER_EMAIL: Limit = Limit::per_hour("register-email", 3);
pub const PHONE_CODE_PER_PATIENT: Limit = Limit::per_hour("phone-code", 3);
pub const INVITE_PER_PATIENT: Limit = Limit::per_hour("invite-patient", 3);
/// Statement codes tried without signing in: enough for typos, far too few to guess one of
/// 2^60 codes; the clinic-wide cap bounds guessing spread over many addresses.
pub const PAY_CODE_PER_ADDRESS: Limit = Limit::per_hour("pay-code-addr", 20);
pub const PAY_CODE_PER_CLINIC: Limit = Limit::per_hour("pay-code-clinic", 2000);

/// How long until the limit lets another through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub i64);

pub struct Limiter {
    redis: redis::Client,
    prefix: String,
    key: Vec<u8>,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// When a connection was last tried, so an outage costs one attempt a second.
    last_try: Mutex<Option<std::time::Instant>>,
    /// Used while Redis is unreachable: (key → count) of the current windows.
    local: Mutex<HashMap<String, u32>>,
}

impl Limiter {
    /// `key`: the deployment's limiter secret (the same in every web process).
    pub fn new(redis: redis::Client, prefix: &str, key: Vec<u8>) -> Self {
        Limiter {
            redis,
            prefix: prefix.to_owned(),
            key,
            conn: tokio::sync::Mutex::new(None),
            last_try: Mutex::new(None),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request against every `(limit, subject)`; `Err` (with the longest wait) if
    /// any is over. All are counted even when one trips, so hammering one address cannot
    /// spare the email it targets.
    pub async fn check(
        &self,
        hits: &[(Limit, &str)],
        now: DateTime<Utc>,
    ) -> Result<(), RetryAfter> {
        let mut wait = None;
        for (limit, subject) in hits {
            let window = now.timestamp().div_euclid(limit.window_secs);
            let key = format!(
                "{}:limit:{}:{}:{window}",
                self.prefix,
                limit.name,
                hex(&self.subject_mac(subject)[..16])
            );
            let count = match self.incr(&key, limit.window_secs).await {
                Some(n) => n,
                None => self.incr_local(&key, window),
            };
            if count > u64::from(limit.max) {
                let until = (window + 1) * limit.window_secs - now.timestamp();
                wait = Some(wait.map_or(until, |w: i64| w.max(until)));
            }
        }
        match wait {
            Some(w) => Err(RetryAfter(w.max(1))),
            None => Ok(()),
        }
    }

    fn subject_mac(&self, subject: &str) -> Vec<u8> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(subject.trim().to_lowercase().as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    async fn incr(&self, key: &str, ttl: i64) -> Option<u64> {
        let cached = self.conn.lock().await.clone();
        let mut conn = match cached {
            Some(c) => c,
            None => {
                // Redis was unreachable: try again at most once a second, outside the lock, so
                // requests meanwhile count locally at once instead of queueing.
                let now = std::time::Instant::now();
                {
                    let mut last = self.last_try.lock().ok()?;
                    if last
                        .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1))
                    {
                        return None;
                    }
                    *last = Some(now);
                }
                let connect = self.redis.get_multiplexed_async_connection();
                let c = tokio::time::timeout(std::time::Duration::from_millis(250), connect)
                    .await
                    .ok()?
                    .ok()?;
                *self.conn.lock().await = Some(c.clone());
                c
            }
        };
        let counted = tokio::time::timeout(
            std::time::Duration::from_millis(250),
            redis::pipe()
                .atomic()
                .incr(key, 1u64)
                .expire(key, ttl)
                .ignore()
                .query_async::<(u64,)>(&mut conn),
        )
        .await;
        match counted {
            Ok(Ok((n,))) => Some(n),
            _ => {
                // Drop the connection; the next call reconnects (or counts locally).
                *self.conn.lock().await = None;
                None
            }
        }
    }

    fn incr_local(&self, key: &str, window: i64) -> u64 {
        // A poisoned lock counts as over every limit: never fail open.
        let Ok(mut map) = self.local.lock() else {
            return u64::MAX;
        };
        // Forget earlier windows so the map stays small.
        let suffix = format!(":{window}");
        map.retain(|k, _| k.ends_with(&suffix));
        let n = map.entry(key.to_owned()).or_insert(0);
        *n += 1;
        u64::from(*n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
