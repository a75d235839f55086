//! Bills, one feature in one folder: the billing console for billing staff (`staff.rs`:
//! `/billing` work queue, a patient's account, a statement from draft to issued, desk
//! payments, voiding) and the patient's bills (`patient.rs`: `/bills`). The stores audit every
//! read and write; another patient's statement answers 404.

mod bars_svg;
pub mod books;
mod checkout;
pub mod disputes;
pub mod guest;
pub mod insurance;
pub mod patient;
pub mod pay;
pub mod plans;
pub mod printing;
pub mod refund;
pub mod setup;
pub mod staff;
pub mod summary;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use portal_domain::billing::statements::{Statement, StatementSummary, Status};

use crate::pages::words;

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

/// The signed-in person with the scope a billing page needs (`scope` picks it: billing staff,
/// the patient, an administrator), or a redirect to sign in; another role's session is 404.
async fn gate<S>(
    req: &poem::Request,
    state: &crate::AppState,
    current: &'static str,
    scope: impl FnOnce(&portal_domain::identity::scope::SignedIn) -> Option<S>,
) -> poem::Result<
    Result<
        (
            crate::pages::Chrome,
            portal_domain::identity::scope::SignedIn,
            S,
        ),
        poem::Response,
    >,
> {
    match crate::pages::require_user(req, state, current).await? {
        crate::pages::Gate::In(c, u) => {
            let s = scope(&u).ok_or_else(not_found)?;
            Ok(Ok((c, u, s)))
        }
        crate::pages::Gate::Out(r) => Ok(Err(r)),
    }
}

fn when(t: DateTime<Utc>, tz: Tz) -> String {
    words::date(t.with_timezone(&tz).date_naive())
}

/// A statement in a list, as words.
pub struct SummaryView {
    pub id: String,
    pub number: i64,
    pub patient_id: String,
    pub patient: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub issued: String,
    pub due_on: String,
    pub amount: String,
    pub due: String,
}

impl SummaryView {
    pub fn of(s: &StatementSummary, tz: Tz) -> Self {
        let (status, status_label) = status_words(s);
        SummaryView {
            id: s.id.to_string(),
            number: s.number,
            patient_id: s.patient_id.to_string(),
            patient: s.patient_name.clone(),
            status,
            status_label,
            issued: s.issued_at.map_or_else(|| "—".to_owned(), |t| when(t, tz)),
            due_on: s.due_on.map_or_else(|| "—".to_owned(), words::date),
            amount: s.issued.map_or_else(|| "—".to_owned(), |m| m.to_string()),
            due: s.due.to_string(),
        }
    }
}

/// The status tag of a statement: its stage, and for an issued one whether it is paid.
fn status_words(s: &StatementSummary) -> (&'static str, &'static str) {
    match s.status {
        Status::Draft => ("draft", "Draft"),
        Status::Void => ("void", "Voided"),
        Status::Issued if s.due.minor > 0 && s.due != s.issued.unwrap_or(s.due) => {
            ("partial", "Part paid")
        }
        Status::Issued if s.due.minor > 0 => ("due", "Due"),
        Status::Issued => ("paid", "Paid"),
    }
}

/// One line item, as words.
pub struct LineView {
    pub id: String,
    pub date: String,
    pub description: String,
    pub code: String,
    pub charge: String,
    pub insurance: String,
    pub adjustment: String,
    pub patient: String,
}

/// One payment, as words.
pub struct PaymentView {
    pub id: String,
    /// A card payment with something left to refund.
    pub refundable: bool,
    pub when: String,
    pub method: &'static str,
    pub amount: String,
    pub refunded: String,
    /// Taken back by a lost dispute.
    pub disputed: String,
    pub reference: String,
    pub status: String,
    /// Its receipt's document id, once someone opened it.
    pub receipt: String,
    /// It was taken, so it has a receipt to open (printed when first opened).
    pub taken: bool,
}

/// A whole statement, as words.
pub struct StatementView {
    pub summary: SummaryView,
    pub draft: bool,
    pub void: bool,
    pub version: i32,
    pub void_reason: String,
    pub guest_code: String,
    pub lines: Vec<LineView>,
    pub total_charges: String,
    pub total_insurance: String,
    pub total_adjustments: String,
    pub total_patient: String,
    pub paid: String,
    pub due_minor: i64,
    /// "Up to $60.00." for the desk payment's amount.
    pub pay_hint: String,
    pub payments: Vec<PaymentView>,
    pub plan: Option<plans::PlanView>,
}

impl StatementView {
    pub fn of(s: &Statement, tz: Tz, today: chrono::NaiveDate) -> Self {
        StatementView {
            plan: s.plan.as_ref().map(|p| plans::PlanView::of(p, tz, today)),
            summary: SummaryView::of(&s.summary, tz),
            draft: s.summary.status == Status::Draft,
            void: s.summary.status == Status::Void,
            version: s.version,
            void_reason: s.void_reason.clone().unwrap_or_default(),
            guest_code: s.guest_code.clone().unwrap_or_default(),
            lines: s
                .lines
                .iter()
                .map(|l| LineView {
                    id: l.id.to_string(),
                    date: words::date(l.service_date),
                    description: l.description.clone(),
                    code: l.code.clone().unwrap_or_default(),
                    charge: l.charge.to_string(),
                    insurance: l.insurance_paid.to_string(),
                    adjustment: l.adjustment.to_string(),
                    patient: l.patient.to_string(),
                })
                .collect(),
            total_charges: s.total_charges.to_string(),
            total_insurance: s.total_insurance.to_string(),
            total_adjustments: s.total_adjustments.to_string(),
            total_patient: s.total_patient.to_string(),
            paid: s.paid.to_string(),
            due_minor: s.summary.due.minor,
            pay_hint: format!("Up to {}.", s.summary.due),
            payments: s
                .payments
                .iter()
                .map(|p| PaymentView {
                    id: p.id.to_string(),
                    refundable: p.method == "card"
                        && p.status == "succeeded"
                        && !p.in_dispute
                        && p.amount.minor > p.refunded.minor + p.disputed.minor,
                    when: when(p.at, tz),
                    method: if p.payer == "autopay" {
                        "Card (automatic)"
                    } else {
                        p.method_label()
                    },
                    amount: p.amount.to_string(),
                    refunded: if p.refunded.minor > 0 {
                        p.refunded.to_string()
                    } else {
                        String::new()
                    },
                    disputed: if p.disputed.minor > 0 {
                        p.disputed.to_string()
                    } else {
                        String::new()
                    },
                    reference: p.reference.clone().unwrap_or_default(),
                    receipt: p.receipt.map(|d| d.to_string()).unwrap_or_default(),
                    taken: p.status == "succeeded",
                    status: match p.status.as_str() {
                        "succeeded" => "Received",
                        "pending" => "Processing",
                        "failed" => "Failed",
                        _ => "Cancelled",
                    }
                    .to_owned(),
                })
                .collect(),
        }
    }
}
