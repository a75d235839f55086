//! Editing and removing one piece of scheduling set-up: a location, a visit type or a
//! provider (`/admin/scheduling/{kind}/{id}`), and asking before removing it or a block of
//! weekly hours. Removing something still in use is refused with the reason (see
//! `setup::changes`).

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::identity::scope::SignedIn;
use portal_domain::ids::{AvailabilityId, LocationId, ProviderId, VisitTypeId};
use portal_domain::scheduling::setup::{self, SetupError, minute_label};

use super::confirm::ConfirmAction;
use super::scheduling_view::sentence;
use super::{Chrome, FormErrors, Gate, db, render, render_status, require_user, see_other};
use crate::AppState;
use crate::auth::audit_ctx;
use crate::csrf::check_form;
use crate::request::form_field as field;

fn not_found() -> poem::Error {
    poem::Error::from(poem::error::NotFoundError)
}

async fn admin(
    req: &Request,
    state: &AppState,
) -> poem::Result<Result<(Chrome, SignedIn), Response>> {
    match require_user(req, state, "admin").await? {
        Gate::In(c, u) if u.admin().is_some() => Ok(Ok((c, u))),
        Gate::In(..) => Ok(Err(not_found().into_response())),
        Gate::Out(r) => Ok(Err(r)),
    }
}

/// Which piece of set-up an address names.
#[derive(Clone, Copy)]
enum Item {
    Location(LocationId),
    VisitType(VisitTypeId),
    Provider(ProviderId),
}

impl Item {
    fn parse(kind: &str, id: &str) -> Option<Self> {
        match kind {
            "locations" => LocationId::parse(id).map(Self::Location),
            "visit-types" => VisitTypeId::parse(id).map(Self::VisitType),
            "providers" => ProviderId::parse(id).map(Self::Provider),
            _ => None,
        }
    }
    fn path(self) -> String {
        match self {
            Self::Location(id) => format!("/admin/scheduling/locations/{id}"),
            Self::VisitType(id) => format!("/admin/scheduling/visit-types/{id}"),
            Self::Provider(id) => format!("/admin/scheduling/providers/{id}"),
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Self::Location(_) => "location",
            Self::VisitType(_) => "visit type",
            Self::Provider(_) => "provider",
        }
    }
}

#[derive(Template)]
#[template(path = "setup_item.html")]
struct EditPage {
    chrome: Chrome,
    heading: String,
    action: String,
    kind: &'static str,
    item_name: String,
    address: String,
    duration: String,
    self_bookable: bool,
    errors: FormErrors,
}

/// The current name (and details) of an item, or `None` when it does not exist (or was removed).
async fn current(
    req: &poem::Request,
    state: &AppState,
    chrome: &Chrome,
    item: Item,
) -> poem::Result<Option<(String, String, String, bool)>> {
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let found = match item {
        Item::Location(id) => setup::locations(&mut tx)
            .await
            .map_err(db)?
            .into_iter()
            .find(|l| l.id == id)
            .map(|l| (l.name, l.address, String::new(), false)),
        Item::VisitType(id) => setup::visit_types(&mut tx)
            .await
            .map_err(db)?
            .into_iter()
            .find(|v| v.id == id)
            .map(|v| {
                (
                    v.name,
                    String::new(),
                    v.duration_minutes.to_string(),
                    v.self_bookable,
                )
            }),
        Item::Provider(id) => setup::providers(&mut tx)
            .await
            .map_err(db)?
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| (p.display_name, String::new(), String::new(), false)),
    };
    tx.commit().await.map_err(db)?;
    Ok(found)
}

fn edit_page(
    chrome: Chrome,
    item: Item,
    v: (String, String, String, bool),
    errors: FormErrors,
) -> EditPage {
    EditPage {
        chrome,
        heading: format!("Change {}", v.0),
        action: item.path(),
        kind: item.noun(),
        item_name: v.0,
        address: v.1,
        duration: v.2,
        self_bookable: v.3,
        errors,
    }
}

/// `GET /admin/scheduling/{kind}/{id}`.
#[handler]
pub async fn edit(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> poem::Result<Response> {
    let (chrome, _) = match admin(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let item = Item::parse(&kind, &id).ok_or_else(not_found)?;
    let v = current(req, state, &chrome, item)
        .await?
        .ok_or_else(not_found)?;
    render(&edit_page(chrome, item, v, FormErrors::default())).map(IntoResponse::into_response)
}

/// `POST /admin/scheduling/{kind}/{id}`.
#[handler]
pub async fn update(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match admin(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scope = me.admin().ok_or_else(not_found)?;
    let item = Item::parse(&kind, &id).ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let (name, address, duration) = (
        field(&f, "name"),
        field(&f, "address"),
        field(&f, "duration"),
    );
    let bookable = !field(&f, "self_bookable").is_empty();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = match item {
        Item::Location(id) => {
            setup::update_location(&mut tx, &scope, &ctx, id, name, address, now).await
        }
        Item::VisitType(id) => {
            setup::update_visit_type(
                &mut tx,
                &scope,
                &ctx,
                id,
                setup::VisitTypeEdit {
                    name,
                    duration_minutes: duration,
                    self_bookable: bookable,
                },
                now,
            )
            .await
        }
        Item::Provider(id) => setup::rename_provider(&mut tx, &scope, &ctx, id, name, now).await,
    };
    match result {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other("/admin/scheduling?done=1"))
        }
        Err(SetupError::Database(e)) => Err(db(e)),
        Err(
            SetupError::UnknownLocation
            | SetupError::UnknownVisitType
            | SetupError::UnknownProvider,
        ) => Err(not_found()),
        Err(e) => {
            drop(tx);
            let field_id = match &e {
                SetupError::Invalid(m) if m.contains("minutes") => "duration",
                _ => "name",
            };
            let typed = (
                name.to_owned(),
                address.to_owned(),
                duration.to_owned(),
                bookable,
            );
            render_status(
                &edit_page(chrome, item, typed, FormErrors::one(field_id, sentence(&e))),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

fn remove_page(chrome: Chrome, item: Item, name: &str, error: Option<String>) -> ConfirmAction {
    let consequence = match item {
        Item::Provider(_) => "Their weekly hours are removed too. Past visits keep their name.",
        _ => "Past visits keep its name. It can no longer be chosen for new visits.",
    };
    ConfirmAction {
        title: format!("Remove this {}?", item.noun()),
        question: format!("Remove the {} “{name}”?", item.noun()),
        details: Vec::new(),
        consequence: consequence.to_owned(),
        action: format!("{}/delete", item.path()),
        hidden: Vec::new(),
        confirm_label: format!("Yes, remove the {}", item.noun()),
        danger: true,
        back: "/admin/scheduling".to_owned(),
        back_label: "Scheduling set-up".to_owned(),
        error,
        chrome,
    }
}

/// `GET /admin/scheduling/{kind}/{id}/delete`: asks first.
#[handler]
pub async fn remove_ask(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> poem::Result<Response> {
    let (chrome, _) = match admin(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let item = Item::parse(&kind, &id).ok_or_else(not_found)?;
    let (name, ..) = current(req, state, &chrome, item)
        .await?
        .ok_or_else(not_found)?;
    render(&remove_page(chrome, item, &name, None)).map(IntoResponse::into_response)
}

/// `POST /admin/scheduling/{kind}/{id}/delete`.
#[handler]
pub async fn remove(
    req: &Request,
    Data(state): Data<&AppState>,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    check_form(req, field(&f, "csrf"))?;
    let (chrome, me) = match admin(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let scope = me.admin().ok_or_else(not_found)?;
    let item = Item::parse(&kind, &id).ok_or_else(not_found)?;
    let (name, ..) = current(req, state, &chrome, item)
        .await?
        .ok_or_else(not_found)?;
    let ctx = audit_ctx(req, Some(&me));
    let now = state.clock.now();
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let result = match item {
        Item::Location(id) => setup::retire_location(&mut tx, &scope, &ctx, id, now).await,
        Item::VisitType(id) => setup::retire_visit_type(&mut tx, &scope, &ctx, id, now).await,
        Item::Provider(id) => setup::retire_provider(&mut tx, &scope, &ctx, id, now).await,
    };
    match result {
        Ok(()) => {
            tx.commit().await.map_err(db)?;
            Ok(see_other("/admin/scheduling?done=removed"))
        }
        Err(SetupError::Database(e)) => Err(db(e)),
        Err(e @ SetupError::InUse(_)) => {
            drop(tx);
            let words = format!(
                "The {} cannot be removed yet. {}",
                item.noun(),
                sentence(&e)
            );
            render_status(
                &remove_page(chrome, item, &name, Some(words)),
                StatusCode::CONFLICT,
            )
        }
        Err(_) => Err(not_found()),
    }
}

/// `GET /admin/scheduling/hours/{id}/delete`: asks before removing a block of weekly hours.
#[handler]
pub async fn remove_hours_ask(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let (chrome, _) = match admin(req, state).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let id = AvailabilityId::parse(&id).ok_or_else(not_found)?;
    let mut tx = crate::tx::begin(req, &state.tenant_db, &chrome.tenant)
        .await
        .map_err(db)?;
    let window = setup::windows(&mut tx, None)
        .await
        .map_err(db)?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(not_found)?;
    let providers = setup::providers(&mut tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let who = providers
        .iter()
        .find(|p| p.id == window.provider_id)
        .map_or(String::new(), |p| p.display_name.clone());
    let day = setup::weekday_from_iso(window.weekday);
    let page = ConfirmAction {
        title: "Remove these hours?".to_owned(),
        question: format!(
            "Remove {who}’s hours on {}s, {} – {}?",
            weekday_name(day),
            minute_label(window.start_minute),
            minute_label(window.end_minute)
        ),
        details: Vec::new(),
        consequence: "Patients can no longer book those times. Visits already booked stay booked."
            .to_owned(),
        action: format!("/admin/scheduling/hours/{id}/delete"),
        hidden: Vec::new(),
        confirm_label: "Yes, remove the hours".to_owned(),
        danger: true,
        back: "/admin/scheduling".to_owned(),
        back_label: "Scheduling set-up".to_owned(),
        error: None,
        chrome,
    };
    render(&page).map(IntoResponse::into_response)
}

fn weekday_name(d: chrono::Weekday) -> &'static str {
    match d {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}
