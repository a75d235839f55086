//! The calls, each mapped to the portal's own types.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes,
    CreateCheckoutSessionCustomerCreation, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentIntentDataSetupFutureUsage, ProductData, RetrieveCheckoutSession,
};
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesCardPayments,
    CreateAccountCapabilitiesTransfers, CreateAccountType, RetrieveAccount,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_core::balance_transaction::ListBalanceTransaction;
use stripe_core::dispute::{CloseDispute, RetrieveDispute};
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentOffSession, ListPaymentIntent, RetrievePaymentIntent,
};
use stripe_core::payout::RetrievePayout;
use stripe_core::refund::{CreateRefund, RetrieveRefund};
use stripe_shared::{AccountId, ApiErrorsType, CheckoutSessionMode};
use stripe_types::{Currency, RangeQueryTs};

use crate::StripeError;

/// Where Stripe is and how to reach it.
#[derive(Clone)]
pub struct StripeSettings {
    pub secret_key: SecretString,
    /// `https://api.stripe.com/` in production; a local fake in tests and `infra/run`.
    pub base_url: String,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts of a call that failed with a server error or no answer (same key each time).
    pub attempts: u32,
}

/// A Stripe client for the platform (and, per call, its clinics' connected accounts).
#[derive(Clone)]
pub struct Stripe {
    client: Client,
    attempts: u32,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stripe(…)")
    }
}

/// A connected account's state, as the clinic's payment set-up shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub id: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// What Stripe still needs from the clinic (Stripe's requirement names).
    pub requirements_due: Vec<String>,
    pub disabled_reason: Option<String>,
}

/// A Checkout Session to create on a clinic's account.
pub struct NewCheckout<'a> {
    pub account: &'a str,
    pub idempotency_key: &'a str,
    pub amount_minor: i64,
    /// ISO 4217, any case.
    pub currency: &'a str,
    /// What the payer sees as the item ("Statement 1042 — Sunrise Family Medicine").
    pub description: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// The portal's payment id, also in `metadata`.
    pub reference: &'a str,
    pub metadata: HashMap<String, String>,
    /// Keep the card (with a new Stripe customer) for charges later without the payer
    /// present: a payment plan's automatic instalments.
    pub save_card: bool,
}

/// A charge of a card the payer saved earlier, made without them present.
pub struct SavedCardCharge<'a> {
    pub account: &'a str,
    pub idempotency_key: &'a str,
    pub amount_minor: i64,
    /// ISO 4217, any case.
    pub currency: &'a str,
    pub customer: &'a str,
    pub payment_method: &'a str,
    pub description: &'a str,
    pub metadata: HashMap<String, String>,
}

/// A Checkout Session as read back.
#[derive(Debug, Clone)]
pub struct CheckoutState {
    pub id: String,
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    pub status: String,
    pub paid: bool,
    pub payment_intent: Option<String>,
    pub amount_total: Option<i64>,
    /// Upper-case ISO 4217.
    pub currency: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// A PaymentIntent as read back, or as a signed event carried it (kept with the event as
/// JSON, hence serde).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PaymentState {
    pub id: String,
    /// Stripe's status: `succeeded`, `processing`, `requires_payment_method`, `canceled`, …
    pub status: String,
    pub amount: i64,
    pub amount_received: i64,
    /// Upper-case ISO 4217.
    pub currency: String,
    pub metadata: HashMap<String, String>,
    pub latest_charge: Option<String>,
    pub created: i64,
    /// The Stripe customer and card, when the card was kept for later.
    pub customer: Option<String>,
    pub payment_method: Option<String>,
}

/// A refund as read back.
#[derive(Debug, Clone)]
pub struct RefundState {
    pub id: String,
    /// `pending`, `succeeded`, `failed`, `canceled` or `requires_action`.
    pub status: String,
    pub amount: i64,
    pub payment_intent: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// A payout.
#[derive(Debug, Clone)]
pub struct PayoutState {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub arrival_date: i64,
}

/// A dispute (chargeback) as read back.
#[derive(Debug, Clone)]
pub struct DisputeState {
    pub id: String,
    pub amount: i64,
    /// Upper-case ISO 4217.
    pub currency: String,
    /// `needs_response`, `under_review`, `won`, `lost`, `warning_*`, `prevented`.
    pub status: String,
    /// The bank's reason code, such as `fraudulent` or `product_not_received`.
    pub reason: String,
    pub payment_intent: Option<String>,
    /// When evidence is due (unix seconds), while it can still be answered.
    pub evidence_due_by: Option<i64>,
    pub created: i64,
}

/// One balance transaction of a payout.
#[derive(Debug, Clone)]
pub struct BalanceLine {
    pub id: String,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    /// `charge`, `refund`, `adjustment`, `payout`, …
    pub kind: String,
    /// The charge, refund or dispute behind it.
    pub source: Option<String>,
}

/// One page of a list, and whether there is more after it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

fn upper(c: &Currency) -> String {
    c.to_string().to_ascii_uppercase()
}

fn currency(code: &str) -> Result<Currency, StripeError> {
    match code.to_ascii_lowercase().parse::<Currency>() {
        Ok(Currency::Unknown(_)) | Err(_) => {
            Err(StripeError::Config(format!("unknown currency {code}")))
        }
        Ok(c) => Ok(c),
    }
}

fn key(raw: &str) -> Result<RequestStrategy, StripeError> {
    IdempotencyKey::new(raw)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| StripeError::Config(format!("idempotency key: {e}")))
}

/// Maps async-stripe's error to ours: a declined card, a refusal that will happen again, or
/// something that may pass later.
fn classify(e: stripe::StripeError) -> StripeError {
    match e {
        stripe::StripeError::Stripe(_, status) if status >= 500 => {
            StripeError::Unavailable(format!("HTTP {status}"))
        }
        stripe::StripeError::Stripe(api, status) => {
            let code = api
                .code
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_else(|| api.type_.as_str().to_owned());
            let message = api.message.clone().unwrap_or_default();
            if status == 402 && api.type_ == ApiErrorsType::CardError {
                StripeError::Declined {
                    code,
                    decline_code: api.decline_code.clone(),
                    message,
                }
            } else if status == 429 {
                StripeError::Unavailable("rate limited".to_owned())
            } else if status == 409 {
                // The same idempotency key is in use by a request still running (another
                // worker's): its outcome will be there to read shortly.
                StripeError::Unavailable("idempotency key in use".to_owned())
            } else {
                StripeError::Refused {
                    status,
                    code,
                    message,
                }
            }
        }
        stripe::StripeError::Timeout => StripeError::Unavailable("timed out".to_owned()),
        stripe::StripeError::ClientError(m) => StripeError::Unavailable(format!("network: {m}")),
        // A non-JSON body: a proxy's error page, typically (the status is lost).
        stripe::StripeError::JSONDeserialize(m) => {
            StripeError::Unavailable(format!("unreadable answer: {m}"))
        }
        stripe::StripeError::ConfigError(m) => StripeError::Config(m),
    }
}

impl Stripe {
    pub fn new(settings: &StripeSettings) -> Result<Self, StripeError> {
        let base = if settings.base_url.ends_with('/') {
            settings.base_url.clone()
        } else {
            format!("{}/", settings.base_url)
        };
        let client = ClientBuilder::new(settings.secret_key.expose_secret())
            .url(base)
            .timeout(settings.timeout)
            .request_strategy(RequestStrategy::Once)
            .build()
            .map_err(|e| StripeError::Config(e.to_string()))?;
        Ok(Stripe {
            client,
            attempts: settings.attempts.max(1),
        })
    }

    /// Runs `call` until it succeeds, fails for good, or runs out of attempts; only a server
    /// error or no answer is tried again, after 200 ms, 400 ms, …
    async fn retrying<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, StripeError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, stripe::StripeError>>,
    {
        let mut wait = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match call().await.map_err(classify) {
                Err(e) if e.is_temporary() && attempt < self.attempts => {
                    tracing::warn!(call = what, attempt, error = %e, "Stripe call failed; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Creates a clinic's Express account (once per key).
    pub async fn create_account(
        &self,
        idempotency_key: &str,
        email: Option<&str>,
        metadata: HashMap<String, String>,
    ) -> Result<AccountState, StripeError> {
        let strategy = key(idempotency_key)?;
        let a = self
            .retrying("create_account", || {
                let mut req = CreateAccount::new()
                    .type_(CreateAccountType::Express)
                    .capabilities(CreateAccountCapabilities {
                        card_payments: Some(CreateAccountCapabilitiesCardPayments {
                            requested: Some(true),
                        }),
                        transfers: Some(CreateAccountCapabilitiesTransfers {
                            requested: Some(true),
                        }),
                        ..Default::default()
                    })
                    .metadata(metadata.clone());
                if let Some(e) = email {
                    req = req.email(e);
                }
                let strategy = strategy.clone();
                let client = self.client.clone();
                async move {
                    req.customize()
                        .request_strategy(strategy)
                        .send(&client)
                        .await
                }
            })
            .await?;
        Ok(account_state(&a))
    }

    pub async fn account(&self, id: &str) -> Result<AccountState, StripeError> {
        let a = self
            .retrying("account", || {
                let client = self.client.clone();
                let req = RetrieveAccount::new(id.to_owned());
                async move { req.send(&client).await }
            })
            .await?;
        Ok(account_state(&a))
    }

    /// A single-use link to Stripe's onboarding for the account.
    pub async fn onboarding_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, StripeError> {
        let link = self
            .retrying("onboarding_link", || {
                let client = self.client.clone();
                let req = CreateAccountLink::new(
                    account.to_owned(),
                    CreateAccountLinkType::AccountOnboarding,
                )
                .refresh_url(refresh_url.to_owned())
                .return_url(return_url.to_owned());
                async move { req.send(&client).await }
            })
            .await?;
        Ok(link.url)
    }

    pub async fn create_checkout(
        &self,
        new: NewCheckout<'_>,
    ) -> Result<CheckoutState, StripeError> {
        let strategy = key(new.idempotency_key)?;
        let cur = currency(new.currency)?;
        let s = self
            .retrying("create_checkout", || {
                let mut price = CreateCheckoutSessionLineItemsPriceData::new(cur.clone());
                price.unit_amount = Some(new.amount_minor);
                price.product_data = Some(ProductData::new(new.description.to_owned()));
                let mut line = CreateCheckoutSessionLineItems::new();
                line.price_data = Some(price);
                line.quantity = Some(1);
                let mut intent = CreateCheckoutSessionPaymentIntentData::new();
                intent.metadata = Some(new.metadata.clone());
                if new.save_card {
                    intent.setup_future_usage =
                        Some(CreateCheckoutSessionPaymentIntentDataSetupFutureUsage::OffSession);
                }
                // Cards only: a delayed method (a bank debit) could end "complete, unpaid"
                // days later, which a statement's payment page must not wait for.
                let req = CreateCheckoutSession::new()
                    .mode(CheckoutSessionMode::Payment)
                    .allowed_payment_method_types(vec![
                        CreateCheckoutSessionAllowedPaymentMethodTypes::Card,
                    ])
                    .line_items(vec![line])
                    .success_url(new.success_url.to_owned())
                    .cancel_url(new.cancel_url.to_owned())
                    .client_reference_id(new.reference.to_owned())
                    .metadata(new.metadata.clone())
                    .payment_intent_data(intent);
                let req = if new.save_card {
                    req.customer_creation(CreateCheckoutSessionCustomerCreation::Always)
                } else {
                    req
                };
                let (client, strategy) = (self.client.clone(), strategy.clone());
                let account = AccountId::from(new.account.to_owned());
                async move {
                    req.customize()
                        .account_id(account)
                        .request_strategy(strategy)
                        .send(&client)
                        .await
                }
            })
            .await?;
        Ok(checkout_state(&s))
    }

    pub async fn checkout(&self, account: &str, id: &str) -> Result<CheckoutState, StripeError> {
        let s = self
            .retrying("checkout", || {
                let client = self.client.clone();
                let req = RetrieveCheckoutSession::new(id.to_owned());
                let account = AccountId::from(account.to_owned());
                async move { req.customize().account_id(account).send(&client).await }
            })
            .await?;
        Ok(checkout_state(&s))
    }

    pub async fn payment_intent(
        &self,
        account: &str,
        id: &str,
    ) -> Result<PaymentState, StripeError> {
        let p = self
            .retrying("payment_intent", || {
                let client = self.client.clone();
                let req = RetrievePaymentIntent::new(id.to_owned());
                let account = AccountId::from(account.to_owned());
                async move { req.customize().account_id(account).send(&client).await }
            })
            .await?;
        Ok(payment_state(&p))
    }

    /// Charges a saved card now, without its holder present (once per key). A declined card
    /// is `StripeError::Declined`; a card whose bank wants the holder to confirm comes back as
    /// an intent that did not succeed.
    pub async fn charge_saved_card(
        &self,
        charge: SavedCardCharge<'_>,
    ) -> Result<PaymentState, StripeError> {
        let strategy = key(charge.idempotency_key)?;
        let cur = currency(charge.currency)?;
        let p = self
            .retrying("charge_saved_card", || {
                let req = CreatePaymentIntent::new(charge.amount_minor, cur.clone())
                    .customer(charge.customer.to_owned())
                    .payment_method(charge.payment_method.to_owned())
                    .confirm(true)
                    .off_session(CreatePaymentIntentOffSession::Bool(true))
                    .description(charge.description.to_owned())
                    .metadata(charge.metadata.clone());
                let (client, strategy) = (self.client.clone(), strategy.clone());
                let account = AccountId::from(charge.account.to_owned());
                async move {
                    req.customize()
                        .account_id(account)
                        .request_strategy(strategy)
                        .send(&client)
                        .await
                }
            })
            .await?;
        Ok(payment_state(&p))
    }

    /// PaymentIntents created at or after `since` (unix seconds), newest first, one page.
    pub async fn payment_intents_since(
        &self,
        account: &str,
        since: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<PaymentState>, StripeError> {
        let list = self
            .retrying("payment_intents", || {
                let client = self.client.clone();
                let mut req = ListPaymentIntent::new()
                    .created(RangeQueryTs::gte(since))
                    .limit(100);
                if let Some(after) = starting_after {
                    req = req.starting_after(after.to_owned());
                }
                let account = AccountId::from(account.to_owned());
                async move { req.customize().account_id(account).send(&client).await }
            })
            .await?;
        Ok(Page {
            items: list.data.iter().map(payment_state).collect(),
            has_more: list.has_more,
        })
    }

    /// Refunds `amount` of a payment (once per key); `metadata` names our refund, so an event
    /// about it finds it even before its id was noted here.
    pub async fn refund(
        &self,
        account: &str,
        idempotency_key: &str,
        payment_intent: &str,
        amount: i64,
        metadata: HashMap<String, String>,
    ) -> Result<RefundState, StripeError> {
        let strategy = key(idempotency_key)?;
        let r = self
            .retrying("refund", || {
                let client = self.client.clone();
                let req = CreateRefund::new()
                    .payment_intent(payment_intent.to_owned())
                    .amount(amount)
                    .metadata(metadata.clone());
                let (account, strategy) = (AccountId::from(account.to_owned()), strategy.clone());
                async move {
                    req.customize()
                        .account_id(account)
                        .request_strategy(strategy)
                        .send(&client)
                        .await
                }
            })
            .await?;
        Ok(refund_state(&r))
    }

    pub async fn refund_state(&self, account: &str, id: &str) -> Result<RefundState, StripeError> {
        let r = self
            .retrying("refund_state", || {
                let client = self.client.clone();
                let req = RetrieveRefund::new(id.to_owned());
                let account = AccountId::from(account.to_owned());
                async move { req.customize().account_id(account).send(&client).await }
            })
            .await?;
        Ok(refund_state(&r))
    }

    pub async fn payout(&self, account: &str, id: &str) -> Result<PayoutState, StripeError> {
        let p = self
            .retrying("payout", || {
                let client = self.client.clone();
                let req = RetrievePayout::new(id.to_owned());
                let account = AccountId::from(account.to_owned());
                async move { req.customize().account_id(account).send(&client).await }
            })
            .await?;
        Ok(PayoutState {
            id: p.id.as_str().to_owned(),
            amount: p.amount,
            currency: upper(&p.currency),
            status: p.status.clone(),
            arrival_date: p.arrival_date,
        })
    }

    pub async fn dispute(&self, account: &str, id: &str) -> Result<DisputeState, StripeError> {
        let d = self
            .retrying("dispute", || {
                let client = self.client.clone();
                let req = RetrieveDispute::new(id.to_owned());
                let account = AccountId::from(account.to_owned());
                async move { req.customize().account_id(account).send(&client).await }
            })
            .await?;
        Ok(dispute_state(&d))
    }

    /// Accepts a dispute (it is lost: the payer keeps the money). Retried with one key, so a
    /// lost answer does not matter.
    pub async fn accept_dispute(
        &self,
        account: &str,
        id: &str,
    ) -> Result<DisputeState, StripeError> {
        let strategy = key(&format!("accept-{id}"))?;
        let d = self
            .retrying("accept_dispute", || {
                let client = self.client.clone();
                let req = CloseDispute::new(id.to_owned());
                let (account, strategy) = (AccountId::from(account.to_owned()), strategy.clone());
                async move {
                    req.customize()
                        .account_id(account)
                        .request_strategy(strategy)
                        .send(&client)
                        .await
                }
            })
            .await?;
        Ok(dispute_state(&d))
    }

    /// One page of the balance transactions a payout paid out.
    pub async fn payout_lines(
        &self,
        account: &str,
        payout: &str,
        starting_after: Option<&str>,
    ) -> Result<Page<BalanceLine>, StripeError> {
        let list = self
            .retrying("payout_lines", || {
                let client = self.client.clone();
                let mut req = ListBalanceTransaction::new()
                    .payout(payout.to_owned())
                    .limit(100);
                if let Some(after) = starting_after {
                    req = req.starting_after(after.to_owned());
                }
                let account = AccountId::from(account.to_owned());
                async move { req.customize().account_id(account).send(&client).await }
            })
            .await?;
        Ok(Page {
            items: list
                .data
                .iter()
                .map(|b| BalanceLine {
                    id: b.id.as_str().to_owned(),
                    amount: b.amount,
                    fee: b.fee,
                    net: b.net,
                    kind: b.type_.as_str().to_owned(),
                    source: b.source.as_ref().map(|s| s.id().to_string()),
                })
                .collect(),
            has_more: list.has_more,
        })
    }
}

fn dispute_state(d: &stripe_shared::Dispute) -> DisputeState {
    DisputeState {
        id: d.id.as_str().to_owned(),
        amount: d.amount,
        currency: upper(&d.currency),
        status: d.status.as_str().to_owned(),
        reason: d.reason.clone(),
        payment_intent: d
            .payment_intent
            .as_ref()
            .map(|p| p.id().as_str().to_owned()),
        evidence_due_by: d.evidence_details.due_by,
        created: d.created,
    }
}

fn refund_state(r: &stripe_shared::Refund) -> RefundState {
    RefundState {
        id: r.id.as_str().to_owned(),
        status: r.status.clone().unwrap_or_default(),
        amount: r.amount,
        payment_intent: r
            .payment_intent
            .as_ref()
            .map(|p| p.id().as_str().to_owned()),
        metadata: r.metadata.clone().unwrap_or_default(),
    }
}

fn account_state(a: &stripe_shared::Account) -> AccountState {
    let req = a.requirements.as_ref();
    AccountState {
        id: a.id.as_str().to_owned(),
        charges_enabled: a.charges_enabled.unwrap_or(false),
        payouts_enabled: a.payouts_enabled.unwrap_or(false),
        details_submitted: a.details_submitted.unwrap_or(false),
        requirements_due: req
            .and_then(|r| r.currently_due.clone())
            .unwrap_or_default(),
        disabled_reason: req
            .and_then(|r| r.disabled_reason.as_ref())
            .map(|d| d.as_str().to_owned()),
    }
}

fn checkout_state(s: &stripe_shared::CheckoutSession) -> CheckoutState {
    CheckoutState {
        id: s.id.as_str().to_owned(),
        url: s.url.clone(),
        status: s
            .status
            .as_ref()
            .map(|st| st.as_str().to_owned())
            .unwrap_or_default(),
        paid: s.payment_status == stripe_shared::CheckoutSessionPaymentStatus::Paid,
        payment_intent: s
            .payment_intent
            .as_ref()
            .map(|p| p.id().as_str().to_owned()),
        amount_total: s.amount_total,
        currency: s.currency.as_ref().map(upper),
        metadata: s.metadata.clone().unwrap_or_default(),
    }
}

pub(crate) fn payment_state(p: &stripe_shared::PaymentIntent) -> PaymentState {
    PaymentState {
        id: p.id.as_str().to_owned(),
        status: p.status.as_str().to_owned(),
        amount: p.amount,
        amount_received: p.amount_received,
        currency: upper(&p.currency),
        metadata: p.metadata.clone(),
        latest_charge: p.latest_charge.as_ref().map(|c| c.id().as_str().to_owned()),
        created: p.created,
        customer: p.customer.as_ref().map(|c| c.id().as_str().to_owned()),
        payment_method: p
            .payment_method
            .as_ref()
            .map(|m| m.id().as_str().to_owned()),
    }
}
