//! Webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">[,v1=…]`
//! verified on the raw body by async-stripe (any `v1` may match, so a secret can be rotated;
//! the time must be within five minutes of ours, which the caller passes in: time is a
//! parameter). What the portal keeps of an event is its head — which event, of what kind, for
//! which connected account and which object — and, for a PaymentIntent's events, the intent
//! as the event carried it. That copy is Stripe's own word (the signature covers it), and a
//! PaymentIntent only ever moves forward to a final state (`succeeded`, `canceled`), so an
//! older copy applied after a newer one changes nothing: it is applied as it came. Reading
//! each intent back instead would cap a clinic at Stripe's rate limit (about 100 requests a
//! second in live mode). Every other object is read back from Stripe when applied.

use stripe_webhook::{EventObject, Webhook, WebhookError};

use crate::PaymentState;
use crate::client::payment_state;

/// What the portal keeps of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHead {
    pub id: String,
    /// `checkout.session.completed`, `payment_intent.succeeded`, `account.updated`, …
    pub kind: String,
    /// The connected account it happened on (Connect events); `None` for the platform's own.
    pub account: Option<String>,
    /// The id of `data.object`.
    pub object_id: String,
    /// `data.object.object`: `checkout.session`, `payment_intent`, `charge`, `account`, …
    pub object_type: String,
    pub created: i64,
    /// The PaymentIntent as the event carried it (its events only; `None` also when this
    /// library version could not read it, and the intent is then read back).
    pub intent: Option<PaymentState>,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no valid signature")]
    BadSignature,
    #[error("signed more than five minutes from now")]
    Stale,
    #[error("not a Stripe event")]
    NotAnEvent,
}

/// Verifies `payload` against the `Stripe-Signature` header with `secret` at `now` (unix
/// seconds) and returns the event's head.
pub fn verify(
    payload: &str,
    header: &str,
    secret: &str,
    now: i64,
) -> Result<EventHead, SignatureError> {
    match Webhook::construct_event_with_timestamp(payload, header, secret, now) {
        // The signature and time were checked before parsing; an event whose object the
        // library's model does not know (a newer API version) is still Stripe's own.
        Ok(event) => Ok(EventHead {
            intent: intent_of(&event.data.object),
            ..head(payload)?
        }),
        Err(WebhookError::BadParse(_)) => head(payload),
        Err(WebhookError::BadTimestamp(_)) => Err(SignatureError::Stale),
        Err(_) => Err(SignatureError::BadSignature),
    }
}

fn intent_of(object: &EventObject) -> Option<PaymentState> {
    use EventObject as E;
    match object {
        E::PaymentIntentAmountCapturableUpdated(p)
        | E::PaymentIntentCanceled(p)
        | E::PaymentIntentCreated(p)
        | E::PaymentIntentPartiallyFunded(p)
        | E::PaymentIntentPaymentFailed(p)
        | E::PaymentIntentProcessing(p)
        | E::PaymentIntentRequiresAction(p)
        | E::PaymentIntentSucceeded(p) => Some(payment_state(p)),
        _ => None,
    }
}

fn head(payload: &str) -> Result<EventHead, SignatureError> {
    let v: serde_json::Value =
        serde_json::from_str(payload).map_err(|_| SignatureError::NotAnEvent)?;
    let text = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_owned);
    Ok(EventHead {
        id: text("/id")
            .filter(|id| id.starts_with("evt_"))
            .ok_or(SignatureError::NotAnEvent)?,
        kind: text("/type").ok_or(SignatureError::NotAnEvent)?,
        account: text("/account"),
        object_id: text("/data/object/id").ok_or(SignatureError::NotAnEvent)?,
        object_type: text("/data/object/object").ok_or(SignatureError::NotAnEvent)?,
        created: v
            .get("created")
            .and_then(|c| c.as_i64())
            .ok_or(SignatureError::NotAnEvent)?,
        intent: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","account":"acct_9","created":1700000000,"data":{"object":{"id":"pi_1","object":"payment_intent"}}}"#;
    const NOW: i64 = 1_700_000_100;

    fn signed(secret: &str, t: i64) -> String {
        Webhook::generate_test_header(BODY, secret, Some(t))
    }

    #[test]
    fn a_signed_event_gives_its_head() {
        let head = verify(BODY, &signed("whsec_a", NOW), "whsec_a", NOW).unwrap();
        assert_eq!(head.id, "evt_1");
        assert_eq!(head.kind, "payment_intent.succeeded");
        assert_eq!(head.account.as_deref(), Some("acct_9"));
        assert_eq!(head.object_id, "pi_1");
        assert_eq!(head.object_type, "payment_intent");
    }

    #[test]
    fn tampered_unsigned_or_wrongly_signed_events_are_refused() {
        let header = signed("whsec_a", NOW);
        let tampered = BODY.replace("pi_1", "pi_2");
        assert_eq!(
            verify(&tampered, &header, "whsec_a", NOW),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(BODY, &header, "whsec_b", NOW),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(BODY, "", "whsec_a", NOW),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(BODY, &format!("t={NOW}"), "whsec_a", NOW),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn five_minutes_either_way_is_the_limit() {
        for t in [NOW - 300, NOW + 300] {
            assert!(
                verify(BODY, &signed("whsec_a", t), "whsec_a", NOW).is_ok(),
                "{t}"
            );
        }
        for t in [NOW - 301, NOW + 301] {
            assert_eq!(
                verify(BODY, &signed("whsec_a", t), "whsec_a", NOW),
                Err(SignatureError::Stale),
                "{t}"
            );
        }
    }

    #[test]
    fn any_v1_signature_may_match_so_secrets_can_rotate() {
        let old = signed("whsec_old", NOW);
        let new = signed("whsec_new", NOW);
        let v1_old = old.split(',').find(|p| p.starts_with("v1=")).unwrap();
        let both = format!("{new},{v1_old}");
        assert!(verify(BODY, &both, "whsec_old", NOW).is_ok());
        assert!(verify(BODY, &both, "whsec_new", NOW).is_ok());
    }
}
