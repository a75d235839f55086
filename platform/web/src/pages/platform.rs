//! The platform's own site (on the base domain): the home page and clinic sign-up.

use askama::Template;
use poem::http::StatusCode;
use poem::web::Path;
use poem::web::{Data, Form, Html};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::signup::ClinicSignup;
use portal_domain::values::{EmailAddress, PersonName};
use portal_tenants::signups::{self, SignupRequest, SignupStatus};
use portal_tenants::{DisplayName, Slug, TenantError, TimeZoneName};

use super::FormErrors;
use super::{render, render_status, see_other};
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
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "platform_signup_done.html")]
struct SignupDone {
    clinic_name: String,
    url: String,
}

#[derive(Template)]
#[template(path = "platform_signup_progress.html")]
struct SignupProgress {
    id: String,
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
        errors: FormErrors::default(),
    })?
    .into_response())
}

fn parse(f: &SignupForm) -> Result<ClinicSignup, FormErrors> {
    let mut errors = FormErrors::default();
    let clinic_name = DisplayName::parse(&f.clinic_name)
        .map_err(|e| errors.add("clinic_name", format!("Clinic name: {e}")))
        .ok();
    let slug = Slug::parse(&f.slug.trim().to_lowercase())
        .map_err(|e| errors.add("slug", format!("Web address: {e}")))
        .ok();
    let time_zone = TimeZoneName::parse(f.time_zone.trim())
        .map_err(|e| errors.add("time_zone", format!("Time zone: {e}")))
        .ok();
    let admin_name = PersonName::parse(&f.admin_name, "your name")
        .map_err(|e| errors.add("admin_name", e.to_string()))
        .ok();
    let admin_email = EmailAddress::parse(&f.admin_email)
        .map_err(|e| errors.add("admin_email", format!("Your email: {e}")))
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
    let again = |f: SignupForm, errors: FormErrors| {
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
        let refusal = again(
            f,
            FormErrors::one("clinic_name", super::too_many_words(wait)),
        )?;
        return Ok(super::as_too_many(refusal, wait));
    }
    // Taken already: say so now rather than after the worker tries.
    if state
        .registry
        .by_slug(form.slug.as_str())
        .await
        .map_err(internal)?
        .is_some()
    {
        let taken = format!(
            "Web address: '{}' is already taken; choose another.",
            form.slug
        );
        return again(f, FormErrors::one("slug", taken));
    }
    let request = SignupRequest {
        slug: form.slug.clone(),
        display_name: form.clinic_name,
        time_zone: form.time_zone,
        admin_name: form.admin_name.as_str().to_owned(),
        admin_email: email,
    };
    match signups::request(state.registry.pool(), &request).await {
        Ok(id) => Ok(see_other(&format!("/signup/requests/{id}"))),
        Err(TenantError::SlugTaken(s)) => again(
            f,
            FormErrors::one(
                "slug",
                format!("Web address: '{s}' is already taken; choose another."),
            ),
        ),
        Err(e) => Err(internal(e)),
    }
}

/// `/signup/requests/{id}`: the sign-up's progress, then its result. The id is random and
/// known only to whoever made the request; the page shows no personal details.
#[handler]
pub async fn signup_request(
    req: &Request,
    Data(state): Data<&AppState>,
    Path(raw): Path<String>,
) -> poem::Result<Response> {
    platform_only(req)?;
    let id = uuid::Uuid::parse_str(&raw).map_err(|_| poem::error::NotFoundError)?;
    let status = signups::status(state.registry.pool(), id)
        .await
        .map_err(internal)?
        .ok_or(poem::error::NotFoundError)?;
    match status {
        SignupStatus::InProgress => {
            Ok(render(&SignupProgress { id: id.to_string() })?.into_response())
        }
        SignupStatus::Done { slug, .. } => {
            let clinic_name = state
                .registry
                .by_slug(&slug)
                .await
                .map_err(internal)?
                .map_or_else(|| slug.clone(), |t| t.display_name().to_owned());
            let url = format!("{}/", state.public_origin(&slug));
            Ok(render(&SignupDone { clinic_name, url })?.into_response())
        }
        SignupStatus::Failed { code } => {
            let error = if code == "slug_taken" {
                "That web address was taken by another clinic a moment ago. Choose another and sign up again.".to_owned()
            } else {
                "We could not set up your portal. Nothing was created; please sign up again."
                    .to_owned()
            };
            render_status(
                &PlatformSignup {
                    csrf: form_token(req),
                    base_domain: state.resolver.base_domain(),
                    time_zones: COMMON_TIME_ZONES,
                    f: SignupForm {
                        time_zone: "America/New_York".into(),
                        ..SignupForm::default()
                    },
                    errors: FormErrors::one("clinic_name", error),
                },
                StatusCode::CONFLICT,
            )
        }
    }
}
