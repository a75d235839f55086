//! `POST /webhooks/stripe` on the platform's own site: the one endpoint where Stripe sends
//! every clinic's Connect events. The signature is checked on the raw body (any `v1` may match,
//! so the secret can be rotated; signed within five minutes of our clock); the event names its
//! connected account, which names its clinic; the event is kept in that clinic's schema once
//! (by its id, together with the clinic's other deliveries of the moment: `stripe_group_commit`),
//! the clinic's drain job is queued if none is waiting, and the answer goes back once that is
//! committed; a second delivery of an event this process kept is answered from memory. An event
//! for an account no clinic has is acknowledged and dropped: Stripe would otherwise retry it
//! for days.

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, IntoResponse, Request, Response, handler};
use portal_stripe::webhook::{self, SignatureError};
use secrecy::ExposeSecret;

use crate::{AppState, internal};

/// Events this process has kept, by connected account and event id: a second delivery of one
/// (Stripe sending it again after our answer was lost or late, or twice) is answered, once
/// verified, from memory instead of a transaction that would find it kept. Only an event whose
/// transaction committed goes in, and that commit stored it and queued the clinic's drain (or
/// found one waiting). What is given up: a second delivery through the database also queues a
/// drain if none waits, which recovers an event whose drain died without applying it; within
/// these ten minutes the hourly sweep does that instead. Another process, or this one after a
/// restart or ten minutes later (Stripe's own retries come later still), asks the database.
#[derive(Clone)]
pub struct KeptEvents(moka::future::Cache<String, ()>);

impl KeptEvents {
    pub fn new() -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(600))
                // Each id is asked for at most once more: keep the newest, not the most asked.
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
        )
    }
}

impl Default for KeptEvents {
    fn default() -> Self {
        Self::new()
    }
}

fn refuse(why: &str) -> Response {
    why.to_owned()
        .with_status(StatusCode::BAD_REQUEST)
        .into_response()
}

#[handler]
pub async fn stripe(
    req: &Request,
    Data(state): Data<&AppState>,
    body: Body,
) -> poem::Result<Response> {
    let on_platform = matches!(
        req.extensions().get::<crate::CurrentSite>(),
        Some(crate::CurrentSite::Platform)
    );
    let (true, Some(payments)) = (on_platform, &state.stripe) else {
        return Err(poem::Error::from(poem::error::NotFoundError));
    };
    let Ok(payload) = body.into_string().await else {
        return Ok(refuse("the body is not UTF-8 text"));
    };
    let header = req.header("stripe-signature").unwrap_or_default();
    let now = state.clock.now();
    let head = match webhook::verify(
        &payload,
        header,
        payments.webhook_secret.expose_secret(),
        now.timestamp(),
    ) {
        Ok(h) => h,
        Err(SignatureError::Stale) => return Ok(refuse("the signature is too old")),
        Err(SignatureError::NotAnEvent) => return Ok(refuse("not a Stripe event")),
        Err(SignatureError::BadSignature) => return Ok(refuse("no valid signature")),
    };
    let Some(account) = head.account.as_deref() else {
        tracing::info!(event = %head.id, kind = %head.kind, "a platform event: nothing to do");
        return Ok(StatusCode::OK.into_response());
    };
    let kept = format!("{account} {}", head.id);
    if payments.kept.0.contains_key(&kept) {
        tracing::info!(event = %head.id, kind = %head.kind, "Stripe event kept before");
        return Ok(StatusCode::OK.into_response());
    }
    let Some(tenant) = payments.clinics.get(account).await.map_err(internal)? else {
        tracing::warn!(event = %head.id, "an event for an account no clinic has");
        return Ok(StatusCode::OK.into_response());
    };
    let (id, kind) = (head.id.clone(), head.kind.clone());
    let new = payments
        .inbox
        .keep(&tenant, head, now)
        .await
        .map_err(|e| poem::Error::new(e, StatusCode::INTERNAL_SERVER_ERROR))?;
    payments.kept.0.insert(kept, ()).await;
    tracing::info!(event = %id, kind = %kind, new, "Stripe event kept");
    Ok(StatusCode::OK.into_response())
}
