//! The platform's own site (on the base domain): the home page and clinic sign-up.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Html};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::signup::{self as clinic_signup, ClinicSignup};
use portal_domain::values::{EmailAddress, PersonName};
use portal_tenants::{DisplayName, Slug, TenantError, TimeZoneName};

use super::{render, render_status};
use crate::csrf::{check_form, form_token};
use crate::limits;
use crate::{AppState, CurrentSite, internal};

#[derive(Template)]
#[template(path = "platform_home.html")]
struct PlatformHome;

/// Time zones offered first on the sign-up form (any IANA name is accepted).
const COMMON_TIME_ZONES: &[&str] = &[
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/Vancouver",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Berlin",
    "Europe/Paris",
    "Australia/Sydney",
    "Pacific/Auckland",
];

#[derive(Default, serde::Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    clinic_name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    admin_name: String,
    #[serde(default)]
    admin_email: String,
}

#[derive(Template)]
#[template(path = "platform_signup.html")]
struct PlatformSignup<'a> {
    csrf: String,
    base_domain: &'a str,
    time_zones: &'a [&'a str],
    f: SignupForm,
    errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "platform_signup_done.html")]
struct SignupDone {
    clinic_name: String,
    url: String,
    email: String,
}

/// The platform's own home page (on the base domain).
pub fn home(_req: &Request) -> poem::Result<Html<String>> {
    render(&PlatformHome)
}

fn platform_only(req: &Request) -> poem::Result<()> {
    match req.extensions().get::<CurrentSite>() {
        Some(CurrentSite::Platform) => Ok(()),
        _ => Err(poem::error::NotFoundError.into()),
    }
}

#[handler]
pub fn signup(req: &Request, Data(state): Data<&AppState>) -> poem::Result<Response> {
    platform_only(req)?;
    Ok(render(&PlatformSignup {
        csrf: form_token(req),
        base_domain: state.resolver.base_domain(),
        time_zones: COMMON_TIME_ZONES,
        f: SignupForm {
            time_zone: "America/New_York".into(),
            ..SignupForm::default()
        },
        errors: Vec::new(),
    })?
    .into_response())
}

fn parse(f: &SignupForm) -> Result<ClinicSignup, Vec<String>> {
    let mut errors = Vec::new();
    let clinic_name = DisplayName::parse(&f.clinic_name)
        .map_err(|e| errors.push(format!("Clinic name: {e}")))
        .ok();
    let slug = Slug::parse(&f.slug.trim().to_lowercase())
        .map_err(|e| errors.push(format!("Web address: {e}")))
        .ok();
    let time_zone = TimeZoneName::parse(f.time_zone.trim())
        .map_err(|e| errors.push(format!("Time zone: {e}")))
        .ok();
    let admin_name = PersonName::parse(&f.admin_name, "your name")
        .map_err(|e| errors.push(e.to_string()))
        .ok();
    let admin_email = EmailAddress::parse(&f.admin_email)
        .map_err(|e| errors.push(format!("Your email: {e}")))
        .ok();
    match (clinic_name, slug, time_zone, admin_name, admin_email) {
        (Some(clinic_name), Some(slug), Some(time_zone), Some(admin_name), Some(admin_email)) => {
            Ok(ClinicSignup {
                clinic_name,
                slug,
                time_zone,
                admin_name,
                admin_email,
            })
        }
        _ => Err(errors),
    }
}

#[handler]
pub async fn signup_submit(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(f): Form<SignupForm>,
) -> poem::Result<Response> {
    platform_only(req)?;
    check_form(req, &f.csrf)?;
    let again = |f: SignupForm, errors: Vec<String>| {
        render_status(
            &PlatformSignup {
                csrf: form_token(req),
                base_domain: state.resolver.base_domain(),
                time_zones: COMMON_TIME_ZONES,
                f,
                errors,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let form = match parse(&f) {
        Ok(form) => form,
        Err(errors) => return again(f, errors),
    };
    let email = form.admin_email.to_string();
    if let Err(wait) = super::within_limits(
        req,
        state,
        limits::SIGNUP_PER_ADDRESS,
        &[(limits::SIGNUP_PER_EMAIL, &email)],
    )
    .await
    {
        let refusal = again(f, vec![super::too_many_words(wait)])?;
        return Ok(super::as_too_many(refusal, wait));
    }
    match clinic_signup::sign_up(&state.provisioner, form, state.clock.now()).await {
        Ok(tenant) => {
            let url = format!("{}/", state.public_origin(tenant.slug()));
            Ok(render(&SignupDone {
                clinic_name: tenant.display_name().to_owned(),
                url,
                email,
            })?
            .into_response())
        }
        Err(TenantError::SlugTaken(s)) => again(
            f,
            vec![format!(
                "Web address: '{s}' is already taken; choose another."
            )],
        ),
        Err(e) => Err(internal(e)),
    }
}
