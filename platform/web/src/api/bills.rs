//! The signed-in patient's bills over JSON: `GET /v1/bills` (balance and statements, never
//! drafts), `GET /v1/bills/{id}` (one statement with its lines, payments and each payment's
//! receipt once opened) and `POST /v1/bills/payments/{id}/receipt` (a payment's receipt as a
//! document, printed the first time it is asked for). The same stores as the pages: the same
//! rules, the same audit rows; another patient's statement or payment is 404 like a missing
//! one.

use chrono::{DateTime, NaiveDate, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use portal_domain::billing::print::{self, Asker};
use portal_domain::billing::statements::{self, StatementSummary};
use portal_domain::billing::{Money, accounts};
use portal_domain::documents::DocumentError;
use portal_domain::documents::store;
use portal_domain::ids::{PaymentId, StatementId};

use super::ApiTags;
use super::caller::{Caller, ChangingCaller, caller, changing_caller, csrf, unauthorized};
use super::documents::{DocumentOut, out};
use super::error::ErrorBody;
use crate::auth::audit_ctx;
use crate::{AppState, internal};

/// An amount: integer minor units in an ISO 4217 currency, and as people read it.
#[derive(Debug, Object)]
pub struct MoneyOut {
    /// In the currency's minor unit (cents for USD).
    pub minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// "$1,204.50".
    pub display: String,
}

fn money(m: Money) -> MoneyOut {
    MoneyOut {
        minor: m.minor,
        currency: m.currency.to_string(),
        display: m.to_string(),
    }
}

/// A statement in a list.
#[derive(Debug, Object)]
pub struct StatementSummaryOut {
    pub id: String,
    pub number: i64,
    /// `issued` or `void`.
    pub status: String,
    pub issued_at: Option<DateTime<Utc>>,
    pub due_on: Option<NaiveDate>,
    /// What was asked when it was issued.
    pub issued: Option<MoneyOut>,
    /// What is still due (negative: a credit).
    pub due: MoneyOut,
}

fn summary(s: &StatementSummary) -> StatementSummaryOut {
    StatementSummaryOut {
        id: s.id.to_string(),
        number: s.number,
        status: s.status.code().to_owned(),
        issued_at: s.issued_at,
        due_on: s.due_on,
        issued: s.issued.map(money),
        due: money(s.due),
    }
}

/// The patient's account.
#[derive(Debug, Object)]
pub struct BillsOut {
    /// What they owe in all (negative: a credit).
    pub balance: MoneyOut,
    /// Newest first.
    pub statements: Vec<StatementSummaryOut>,
}

/// One service on a statement.
#[derive(Debug, Object)]
pub struct LineOut {
    pub service_date: NaiveDate,
    pub description: String,
    /// CPT or HCPCS.
    pub code: Option<String>,
    pub charge: MoneyOut,
    pub insurance_paid: MoneyOut,
    pub adjustment: MoneyOut,
    /// What the patient pays for it.
    pub patient: MoneyOut,
}

/// A payment on a statement.
#[derive(Debug, Object)]
pub struct PaymentOut {
    pub id: String,
    /// `card`, `cash` or `cheque`.
    pub method: String,
    /// `pending`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub amount: MoneyOut,
    pub refunded: MoneyOut,
    /// Taken back by the card's bank after a dispute.
    pub taken_back: MoneyOut,
    pub at: DateTime<Utc>,
    /// The receipt's document (`/v1/documents/{id}`), once asked for: a taken payment's
    /// receipt is printed the first time `POST /v1/bills/payments/{id}/receipt` asks for it.
    pub receipt_document_id: Option<String>,
}

/// A whole statement.
#[derive(Debug, Object)]
pub struct StatementOut {
    pub summary: StatementSummaryOut,
    pub lines: Vec<LineOut>,
    pub total_charges: MoneyOut,
    pub total_insurance: MoneyOut,
    pub total_adjustments: MoneyOut,
    pub total_patient: MoneyOut,
    pub paid: MoneyOut,
    pub payments: Vec<PaymentOut>,
    /// The code for paying without signing in, while it can be paid.
    pub payment_code: Option<String>,
}

#[derive(ApiResponse)]
pub enum BillsResponse {
    #[oai(status = 200)]
    Ok(Json<BillsOut>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum StatementResponse {
    #[oai(status = 200)]
    Ok(Json<Box<StatementOut>>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such statement of yours (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum ReceiptResponse {
    /// The receipt: ready, or queued to print (follow it at `/v1/documents/{id}`).
    #[oai(status = 202)]
    Accepted(Json<Box<DocumentOut>>),
    /// Not signed in as a patient (code `unauthorized`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// A cookie session without its CSRF token (code `csrf`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such payment of yours that was taken (code `not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Five documents are being prepared already (code `too_many_pending`).
    #[oai(status = 429)]
    TooMany(Json<ErrorBody>),
}

pub struct BillsApi;

#[OpenApi]
impl BillsApi {
    /// The signed-in patient's balance and statements, newest first.
    #[oai(
        path = "/v1/bills",
        method = "get",
        tag = "ApiTags::Bills",
        operation_id = "listBills"
    )]
    async fn list(&self, req: &Request, state: Data<&AppState>) -> poem::Result<BillsResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(BillsResponse::Unauthorized(unauthorized()));
        };
        let Some(scope) = me.patient() else {
            return Ok(BillsResponse::Unauthorized(unauthorized()));
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let account = accounts::own(
            &mut tx,
            &scope,
            &audit_ctx(req, Some(&me)),
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(BillsResponse::Ok(Json(BillsOut {
            balance: money(account.balance),
            statements: account.statements.iter().map(summary).collect(),
        })))
    }

    /// One statement of the signed-in patient, with its lines and payments.
    #[oai(
        path = "/v1/bills/:id",
        method = "get",
        tag = "ApiTags::Bills",
        operation_id = "getBill"
    )]
    async fn one(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<StatementResponse> {
        let Caller::In(tenant, me) = caller(req, &state, false).await? else {
            return Ok(StatementResponse::Unauthorized(unauthorized()));
        };
        let Some(scope) = me.patient() else {
            return Ok(StatementResponse::Unauthorized(unauthorized()));
        };
        let missing = || {
            StatementResponse::NotFound(ErrorBody::new("not_found", "no such statement of yours"))
        };
        let Some(id) = StatementId::parse(&id.0) else {
            return Ok(missing());
        };
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let found = statements::own(
            &mut tx,
            &scope,
            &audit_ctx(req, Some(&me)),
            id,
            state.clock.now(),
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        let Some(s) = found else {
            return Ok(missing());
        };
        let open = s.summary.is_open();
        Ok(StatementResponse::Ok(Json(Box::new(StatementOut {
            summary: summary(&s.summary),
            lines: s
                .lines
                .iter()
                .map(|l| LineOut {
                    service_date: l.service_date,
                    description: l.description.clone(),
                    code: l.code.clone(),
                    charge: money(l.charge),
                    insurance_paid: money(l.insurance_paid),
                    adjustment: money(l.adjustment),
                    patient: money(l.patient),
                })
                .collect(),
            total_charges: money(s.total_charges),
            total_insurance: money(s.total_insurance),
            total_adjustments: money(s.total_adjustments),
            total_patient: money(s.total_patient),
            paid: money(s.paid),
            payments: s
                .payments
                .iter()
                .map(|p| PaymentOut {
                    id: p.id.to_string(),
                    method: p.method.clone(),
                    status: p.status.clone(),
                    amount: money(p.amount),
                    refunded: money(p.refunded),
                    taken_back: money(p.disputed),
                    at: p.at,
                    receipt_document_id: p.receipt.map(|d| d.to_string()),
                })
                .collect(),
            payment_code: s.guest_code.clone().filter(|_| open),
        }))))
    }

    /// A taken payment's receipt as a PDF document: the one already printed, or printed now.
    #[oai(
        path = "/v1/bills/payments/:id/receipt",
        method = "post",
        tag = "ApiTags::Bills",
        operation_id = "requestReceipt"
    )]
    async fn receipt(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> poem::Result<ReceiptResponse> {
        let (_, me, mut tx) = match changing_caller(req, &state).await? {
            ChangingCaller::In(t, m, tx) => (t, m, tx),
            ChangingCaller::Out => return Ok(ReceiptResponse::Unauthorized(unauthorized())),
            ChangingCaller::Csrf => return Ok(ReceiptResponse::Forbidden(csrf())),
        };
        let Some(scope) = me.patient() else {
            return Ok(ReceiptResponse::Unauthorized(unauthorized()));
        };
        let missing = || {
            ReceiptResponse::NotFound(ErrorBody::new(
                "not_found",
                "no such payment of yours that was taken",
            ))
        };
        let Some(id) = PaymentId::parse(&id.0) else {
            return Ok(missing());
        };
        let ctx = audit_ctx(req, Some(&me));
        let now = state.clock.now();
        let doc = match print::request_receipt(&mut tx, Asker::Patient(&scope), &ctx, id, now).await
        {
            Ok((doc, _)) => doc,
            Err(DocumentError::NotFound) => return Ok(missing()),
            Err(DocumentError::TooManyPending) => {
                return Ok(ReceiptResponse::TooMany(ErrorBody::new(
                    "too_many_pending",
                    DocumentError::TooManyPending.to_string(),
                )));
            }
            Err(e) => return Err(internal(e)),
        };
        let doc = store::own(&mut tx, &scope, &ctx, doc, now)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal(DocumentError::NotFound))?;
        tx.commit().await.map_err(internal)?;
        Ok(ReceiptResponse::Accepted(Json(Box::new(out(&doc)))))
    }
}
