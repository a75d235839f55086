//! Bills: one account per patient with an append-only ledger (the database keeps its balance
//! equal to the sum of its entries and refuses to edit an entry), statements with line items
//! that billing staff draft, issue and void, and payments against them. Patients read their
//! own; billing staff (`BillingScope`) read and write any patient's. Every read and write is
//! audited; another patient's statement answers like a missing one.

pub mod accounts;
pub mod autopay;
pub mod card;
pub mod disputes;
pub mod events;
pub mod guest;
pub mod imports;
pub mod insurance;
pub mod lines;
pub mod money;
pub mod payments;
pub mod payouts;
pub mod plans;
pub mod print;
pub mod reconcile;
pub mod refunds;
pub mod settle_many;
pub mod setup;
pub mod statements;
pub mod summary;

pub use money::{Currency, Money, MoneyError};

use crate::jobs;

/// Why a billing change was refused, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("not found")]
    NotFound,
    #[error(
        "This statement was changed by someone else since you opened it. It is shown as it is now."
    )]
    Stale,
    #[error("Only a draft statement can be changed. Void it and start a new one instead.")]
    NotDraft,
    #[error("Add at least one line before issuing the statement.")]
    NoLines,
    #[error("This statement was voided.")]
    Voided,
    #[error("Payments can only be taken on an issued statement.")]
    NotIssued,
    #[error("Nothing is due on this statement.")]
    NothingDue,
    #[error("This clinic does not take card payments online yet.")]
    CardsUnavailable,
    #[error("{message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] jobs::EnqueueError),
}

impl BillingError {
    pub(crate) fn field(field: &'static str, message: impl Into<String>) -> Self {
        BillingError::Field {
            field,
            message: message.into(),
        }
    }

    /// The form field a refusal is about, if it is about one.
    pub fn field_name(&self) -> Option<&'static str> {
        match self {
            BillingError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// The clinic's billing currency.
pub(crate) async fn clinic_currency(
    tx: &mut portal_tenants::TenantTx,
) -> Result<Currency, sqlx::Error> {
    let raw = sqlx::query_scalar!("SELECT currency FROM clinic_profile")
        .fetch_one(tx.conn())
        .await?;
    Ok(Currency::parse(&raw).unwrap_or(Currency::USD))
}
