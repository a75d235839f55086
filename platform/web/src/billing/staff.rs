//! The billing console (billing staff and administrators): the work queue (`/billing`), a
//! patient's account with its ledger (`/billing/patients/{id}`), and a statement's page
//! (`/billing/statements/{id}`) where a draft gets its lines, is issued after a check of what
//! will happen, takes desk payments, or is voided with a reason.

use askama::Template;
use chrono::{Duration, NaiveDate};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::billing::lines::{self, LineInput};
use portal_domain::billing::payments::{self, OfflineInput};
use portal_domain::billing::statements;
use portal_domain::billing::{BillingError, accounts};
use portal_domain::identity::scope::{BillingScope, SignedIn};
use portal_domain::ids::{PatientId, StatementId};
use portal_domain::scheduling::clinic_tz;

use super::{StatementView, SummaryView, not_found};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::confirm::ConfirmAction;
use crate::pages::scheduling_view::today;
use crate::pages::{Chrome, FormErrors, db, render, render_status, see_other, words};
use crate::request::form_field as field;

#[derive(Template)]
#[template(path = "billing_queue.html")]
struct QueuePage {
    chrome: Chrome,
    drafts: Vec<SummaryView>,
    owed: Vec<SummaryView>,
    owed_total: String,
}

/// `GET /billing`: drafts to finish and statements still owed, oldest due first.
#[handler]
pub async fn queue(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let all = statements::work_queue(&mut tx, &scope, &ctx, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let mut owed: Vec<_> = all.iter().filter(|s| s.is_open()).collect();
    owed.sort_by_key(|s| (s.due_on, s.number));
    let owed_total = owed
        .first()
        .map(|first| {
            portal_domain::billing::Money::new(
                owed.iter().map(|s| s.due.minor).sum(),
                first.due.currency,
            )
            .to_string()
        })
        .unwrap_or_default();
    render(&QueuePage {
        drafts: all
            .iter()
            .filter(|s| s.status == statements::Status::Draft)
            .map(|s| SummaryView::of(s, tz))
            .collect(),
        owed: owed.iter().map(|s| SummaryView::of(s, tz)).collect(),
        owed_total,
        chrome,
    })
    .map(IntoResponse::into_response)
}

/// One ledger entry, as words.
struct EntryView {
    when: String,
    label: &'static str,
    statement: String,
    statement_id: String,
    amount: String,
    balance: String,
}

#[derive(Template)]
#[template(path = "billing_account.html")]
struct AccountPage {
    chrome: Chrome,
    insurance: Vec<super::insurance::StaffCoverage>,
    notice: Option<&'static str>,
    patient_id: String,
    patient: String,
    balance: String,
    statements: Vec<SummaryView>,
    entries: Vec<EntryView>,
}

#[derive(serde::Deserialize)]
pub struct AccountDone {
    done: Option<String>,
}

/// `GET /billing/patients/{id}`: balance, statements, insurance and the ledger.
#[handler]
pub async fn account(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Query(q): Query<AccountDone>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let patient = PatientId::parse(&raw).ok_or_else(not_found)?;
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let acct = accounts::for_staff(&mut tx, &scope, &ctx, patient, state.clock.now())
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let insurance =
        super::insurance::for_account(&mut tx, &scope, &ctx, patient, tz, state.clock.now())
            .await
            .map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&AccountPage {
        insurance,
        notice: match q.done.as_deref() {
            Some("verified") => Some("The insurance is marked verified."),
            Some("changed") => Some(
                "The patient changed this insurance since you opened the page. Check it again as it is now.",
            ),
            _ => None,
        },
        patient_id: patient.to_string(),
        patient: acct.patient_name.clone(),
        balance: acct.balance.to_string(),
        statements: acct
            .statements
            .iter()
            .map(|s| SummaryView::of(s, tz))
            .collect(),
        entries: acct
            .entries
            .iter()
            .map(|e| EntryView {
                when: super::when(e.at, tz),
                label: e.label(),
                statement: e
                    .statement_number
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                statement_id: e.statement_id.map(|s| s.to_string()).unwrap_or_default(),
                amount: e.amount.to_string(),
                balance: e.balance_after.to_string(),
            })
            .collect(),
        chrome,
    })
    .map(IntoResponse::into_response)
}

/// `POST /billing/patients/{id}/statements`: starts a draft and opens it.
#[handler]
pub async fn start(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let patient = PatientId::parse(&raw).ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let id = statements::create_draft(&mut tx, &scope, &ctx, patient, state.clock.now())
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    Ok(see_other(&format!("/billing/statements/{id}")))
}

/// What was typed into the statement page's forms, kept when one is refused.
#[derive(Default)]
pub(super) struct Typed {
    pub line: LineInput,
    pub due_on: String,
    pub reason: String,
    pub payment: OfflineInput,
    /// A payment plan's number of instalments and first due date.
    pub plan_count: String,
    pub plan_first: String,
}

#[derive(Template)]
#[template(path = "billing_statement.html")]
struct StatementPage {
    chrome: Chrome,
    s: StatementView,
    errors: FormErrors,
    notice: Option<&'static str>,
    typed: Typed,
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "line" => Some("Line added."),
        "removed" => Some("Line removed."),
        "issued" => Some("Statement issued. The patient has been told a new statement is ready."),
        "voided" => Some("Statement voided."),
        "paid" => Some("Payment recorded."),
        "plan" => Some("Payment plan set up. The patient sees its instalments with the statement."),
        "plan_ended" => Some("Payment plan ended. What is still due stays due."),
        "refunded" => Some("Refunded. The amount is back on the patient's account."),
        "refund_queued" => Some(
            "The refund is recorded and on its way: Stripe could not be reached just now, so it will be sent again shortly.",
        ),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn statement_page(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &BillingScope,
    id: StatementId,
    errors: FormErrors,
    typed: Typed,
    notice: Option<&'static str>,
    status: StatusCode,
) -> poem::Result<Response> {
    let tz = clinic_tz(&chrome.tenant);
    let now = state.clock.now();
    let ctx = audit_ctx(req, Some(me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let s = statements::for_staff(&mut tx, scope, &ctx, id, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    let today = today(tz, now);
    let mut typed = typed;
    if typed.due_on.is_empty() {
        typed.due_on = (today + Duration::days(30)).format("%Y-%m-%d").to_string();
    }
    if typed.payment.received_on.is_empty() {
        typed.payment.received_on = today.format("%Y-%m-%d").to_string();
    }
    if typed.line.service_date.is_empty() {
        typed.line.service_date = today.format("%Y-%m-%d").to_string();
    }
    if typed.plan_count.is_empty() {
        typed.plan_count = "3".to_owned();
    }
    if typed.plan_first.is_empty() {
        typed.plan_first = s
            .summary
            .due_on
            .filter(|d| *d >= today)
            .unwrap_or(today + Duration::days(30))
            .format("%Y-%m-%d")
            .to_string();
    }
    let page = StatementPage {
        s: StatementView::of(&s, tz, today),
        errors,
        notice,
        typed,
        chrome,
    };
    render_status(&page, status)
}

fn parse_id(raw: &str) -> poem::Result<StatementId> {
    StatementId::parse(raw).ok_or_else(not_found)
}

/// `GET /billing/statements/{id}`.
#[handler]
pub async fn statement(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    statement_page(
        req,
        state,
        chrome,
        &me,
        &scope,
        id,
        FormErrors::default(),
        Typed::default(),
        notice(q.done.as_deref()),
        StatusCode::OK,
    )
    .await
}

/// A refused change: the statement's page again with the problem and what was typed. Another
/// clinic's or a made-up statement is 404; a database failure a server error.
#[allow(clippy::too_many_arguments)]
pub(super) async fn refused(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &SignedIn,
    scope: &BillingScope,
    id: StatementId,
    e: BillingError,
    anchor: &'static str,
    typed: Typed,
) -> poem::Result<Response> {
    let status = match &e {
        BillingError::NotFound => return Err(not_found()),
        BillingError::Database(_) | BillingError::Queue(_) => return Err(db(e)),
        BillingError::Stale => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let errors = FormErrors::one(e.field_name().unwrap_or(anchor), e.to_string());
    statement_page(
        req, state, chrome, me, scope, id, errors, typed, None, status,
    )
    .await
}

fn version(f: &[(String, String)]) -> i32 {
    field(f, "version").parse().unwrap_or(-1)
}

/// `POST /billing/statements/{id}/lines`: adds a line to a draft.
#[handler]
pub async fn add_line(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let input = LineInput {
        service_date: field(&f, "service_date").to_owned(),
        description: field(&f, "description").to_owned(),
        code: field(&f, "code").to_owned(),
        charge: field(&f, "charge").to_owned(),
        insurance_paid: field(&f, "insurance_paid").to_owned(),
        adjustment: field(&f, "adjustment").to_owned(),
    };
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let currency = statements::currency_of(&mut tx, &scope, id)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let line = match lines::parse(&input, currency, today(tz, now)) {
        Ok(l) => l,
        Err(problems) => {
            tx.commit().await.map_err(db)?;
            let mut errors = FormErrors::default();
            for (f, m) in problems {
                errors.add(f, m);
            }
            let typed = Typed {
                line: input,
                ..Typed::default()
            };
            return statement_page(
                req,
                state,
                chrome,
                &me,
                &scope,
                id,
                errors,
                typed,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match statements::add_line(&mut tx, &scope, &ctx, id, version(&f), &line, now).await {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/billing/statements/{id}?done=line")))
        }
        Err(e) => {
            drop(tx);
            let typed = Typed {
                line: input,
                ..Typed::default()
            };
            refused(req, state, chrome, &me, &scope, id, e, "lines", typed).await
        }
    }
}

/// `POST /billing/statements/{id}/lines/{line}/remove`.
#[handler]
pub async fn remove_line(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_line)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let line = uuid::Uuid::try_parse(&raw_line).map_err(|_| not_found())?;
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match statements::remove_line(
        &mut tx,
        &scope,
        &ctx,
        id,
        version(&f),
        line,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/billing/statements/{id}?done=removed")))
        }
        Err(e) => {
            drop(tx);
            refused(
                req,
                state,
                chrome,
                &me,
                &scope,
                id,
                e,
                "lines",
                Typed::default(),
            )
            .await
        }
    }
}

/// `POST /billing/statements/{id}/issue`: first the check of what will happen (the amount,
/// the patient, the due date), then, confirmed, the issue itself.
#[handler]
pub async fn issue(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let typed_due = field(&f, "due_on").trim().to_owned();
    let bad_due = |message: &str| {
        Typed {
            due_on: typed_due.clone(),
            ..Typed::default()
        }
        .with(message)
    };
    let due_on = match NaiveDate::parse_from_str(&typed_due, "%Y-%m-%d") {
        Ok(d) if d < today(tz, now) => Err(bad_due("The due date cannot be in the past.")),
        Ok(d) => Ok(d),
        Err(_) => Err(bad_due("Enter the day payment is due, like 2026-12-31.")),
    };
    let due_on = match due_on {
        Ok(d) => d,
        Err((typed, message)) => {
            return statement_page(
                req,
                state,
                chrome,
                &me,
                &scope,
                id,
                FormErrors::one("due_on", message),
                typed,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let seen = version(&f);
    let ctx = audit_ctx(req, Some(&me));
    if field(&f, "confirmed") != "1" {
        let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
            .await
            .map_err(db)?;
        let s = statements::for_staff(&mut tx, &scope, &ctx, id, now)
            .await
            .map_err(db)?
            .ok_or_else(not_found)?;
        tx.commit().await.map_err(db)?;
        if s.lines.is_empty() || s.version != seen {
            let e = if s.lines.is_empty() {
                BillingError::NoLines
            } else {
                BillingError::Stale
            };
            return refused(
                req,
                state,
                chrome,
                &me,
                &scope,
                id,
                e,
                "lines",
                Typed::default(),
            )
            .await;
        }
        let back = format!("/billing/statements/{id}");
        let page = ConfirmAction {
            title: format!("Issue statement {}?", s.summary.number),
            question: format!(
                "Issue statement {} to {} for {}, due {}?",
                s.summary.number,
                s.summary.patient_name,
                s.total_patient,
                words::date(due_on)
            ),
            details: vec![
                ("Lines", s.lines.len().to_string()),
                ("Charges", s.total_charges.to_string()),
                ("Insurance paid", s.total_insurance.to_string()),
                ("Adjustments", s.total_adjustments.to_string()),
                ("Patient pays", s.total_patient.to_string()),
            ],
            consequence: "The patient's account is charged, and they are told by email or text that a new statement is ready (the message does not say what for or how much). An issued statement cannot be changed, only voided.".to_owned(),
            action: format!("/billing/statements/{id}/issue"),
            hidden: vec![
                ("due_on", due_on.format("%Y-%m-%d").to_string()),
                ("version", seen.to_string()),
                ("confirmed", "1".to_owned()),
            ],
            confirm_label: "Issue the statement".to_owned(),
            danger: false,
            back,
            back_label: format!("Statement {}", s.summary.number),
            error: None,
            chrome,
        };
        return render(&page).map(IntoResponse::into_response);
    }
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match statements::issue(&mut tx, &scope, &ctx, id, seen, due_on, now).await {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/billing/statements/{id}?done=issued")))
        }
        Err(e) => {
            drop(tx);
            refused(
                req,
                state,
                chrome,
                &me,
                &scope,
                id,
                e,
                "lines",
                Typed::default(),
            )
            .await
        }
    }
}

impl Typed {
    fn with(self, message: &str) -> (Typed, String) {
        (self, message.to_owned())
    }
}

/// `POST /billing/statements/{id}/void`: asks first, then voids with the reason given.
#[handler]
pub async fn void(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let now = state.clock.now();
    let reason = field(&f, "reason").trim().to_owned();
    let seen = version(&f);
    let ctx = audit_ctx(req, Some(&me));
    let typed = || Typed {
        reason: reason.clone(),
        ..Typed::default()
    };
    if reason.is_empty() {
        return refused(
            req,
            state,
            chrome,
            &me,
            &scope,
            id,
            BillingError::Field {
                field: "reason",
                message: "Say why the statement is voided; the patient's account keeps it."
                    .to_owned(),
            },
            "reason",
            typed(),
        )
        .await;
    }
    if field(&f, "confirmed") != "1" {
        let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
            .await
            .map_err(db)?;
        let s = statements::for_staff(&mut tx, &scope, &ctx, id, now)
            .await
            .map_err(db)?
            .ok_or_else(not_found)?;
        tx.commit().await.map_err(db)?;
        let consequence = if s.summary.status == statements::Status::Draft {
            "The draft is set aside; the patient never sees it.".to_owned()
        } else {
            format!(
                "The {} charge is taken off the patient's account. What was paid on it ({}) stays on the account as a credit, to refund or to put toward another statement.",
                s.total_patient, s.paid
            )
        };
        let page = ConfirmAction {
            title: format!("Void statement {}?", s.summary.number),
            question: format!(
                "Void statement {} for {}?",
                s.summary.number, s.summary.patient_name
            ),
            details: vec![("Reason", reason.clone())],
            consequence,
            action: format!("/billing/statements/{id}/void"),
            hidden: vec![
                ("reason", reason.clone()),
                ("version", seen.to_string()),
                ("confirmed", "1".to_owned()),
            ],
            confirm_label: "Void the statement".to_owned(),
            danger: true,
            back: format!("/billing/statements/{id}"),
            back_label: format!("Statement {}", s.summary.number),
            error: None,
            chrome,
        };
        return render(&page).map(IntoResponse::into_response);
    }
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match statements::void(&mut tx, &scope, &ctx, id, seen, &reason, now).await {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/billing/statements/{id}?done=voided")))
        }
        Err(e) => {
            drop(tx);
            refused(req, state, chrome, &me, &scope, id, e, "reason", typed()).await
        }
    }
}

/// `POST /billing/statements/{id}/payments`: cash or a cheque taken at the desk.
#[handler]
pub async fn record_payment(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = parse_id(&raw)?;
    let input = OfflineInput {
        amount: field(&f, "amount").to_owned(),
        method: field(&f, "method").to_owned(),
        reference: field(&f, "reference").to_owned(),
        received_on: field(&f, "received_on").to_owned(),
    };
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let ctx = audit_ctx(req, Some(&me));
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match payments::record_offline(&mut tx, &scope, &ctx, id, &input, today(tz, now), now).await {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/billing/statements/{id}?done=paid")))
        }
        Err(e) => {
            drop(tx);
            let typed = Typed {
                payment: input,
                ..Typed::default()
            };
            refused(req, state, chrome, &me, &scope, id, e, "amount", typed).await
        }
    }
}
