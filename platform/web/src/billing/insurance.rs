//! Insurance pages. The patient's (`/bills/insurance`): their main and second coverage, each
//! with a form to add or change it (card photos chosen from their own insurance card uploads).
//! Billing staff see it on the patient's billing account with its history, and mark a
//! coverage verified (`POST /billing/patients/{id}/insurance/{coverage}/verify`).

use askama::Template;
use chrono_tz::Tz;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use portal_domain::billing::BillingError;
use portal_domain::billing::insurance::{self, Coverage, Input, RELATIONSHIPS, Rank};
use portal_domain::identity::scope::{BillingScope, SignedIn};
use portal_domain::ids::PatientId;
use portal_domain::scheduling::clinic_tz;

use super::{not_found, when};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::pages::{Chrome, FormErrors, db, render_status, see_other};
use crate::request::form_field as field;

/// A coverage as words.
pub struct CoverageView {
    pub id: String,
    pub label: &'static str,
    pub payer: String,
    pub plan: String,
    pub member_id: String,
    pub group_number: String,
    pub subscriber: String,
    pub relationship: &'static str,
    pub front: String,
    pub back: String,
    pub verified: String,
    pub version: i32,
}

impl CoverageView {
    fn of(c: &Coverage, tz: Tz) -> Self {
        CoverageView {
            id: c.id.to_string(),
            label: c.rank.label(),
            payer: c.payer.clone(),
            plan: c.plan.clone(),
            member_id: c.member_id.clone(),
            group_number: c.group_number.clone(),
            subscriber: c.subscriber.clone(),
            relationship: c.relationship_label(),
            front: c.front.map(|d| d.to_string()).unwrap_or_default(),
            back: c.back.map(|d| d.to_string()).unwrap_or_default(),
            verified: c
                .verified_at
                .map(|t| {
                    format!(
                        "{} by {}",
                        when(t, tz),
                        c.verified_by.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
            version: c.version,
        }
    }
}

#[derive(Template)]
#[template(path = "insurance.html")]
struct InsurancePage {
    chrome: Chrome,
    coverages: Vec<(&'static str, &'static str, Option<CoverageView>)>,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "insurance_form.html")]
struct InsuranceForm {
    chrome: Chrome,
    rank: &'static str,
    label: &'static str,
    adding: bool,
    typed: Input,
    version: String,
    errors: FormErrors,
    photos: Vec<(String, String)>,
    relationships: Vec<(&'static str, &'static str)>,
    /// Someone else changed it since the form was shown: it is shown as it is now.
    conflict: bool,
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn typed_of(c: &Coverage) -> Input {
    Input {
        payer: c.payer.clone(),
        plan: c.plan.clone(),
        member_id: c.member_id.clone(),
        group_number: c.group_number.clone(),
        subscriber: c.subscriber.clone(),
        relationship: c.relationship.clone(),
        front: c.front.map(|d| d.to_string()).unwrap_or_default(),
        back: c.back.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// `GET /bills/insurance`: the patient's coverage, main and second.
#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<Done>,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let found = insurance::own(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    render_status(
        &InsurancePage {
            chrome,
            coverages: Rank::ALL
                .into_iter()
                .map(|r| {
                    (
                        r.code(),
                        r.label(),
                        found
                            .iter()
                            .find(|c| c.rank == r)
                            .map(|c| CoverageView::of(c, tz)),
                    )
                })
                .collect(),
            notice: (q.done.as_deref() == Some("saved")).then_some("Your insurance was saved."),
        },
        StatusCode::OK,
    )
}

/// The form for one coverage: as it is now, or with why it was refused and what was typed
/// (`None`: show it as it is now, as after someone else's change).
async fn form_page(
    req: &Request,
    state: &AppState,
    rank: Rank,
    refused: Option<(Option<Input>, FormErrors)>,
    conflict: bool,
) -> poem::Result<Response> {
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let found = insurance::own(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        state.clock.now(),
    )
    .await
    .map_err(db)?;
    let photos = insurance::card_photos(&mut tx, &scope).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let current = found.iter().find(|c| c.rank == rank);
    let status = if conflict {
        StatusCode::CONFLICT
    } else if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    // The photos on file are offered even when older than the newest twenty, so saving
    // another change never drops one unseen.
    let mut photos: Vec<(String, String)> = photos
        .into_iter()
        .map(|(id, at)| (id.to_string(), format!("Photo uploaded {}", when(at, tz))))
        .collect();
    for kept in current.iter().flat_map(|c| [c.front, c.back]).flatten() {
        let kept = kept.to_string();
        if !photos.iter().any(|(id, _)| *id == kept) {
            photos.push((kept, "The photo on file".to_owned()));
        }
    }
    let as_now = || {
        current.map(typed_of).unwrap_or_else(|| Input {
            relationship: "self".into(),
            ..Input::default()
        })
    };
    let (typed, errors) = match refused {
        Some((typed, errors)) => (typed.unwrap_or_else(as_now), errors),
        None => (as_now(), FormErrors::default()),
    };
    render_status(
        &InsuranceForm {
            chrome,
            rank: rank.code(),
            label: rank.label(),
            adding: current.is_none(),
            version: current.map(|c| c.version.to_string()).unwrap_or_default(),
            typed,
            errors,
            photos,
            relationships: RELATIONSHIPS.to_vec(),
            conflict,
        },
        status,
    )
}

/// `GET /bills/insurance/{rank}`.
#[handler]
pub async fn edit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    let rank = Rank::parse(&raw).ok_or_else(not_found)?;
    form_page(req, state, rank, None, false).await
}

/// `POST /bills/insurance/{rank}`: adds or changes that coverage.
#[handler]
pub async fn save(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "bills", SignedIn::patient).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let rank = Rank::parse(&raw).ok_or_else(not_found)?;
    let input = Input {
        payer: field(&f, "payer").to_owned(),
        plan: field(&f, "plan").to_owned(),
        member_id: field(&f, "member_id").to_owned(),
        group_number: field(&f, "group_number").to_owned(),
        subscriber: field(&f, "subscriber").to_owned(),
        relationship: field(&f, "relationship").to_owned(),
        front: field(&f, "front").to_owned(),
        back: field(&f, "back").to_owned(),
    };
    let seen = field(&f, "version").parse::<i32>().ok();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match insurance::save_own(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        rank,
        &input,
        seen,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other("/bills/insurance?done=saved"))
        }
        Err(BillingError::Database(e)) => Err(db(e)),
        Err(BillingError::Stale) => {
            drop(tx);
            // The newer version is shown, with what was typed not put over it.
            form_page(req, state, rank, None, true).await
        }
        Err(e) => {
            drop(tx);
            let name = e.field_name().unwrap_or("payer");
            form_page(
                req,
                state,
                rank,
                Some((Some(input), FormErrors::one(name, e.to_string()))),
                false,
            )
            .await
        }
    }
}

/// One coverage with its history, for the billing account page.
pub struct StaffCoverage {
    pub c: CoverageView,
    pub history: Vec<(String, String, String, String)>,
}

/// A patient's insurance for billing staff (audited).
pub async fn for_account(
    tx: &mut portal_tenants::TenantTx,
    scope: &BillingScope,
    ctx: &portal_domain::audit::AuditContext,
    patient: PatientId,
    tz: Tz,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<StaffCoverage>, sqlx::Error> {
    Ok(insurance::for_staff(tx, scope, ctx, patient, now)
        .await?
        .into_iter()
        .map(|(c, history)| StaffCoverage {
            c: CoverageView::of(&c, tz),
            history: history
                .into_iter()
                .map(|h| {
                    (
                        when(h.at, tz),
                        match h.change.as_str() {
                            "added" => "Added by",
                            "verified" => "Verified by",
                            _ => "Changed by",
                        }
                        .to_owned(),
                        h.by,
                        format!("Version {}: {}", h.version, h.summary),
                    )
                })
                .collect(),
        })
        .collect())
}

/// `POST /billing/patients/{id}/insurance/{coverage}/verify`.
#[handler]
pub async fn verify(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw, raw_coverage)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me, scope) = match super::gate(req, state, "billing", SignedIn::billing).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let patient = PatientId::parse(&raw).ok_or_else(not_found)?;
    let coverage = uuid::Uuid::parse_str(&raw_coverage).map_err(|_| not_found())?;
    let seen = field(&f, "version")
        .parse::<i32>()
        .map_err(|_| not_found())?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    match insurance::verify(
        &mut tx,
        &scope,
        &audit_ctx(req, Some(&me)),
        patient,
        coverage,
        seen,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!(
                "/billing/patients/{patient}?done=verified#insurance"
            )))
        }
        Err(BillingError::NotFound) => Err(not_found()),
        // The patient changed it since: the page shows the newer one, unverified.
        Err(BillingError::Stale) => Ok(see_other(&format!(
            "/billing/patients/{patient}?done=changed#insurance"
        ))),
        Err(e) => Err(db(e)),
    }
}
