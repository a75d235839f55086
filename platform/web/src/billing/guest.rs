//! Paying a statement without an account (`/pay` on the clinic's site): the code printed on
//! the statement opens the amount due and the clinic's name — never the patient's name or the
//! services — and a card payment toward it. A link with the code in it (`/pay/code/{code}`,
//! for a QR code on paper) moves the code into a short-lived cookie and drops it from the
//! address. Codes tried are limited per client address and per clinic.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::audit::AuditContext;
use portal_domain::billing::card::{self, Payer};
use portal_domain::billing::guest::{self, GuestStatement};
use portal_domain::billing::{BillingError, setup};
use portal_domain::ids::PaymentId;

use super::checkout;
use super::pay::ResultPage;
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::limits;
use crate::pages::{
    Chrome, FormErrors, as_too_many, chrome, db, render, render_status, see_other, too_many_words,
    within_limits,
};
use crate::request::form_field as field;

#[derive(Template)]
#[template(path = "pay_code.html")]
struct CodePage {
    chrome: Chrome,
    code: String,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "pay_guest.html")]
struct GuestPage {
    chrome: Chrome,
    /// As typed, carried to the next step in the form (never the address).
    code: String,
    number: i64,
    due: String,
    /// `open`: something to pay; `paid`: nothing due; `void`: cancelled by the clinic;
    /// `no_cards`: the clinic takes no card payments online.
    state: &'static str,
    amount: String,
    errors: FormErrors,
    call_us: String,
}

const CODE_COOKIE_KIND: &str = "pay.";

fn stashed(req: &Request, state: &AppState) -> Option<String> {
    crate::request::cookie(req, state.cookies.pay_code_name())
        .and_then(|v| v.strip_prefix(CODE_COOKIE_KIND).map(str::to_owned))
}

/// `GET /pay/code/{code}`: the code moves into a cookie for 15 minutes; the address drops it.
#[handler]
pub async fn link(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    crate::pages::clinic_or_404(req)?;
    let Some(code) = guest::normalize(&raw) else {
        return Ok(see_other("/pay"));
    };
    let value = format!("{CODE_COOKIE_KIND}{code}");
    Ok(see_other("/pay")
        .with_header(
            "set-cookie",
            state
                .cookies
                .set(state.cookies.pay_code_name(), &value, Some(900)),
        )
        .into_response())
}

/// `GET /pay`: asks for the code (or, after a link, shows its statement).
#[handler]
pub async fn form(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let chrome = chrome(req, state, "pay").await?;
    if let Some(code) = stashed(req, state) {
        return lookup(
            req,
            state,
            chrome,
            &code,
            String::new(),
            FormErrors::default(),
        )
        .await;
    }
    render(&CodePage {
        chrome,
        code: String::new(),
        errors: FormErrors::default(),
    })
    .map(IntoResponse::into_response)
}

/// `POST /pay`: the statement a typed code opens.
#[handler]
pub async fn open(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let chrome = chrome(req, state, "pay").await?;
    let typed = field(&f, "code").trim().to_owned();
    lookup(
        req,
        state,
        chrome,
        &typed,
        String::new(),
        FormErrors::default(),
    )
    .await
}

/// Why a code opened nothing.
enum Problem {
    Limited(limits::RetryAfter),
    NotACode,
    Unknown,
}

/// The statement for a code, counted against the limits.
async fn find(
    req: &Request,
    state: &AppState,
    chrome: &Chrome,
    typed: &str,
) -> poem::Result<Result<GuestStatement, Problem>> {
    let clinic = chrome.tenant.id().to_string();
    if let Err(wait) = within_limits(
        req,
        state,
        limits::PAY_CODE_PER_ADDRESS,
        &[(limits::PAY_CODE_PER_CLINIC, &clinic)],
    )
    .await
    {
        return Ok(Err(Problem::Limited(wait)));
    }
    let Some(code) = guest::normalize(typed) else {
        return Ok(Err(Problem::NotACode));
    };
    let ctx = audit_ctx(req, None);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let found = guest::find(&mut tx, &ctx, &code, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(found.ok_or(Problem::Unknown))
}

/// The code's page again, saying why the code opened nothing.
fn refused_code(chrome: Chrome, typed: &str, problem: Problem) -> poem::Result<Response> {
    let (status, words) = match &problem {
        Problem::Limited(wait) => (StatusCode::TOO_MANY_REQUESTS, too_many_words(*wait)),
        Problem::NotACode => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the 12-character code printed on your statement, like K7QF-M2X9-PA4D."
                .to_owned(),
        ),
        Problem::Unknown => (
            StatusCode::NOT_FOUND,
            "No statement has that code. Check it against your statement.".to_owned(),
        ),
    };
    let page = render_status(
        &CodePage {
            chrome,
            code: typed.to_owned(),
            errors: FormErrors::one("code", words),
        },
        status,
    )?;
    Ok(match problem {
        Problem::Limited(wait) => as_too_many(page, wait),
        _ => page,
    })
}

async fn lookup(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    typed: &str,
    amount: String,
    errors: FormErrors,
) -> poem::Result<Response> {
    let g = match find(req, state, &chrome, typed).await? {
        Ok(g) => g,
        Err(problem) => return refused_code(chrome, typed, problem),
    };
    guest_page(state, chrome, typed, &g, amount, errors).await
}

async fn guest_page(
    state: &AppState,
    chrome: Chrome,
    typed: &str,
    g: &GuestStatement,
    amount: String,
    errors: FormErrors,
) -> poem::Result<Response> {
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let cards = setup::read(&mut tx).await.map_err(db)?.charges_enabled;
    let profile = portal_domain::clinic::ClinicProfile::load(&mut tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let page_state = if !g.open {
        "void"
    } else if g.due.minor <= 0 {
        "paid"
    } else if !cards || state.stripe.is_none() {
        "no_cards"
    } else {
        "open"
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(
        &GuestPage {
            code: typed.to_owned(),
            number: g.number,
            due: g.due.to_string(),
            state: page_state,
            amount: if amount.is_empty() {
                g.due.plain()
            } else {
                amount
            },
            errors,
            call_us: profile.call_us(chrome.tenant.display_name()),
            chrome,
        },
        status,
    )
}

/// `POST /pay/checkout`: records a pending payment toward the statement the code opens and
/// goes to Stripe.
#[handler]
pub async fn start(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let chrome = chrome(req, state, "pay").await?;
    let typed = field(&f, "code").trim().to_owned();
    let amount = field(&f, "amount").trim().to_owned();
    let g = match find(req, state, &chrome, &typed).await? {
        Ok(g) => g,
        Err(problem) => return refused_code(chrome, &typed, problem),
    };
    let ctx: AuditContext = audit_ctx(req, None);
    let mut tx = state.tenant_db.begin(&chrome.tenant).await.map_err(db)?;
    let started = card::start(
        &mut tx,
        Payer::Guest,
        &ctx,
        g.statement,
        &amount,
        state.clock.now(),
    )
    .await;
    let started = match started {
        Ok(s) => {
            tx.commit().await.map_err(db)?;
            s
        }
        Err(BillingError::Database(e)) => return Err(db(e)),
        Err(e) => {
            drop(tx);
            let errors = FormErrors::one("amount", e.to_string());
            return guest_page(state, chrome, &typed, &g, amount, errors).await;
        }
    };
    let success = format!("/pay/done?payment={}", started.payment);
    match checkout::launch(state, &chrome.tenant, &started, &success, "/pay").await? {
        // Only this browser may see how the payment ended; the code is forgotten (someone
        // else at this computer opening `/pay` sees nothing).
        Ok(url) => Ok(see_other(&url)
            .with_header(
                "set-cookie",
                state.cookies.set(
                    state.cookies.paid_name(),
                    &started.payment.to_string(),
                    Some(3600),
                ),
            )
            .with_header(
                "set-cookie",
                state.cookies.clear(state.cookies.pay_code_name()),
            )
            .into_response()),
        Err(words) => {
            let errors = FormErrors::one("amount", words);
            guest_page(state, chrome, &typed, &g, amount, errors).await
        }
    }
}

#[derive(serde::Deserialize)]
pub struct Done {
    payment: Option<String>,
}

/// `GET /pay/done?payment=…`: back from Stripe. Shows only the amount and the clinic.
#[handler]
pub async fn done(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let chrome = chrome(req, state, "pay").await?;
    let pid = q
        .payment
        .as_deref()
        .and_then(PaymentId::parse)
        .ok_or_else(super::not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    // A guest's payment, started in this browser: any other id answers like a missing one.
    let started_here = crate::request::cookie(req, state.cookies.paid_name())
        .is_some_and(|c| c == pid.to_string());
    let payment = card::payment(&mut tx, pid)
        .await
        .map_err(db)?
        .filter(|p| started_here && p.payer == "guest")
        .ok_or_else(super::not_found)?;
    let ctx = audit_ctx(req, None);
    card::seen(&mut tx, &ctx.automatic(), &payment, state.clock.now())
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let payment = checkout::after_return(state, &chrome.tenant, &ctx, payment).await?;
    render(&ResultPage {
        status: payment.status.clone(),
        amount: payment.amount.to_string(),
        clinic: chrome.tenant.display_name().to_owned(),
        failure: payment.failure.clone().unwrap_or_default(),
        back: "/pay".to_owned(),
        back_label: "Pay another statement".to_owned(),
        chrome,
    })
    .map(IntoResponse::into_response)
}
