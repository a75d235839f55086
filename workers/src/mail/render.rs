//! Branded email bodies. They carry no health information — only the clinic's name and an
//! action link ("You're invited to Sunrise Family Medicine's patient portal").

use askama::Template;

/// The clinic's look in an email.
#[derive(Clone, Debug)]
pub struct Branding {
    pub clinic_name: String,
    pub sender_name: String,
    pub primary_color: String,
    pub logo_url: Option<String>,
}

/// An email asking the reader to do one thing: follow a link.
#[derive(Clone, Debug)]
pub struct ActionEmail {
    pub branding: Branding,
    pub subject: String,
    pub heading: String,
    pub intro: String,
    pub action_label: String,
    pub action_url: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "action_email.txt", escape = "none")]
struct Text<'a> {
    e: &'a ActionEmail,
}

#[derive(Template)]
#[template(path = "action_email.html")]
struct Html<'a> {
    e: &'a ActionEmail,
}

impl ActionEmail {
    pub fn render(&self) -> Result<(String, String), askama::Error> {
        Ok((Text { e: self }.render()?, Html { e: self }.render()?))
    }
}
