//! The slice of Stripe the portal uses, in the portal's own small types, so no Stripe type
//! leaks into the domain: Connect accounts and their onboarding links, Checkout Sessions,
//! PaymentIntents, refunds, payouts and their balance transactions, and webhook signatures.
//!
//! Every call on a clinic's behalf names its connected account (`Stripe-Account`). Every
//! call that creates something carries an idempotency key derived from the portal's own ids,
//! and is tried again with the same key when Stripe answered with a server error or not at
//! all: Stripe may have done the work before the answer was lost, and the key makes the retry
//! return that work instead of doing it twice.

mod client;
pub mod webhook;

pub use client::{
    AccountState, BalanceLine, CheckoutState, DisputeState, NewCheckout, Page, PaymentState,
    PayoutState, RefundState, SavedCardCharge, Stripe, StripeSettings,
};

/// Where Stripe's own pages (Checkout, Connect onboarding) are, for a deployment whose API is
/// at `base_url`: Stripe's hosts for Stripe's API, else the stand-in's own origin. Pages that
/// send a browser there after a form allow these origins in their `form-action`.
pub fn hosted_page_origins(base_url: &str) -> Vec<String> {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default();
    if host == "api.stripe.com" {
        return vec![
            "https://checkout.stripe.com".to_owned(),
            "https://connect.stripe.com".to_owned(),
        ];
    }
    let scheme = base_url.split_once("://").map_or("https", |(s, _)| s);
    vec![format!("{scheme}://{host}")]
}

/// Why a Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// The card was declined (HTTP 402): the person can try another card.
    #[error("card declined ({code})")]
    Declined {
        code: String,
        decline_code: Option<String>,
        message: String,
    },
    /// Stripe refused the request (4xx): it will refuse it again.
    #[error("Stripe refused the request ({status} {code})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// A server error, a timeout or no connection, after the retries: it may work later.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
    /// The client could not be built (a bad key or URL in the configuration).
    #[error("Stripe client configuration: {0}")]
    Config(String),
}

impl StripeError {
    /// Whether trying again later (with the same idempotency key) may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, StripeError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stripe_pages_are_stripe_s_own_hosts_or_the_stand_in_s_origin() {
        assert_eq!(
            super::hosted_page_origins("https://api.stripe.com/"),
            ["https://checkout.stripe.com", "https://connect.stripe.com"]
        );
        assert_eq!(
            super::hosted_page_origins("http://127.0.0.1:12111"),
            ["http://127.0.0.1:12111"]
        );
    }
}
