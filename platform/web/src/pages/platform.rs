use askama::Template;
use poem::error::NotFoundError;
use poem::handler;
use poem::web::{Data, Html};

use super::render;
use crate::CurrentSite;

#[derive(Template)]
#[template(path = "platform_home.html")]
struct PlatformHome;

#[derive(Template)]
#[template(path = "platform_signup.html")]
struct PlatformSignup;

/// The platform's own home page (on the base domain).
pub fn home() -> poem::Result<Html<String>> {
    render(&PlatformHome)
}

/// `/signup` on the base domain: how a clinic gets its portal.
#[handler]
pub fn signup(Data(site): Data<&CurrentSite>) -> poem::Result<Html<String>> {
    match site {
        CurrentSite::Platform => render(&PlatformSignup),
        CurrentSite::Clinic(_) => Err(poem::Error::from(NotFoundError)),
    }
}
