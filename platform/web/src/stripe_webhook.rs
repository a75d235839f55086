//! `POST /webhooks/stripe` on the platform's own site: the one endpoint where Stripe sends
//! every clinic's Connect events. The signature is checked on the raw body (any `v1` may match,
//! so the secret can be rotated; signed within five minutes of our clock); the event names its
//! connected account, which names its clinic; the event is kept in that clinic's schema once
//! (by its id), the clinic's drain job is queued if none is waiting, and the answer goes back
//! at once. An event for an
//! account no clinic has is acknowledged and dropped: Stripe would otherwise retry it for days.

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, IntoResponse, Request, Response, handler};
use portal_domain::billing::events;
use portal_stripe::webhook::{self, SignatureError};
use secrecy::ExposeSecret;

use crate::{AppState, internal};

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
    let Some(tenant) = payments.clinics.get(account).await.map_err(internal)? else {
        tracing::warn!(event = %head.id, "an event for an account no clinic has");
        return Ok(StatusCode::OK.into_response());
    };
    let mut tx = events::begin_receiving(&state.tenant_db, &tenant)
        .await
        .map_err(internal)?;
    let new = events::receive(&mut tx, &head, now)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    tracing::info!(event = %head.id, kind = %head.kind, new, "Stripe event kept");
    Ok(StatusCode::OK.into_response())
}
