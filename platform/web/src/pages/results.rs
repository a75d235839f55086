//! Results pages: the patient's list (`/results`), one result (`/results/{id}`), a test's
//! trend (`/results/trend/{loinc}`) and their own choice of when to see new results
//! (`/results/preferences`); for clinical staff one result of a patient with the comment form,
//! and the same trend. Every read and write is audited by the stores.

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::ids::PatientId;
use portal_domain::patients::{self, Patient};
use portal_domain::record::RecordError;
use portal_domain::record::results::trend::{self, Trend};
use portal_domain::record::results::{
    self, Category, ResultDetail, ResultSummary, Shown, flag_label, preferences,
};
use portal_domain::scheduling::clinic_tz;

use super::trend_svg;
use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other, words};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::internal;
use crate::request::form_field as field;

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

/// A time as the results pages write it, in the clinic's zone: "Wed 2 Dec 2026, 9:15 AM".
pub fn when(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %-I:%M %p")
        .to_string()
}

/// A result in a list.
pub struct SummaryView {
    pub href: String,
    pub name: String,
    pub category: &'static str,
    pub date: String,
    pub visible: bool,
    pub shows_on: String,
    pub new: bool,
    pub flagged: bool,
    pub commented: bool,
}

pub fn summary_view(r: &ResultSummary, base: &str, tz: Tz) -> SummaryView {
    SummaryView {
        href: format!("{base}/{}", r.id),
        name: if r.name.is_empty() {
            format!("New {}", r.category.noun())
        } else {
            r.name.clone()
        },
        category: r.category.label(),
        date: words::date(r.resulted_at.with_timezone(&tz).date_naive()),
        visible: r.visible,
        shows_on: words::date(r.visible_from.with_timezone(&tz).date_naive()),
        new: r.new,
        flagged: r.flagged,
        commented: r.commented,
    }
}

/// One value of a result as a row.
pub struct ValueView {
    pub name: String,
    pub value: String,
    pub range: String,
    pub flag: &'static str,
    pub flagged: bool,
    pub trend_href: Option<String>,
}

fn value_views(d: &ResultDetail, trend_base: &str) -> Vec<ValueView> {
    d.values
        .iter()
        .map(|v| {
            let value = match (v.value_num, &v.value_text) {
                (Some(n), _) => format!(
                    "{} {}",
                    trend_svg::number(n),
                    v.unit.clone().unwrap_or_default()
                ),
                (None, Some(t)) => t.clone(),
                (None, None) => String::new(),
            };
            let unit = v.unit.clone().unwrap_or_default();
            let range = match (v.range_low, v.range_high) {
                (Some(lo), Some(hi)) => {
                    format!("{}–{} {unit}", trend_svg::number(lo), trend_svg::number(hi))
                }
                (Some(lo), None) => format!("{} {unit} or more", trend_svg::number(lo)),
                (None, Some(hi)) => format!("up to {} {unit}", trend_svg::number(hi)),
                (None, None) => v.range_text.clone(),
            };
            ValueView {
                name: v.name.clone(),
                value: value.trim().to_owned(),
                range: range.trim().to_owned(),
                flag: v.interpretation.as_deref().map_or("", flag_label),
                flagged: v.flagged(),
                trend_href: v.value_num.map(|_| format!("{trend_base}/{}", v.loinc)),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    chrome: Chrome,
    results: Vec<SummaryView>,
}

/// `GET /results`: the signed-in patient's results, newest first.
#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "results").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.patient().ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let rows = results::own(&mut tx, &scope, &ctx, now).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&ResultsPage {
        chrome,
        results: rows
            .iter()
            .map(|r| summary_view(r, "/results", tz))
            .collect(),
    })
    .map(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "result.html")]
struct ResultPage {
    chrome: Chrome,
    /// Set for staff: whose result.
    patient: Option<Patient>,
    name: String,
    category: &'static str,
    collected: String,
    resulted: String,
    performer: String,
    conclusion: String,
    values: Vec<ValueView>,
    comment: String,
    comment_by: String,
    comment_at: String,
    /// For staff: the version the comment form was made against, and where it posts.
    version: i32,
    comment_action: String,
    /// For a held result (patient): when it will show.
    waiting_until: Option<String>,
    back: String,
    errors: FormErrors,
    typed_comment: String,
}

fn detail_page(
    chrome: Chrome,
    patient: Option<Patient>,
    d: &ResultDetail,
    trend_base: &str,
    back: String,
) -> ResultPage {
    let tz = clinic_tz(&chrome.tenant);
    let comment_action = patient
        .as_ref()
        .map(|p| format!("/admin/patients/{}/results/{}/comment", p.id, d.id))
        .unwrap_or_default();
    ResultPage {
        patient,
        name: d.name.clone(),
        category: d.category.label(),
        collected: d.collected_at.map(|t| when(t, tz)).unwrap_or_default(),
        resulted: when(d.resulted_at, tz),
        performer: d.performer.clone(),
        conclusion: d.conclusion.clone(),
        values: value_views(d, trend_base),
        comment: d.comment.clone(),
        comment_by: d.commented_by.clone().unwrap_or_default(),
        comment_at: d.commented_at.map(|t| when(t, tz)).unwrap_or_default(),
        version: d.version,
        comment_action,
        waiting_until: None,
        back,
        errors: FormErrors::default(),
        // The form starts from the comment as it stands.
        typed_comment: d.comment.clone(),
        chrome,
    }
}

/// `GET /results/{id}`: one of the signed-in patient's results (marks it seen).
#[handler]
pub async fn own_one(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "results").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.patient().ok_or_else(not_found)?;
    let id = uuid::Uuid::try_parse(&raw).map_err(|_| not_found())?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let tz = clinic_tz(&chrome.tenant);
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let shown = results::own_one(&mut tx, &scope, &ctx, id, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    let page = match shown {
        Shown::Visible(d) => detail_page(chrome, None, &d, "/results/trend", "/results".into()),
        Shown::Waiting(from) => ResultPage {
            patient: None,
            name: "A new result".into(),
            category: "",
            collected: String::new(),
            resulted: String::new(),
            performer: String::new(),
            conclusion: String::new(),
            values: Vec::new(),
            comment: String::new(),
            comment_by: String::new(),
            comment_at: String::new(),
            version: 0,
            comment_action: String::new(),
            waiting_until: Some(words::date(from.with_timezone(&tz).date_naive())),
            back: "/results".into(),
            errors: FormErrors::default(),
            typed_comment: String::new(),
            chrome,
        },
    };
    render(&page).map(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "trend.html")]
struct TrendPage {
    chrome: Chrome,
    patient: Option<Patient>,
    name: String,
    unit: String,
    range: String,
    svg: String,
    rows: Vec<(String, String, &'static str)>,
    /// How many values the chart draws (the table may list only the newest).
    total: usize,
    /// Where the table of every value is, when this page lists only the newest.
    all_href: Option<String>,
    other_units: usize,
    back: String,
}

/// How many values a trend's table lists unless every value is asked for: the newest, which
/// are what a patient looks at; ten years of weekly weights (hundreds of rows) are one link
/// away instead of making every visit to the chart a long page on a phone.
const TABLE_ROWS: usize = 20;

/// `?values=all` asks a trend page for the table of every value.
#[derive(serde::Deserialize)]
pub struct TrendQuery {
    values: Option<String>,
}

impl TrendQuery {
    fn all(&self) -> bool {
        self.values.as_deref() == Some("all")
    }
}

fn trend_page(
    chrome: Chrome,
    patient: Option<Patient>,
    t: &Trend,
    here: String,
    all: bool,
    back: String,
) -> TrendPage {
    let tz = clinic_tz(&chrome.tenant);
    let range = match (t.range_low, t.range_high) {
        (Some(lo), Some(hi)) => format!(
            "{}–{} {}",
            trend_svg::number(lo),
            trend_svg::number(hi),
            t.unit
        ),
        _ => String::new(),
    };
    TrendPage {
        svg: trend_svg::render(t, tz, "trend-title", "trend-desc"),
        name: t.name.clone(),
        unit: t.unit.clone(),
        range,
        total: t.points.len(),
        all_href: (!all && t.points.len() > TABLE_ROWS).then(|| format!("{here}?values=all")),
        rows: t
            .points
            .iter()
            .rev()
            .take(if all { usize::MAX } else { TABLE_ROWS })
            .map(|p| {
                (
                    when(p.at, tz),
                    format!("{} {}", trend_svg::number(p.value), t.unit),
                    p.interpretation.as_deref().map_or("", flag_label),
                )
            })
            .collect(),
        other_units: t.other_units,
        patient,
        back,
        chrome,
    }
}

/// `GET /results/trend/{loinc}`: the signed-in patient's values of one test over time.
#[handler]
pub async fn own_trend(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(loinc): Path<String>,
    Query(q): Query<TrendQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "results").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.patient().ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let t = trend::own(&mut tx, &state.record_cache, &scope, &ctx, &loinc, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    let here = format!("/results/trend/{}", t.loinc);
    let page = trend_page(chrome, None, &t, here, q.all(), "/results".into());
    render(&page).map(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "result_preferences.html")]
struct PreferencesPage {
    chrome: Chrome,
    /// Category code, label, waits?, days.
    rows: Vec<(&'static str, &'static str, bool, String)>,
    saved: bool,
    errors: FormErrors,
}

#[derive(serde::Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /results/preferences`: when the patient wants to see new results, per category.
#[handler]
pub async fn preferences_page(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<SavedQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "results").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.patient().ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let prefs = preferences::own(&mut tx, &scope).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    render(&PreferencesPage {
        chrome,
        rows: prefs
            .into_iter()
            .map(|(c, w)| {
                (
                    c.as_str(),
                    c.label(),
                    w.is_some(),
                    w.unwrap_or(7).to_string(),
                )
            })
            .collect(),
        saved: q.saved.is_some(),
        errors: FormErrors::default(),
    })
    .map(IntoResponse::into_response)
}

/// `POST /results/preferences`.
#[handler]
pub async fn save_preferences(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match require_user(req, state, "results").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.patient().ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut errors = FormErrors::default();
    let mut chosen = Vec::new();
    for c in Category::ALL {
        let waits = field(&f, &format!("{}_when", c.as_str())) == "wait";
        let raw_days = field(&f, &format!("{}_days", c.as_str())).trim().to_owned();
        let days = raw_days
            .parse::<i32>()
            .ok()
            .filter(|d| preferences::WAIT_DAYS.contains(d));
        if waits && days.is_none() {
            let id: &'static str = match c {
                Category::Lab => "lab-days",
                Category::Imaging => "imaging-days",
                Category::Other => "other-days",
            };
            errors.add(id, format!("{}: choose between 1 and 30 days.", c.label()));
        }
        chosen.push((c, waits, days, raw_days));
    }
    if !errors.is_empty() {
        let page = PreferencesPage {
            chrome,
            rows: chosen
                .into_iter()
                .map(|(c, w, _, raw)| (c.as_str(), c.label(), w, raw))
                .collect(),
            saved: false,
            errors,
        };
        return render_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    for (c, waits, days, _) in chosen {
        preferences::set(&mut tx, &scope, &ctx, c, days.filter(|_| waits), now)
            .await
            .map_err(internal)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(see_other("/results/preferences?saved=1"))
}

async fn staff_detail(
    req: &Request,
    state: &AppState,
    chrome: Chrome,
    me: &portal_domain::identity::scope::SignedIn,
    raw_patient: &str,
    raw_id: &str,
) -> poem::Result<ResultPage> {
    let scope = me.clinical().ok_or_else(not_found)?;
    let pid = PatientId::parse(raw_patient).ok_or_else(not_found)?;
    let id = uuid::Uuid::try_parse(raw_id).map_err(|_| not_found())?;
    let ctx = audit_ctx(req, Some(me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let patient = patients::get(&mut tx, scope.staff(), &ctx, pid, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let d = results::one(&mut tx, &scope, &ctx, pid, id, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    let base = format!("/admin/patients/{pid}");
    Ok(detail_page(
        chrome,
        Some(patient),
        &d,
        &format!("{base}/trend"),
        format!("{base}/record"),
    ))
}

/// `GET /admin/patients/{id}/results/{result}`: one result with the comment form.
#[handler]
pub async fn staff_one(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw_patient, raw_id)): Path<(String, String)>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let page = staff_detail(req, state, chrome, &me, &raw_patient, &raw_id).await?;
    render(&page).map(IntoResponse::into_response)
}

/// `POST /admin/patients/{id}/results/{result}/comment`.
#[handler]
pub async fn staff_comment(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw_patient, raw_id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.clinical().ok_or_else(not_found)?;
    let pid = PatientId::parse(&raw_patient).ok_or_else(not_found)?;
    let id = uuid::Uuid::try_parse(&raw_id).map_err(|_| not_found())?;
    let version = field(&f, "version").parse::<i32>().unwrap_or(0);
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let done = results::comment(
        &mut tx,
        &scope,
        &ctx,
        pid,
        id,
        version,
        field(&f, "comment"),
        now,
    )
    .await;
    match done {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other(&format!("/admin/patients/{pid}/results/{id}")))
        }
        Err(RecordError::NotFound) => Err(not_found()),
        Err(RecordError::Database(e)) => Err(internal(e)),
        Err(e) => {
            drop(tx);
            let mut page = staff_detail(req, state, chrome, &me, &raw_patient, &raw_id).await?;
            page.errors = FormErrors::one("comment", super::scheduling_view::sentence(&e));
            page.typed_comment = field(&f, "comment").to_owned();
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// `GET /admin/patients/{id}/trend/{loinc}`.
#[handler]
pub async fn staff_trend(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((raw_patient, loinc)): Path<(String, String)>,
    Query(q): Query<TrendQuery>,
) -> poem::Result<Response> {
    let (chrome, me) = match require_user(req, state, "patients").await? {
        Gate::In(c, u) => (c, u),
        Gate::Out(r) => return Ok(r),
    };
    let scope = me.clinical().ok_or_else(not_found)?;
    let pid = PatientId::parse(&raw_patient).ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let patient = patients::get(&mut tx, scope.staff(), &ctx, pid, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    let t = trend::of_patient(&mut tx, &state.record_cache, &scope, &ctx, pid, &loinc, now)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    let back = format!("/admin/patients/{pid}/record");
    let here = format!("/admin/patients/{pid}/trend/{}", t.loinc);
    let page = trend_page(chrome, Some(patient), &t, here, q.all(), back);
    render(&page).map(IntoResponse::into_response)
}
