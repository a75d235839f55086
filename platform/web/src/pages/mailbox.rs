//! `/dev/mailbox`: the emails the workers wrote to the mail directory, so a newcomer can click
//! an invitation link without an SMTP server. Off (404) unless `PORTAL_DEV=1`.

use askama::Template;
use mail_parser::MessageParser;
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, handler};

use super::render;
use crate::AppState;

struct Mail {
    subject: String,
    to: String,
    from: String,
    date: String,
    text: String,
    links: Vec<String>,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct Mailbox {
    dir: String,
    messages: Vec<Mail>,
}

#[derive(serde::Deserialize)]
pub struct MailboxQuery {
    to: Option<String>,
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> String {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

#[handler]
pub async fn mailbox(
    Data(state): Data<&AppState>,
    Query(q): Query<MailboxQuery>,
) -> poem::Result<Response> {
    let Some(dir) = state.dev_mailbox.clone() else {
        return Err(poem::error::NotFoundError.into());
    };
    let messages = tokio::task::spawn_blocking(move || read_all(&dir, q.to.as_deref()))
        .await
        .map_err(crate::internal)?;
    Ok(render(&Mailbox {
        dir: state
            .dev_mailbox
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        messages,
    })?
    .into_response())
}

fn read_all(dir: &std::path::Path, to: Option<&str>) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let parser = MessageParser::default();
    files
        .into_iter()
        .filter_map(|(_, path)| {
            let raw = std::fs::read(&path).ok()?;
            let m = parser.parse(&raw)?;
            let text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
            let links = text
                .split_whitespace()
                .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
                .map(str::to_owned)
                .collect();
            Some(Mail {
                subject: m.subject().unwrap_or_default().to_owned(),
                to: addresses(m.to()),
                from: addresses(m.from()),
                date: m.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
                text,
                links,
            })
        })
        .filter(|m| to.is_none_or(|t| m.to.eq_ignore_ascii_case(t)))
        .take(100)
        .collect()
}
