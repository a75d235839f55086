//! "Are you sure?" pages for changes with consequences (cancel, move, book for someone else,
//! no-show, delete set-up): the page says exactly what will happen, and only its form's POST
//! does it. Plain HTML, so it works without JavaScript.

use askama::Template;

use super::Chrome;

#[derive(Template)]
#[template(path = "confirm_action.html")]
pub(crate) struct ConfirmAction {
    pub chrome: Chrome,
    pub title: String,
    /// The question, in full: "Cancel your check-up with Dr. Reyes on Wed 2 Dec 2026, 10:00 AM EST?"
    pub question: String,
    /// What the person should know before saying yes (label, value).
    pub details: Vec<(&'static str, String)>,
    /// What follows, e.g. "The time is offered to patients waiting for it."
    pub consequence: String,
    pub action: String,
    pub hidden: Vec<(&'static str, String)>,
    pub confirm_label: String,
    /// Destructive actions get the red button.
    pub danger: bool,
    pub back: String,
    pub back_label: String,
    pub error: Option<String>,
}
