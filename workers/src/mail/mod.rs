//! Email delivery through lettre: SMTP in production (`PORTAL_SMTP_URL`), and by default a
//! directory of `.eml` files, which the dev mailbox page shows.

mod render;

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use render::{ActionEmail, Branding};

#[derive(Clone, Debug)]
pub struct MailerConfig {
    /// `smtp://host:port`, `smtps://user:pass@host`, … When absent, mail goes to `dir`.
    pub smtp_url: Option<String>,
    pub dir: PathBuf,
    /// The address emails come from; the display name is the clinic's sender name.
    pub from_address: String,
}

/// Where emails go.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Dir(AsyncFileTransport<Tokio1Executor>),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying: the server is unreachable or said "try later".
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (e.g. the server refuses our sender, or this message).
    #[error("{0}")]
    Permanent(String),
    /// Refused for good for this one recipient: not an address, or the server's enhanced
    /// status says the mailbox or its address is the problem (`5.1.x`, `5.2.x`: no such
    /// mailbox, mailbox full or disabled). Other recipients are not affected.
    #[error("{0}")]
    Refused(String),
}

impl MailError {
    /// Refused for good for this one recipient, as opposed to the server refusing everything
    /// (a login, our sender, a relay): the other messages of a batch still go.
    pub fn is_recipient_refused(&self) -> bool {
        matches!(self, MailError::Refused(_))
    }
}

/// The subject of an SMTP reply's enhanced status code (RFC 3463, `class.subject.detail` at
/// the start of its text), when it has one: 1 addressing, 2 mailbox, 3 mail system,
/// 4 network, 5 protocol, 6 content, 7 security or policy.
fn enhanced_subject(reply: &str) -> Option<u16> {
    let mut parts = reply.split_whitespace().next()?.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    let number = |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !["2", "4", "5"].contains(&class) || !number(detail) {
        return None;
    }
    subject.parse().ok().filter(|_| number(subject))
}

const INVALID_RECIPIENT: &str = "invalid recipient address";

impl Mailer {
    pub fn new(config: &MailerConfig) -> Result<Self, String> {
        match &config.smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|b| Mailer::Smtp(b.build()))
                .map_err(|e| format!("PORTAL_SMTP_URL is not a valid SMTP URL: {e}")),
            None => {
                std::fs::create_dir_all(&config.dir).map_err(|e| {
                    format!("cannot create mail directory {}: {e}", config.dir.display())
                })?;
                Ok(Mailer::Dir(AsyncFileTransport::new(&config.dir)))
            }
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self {
            Mailer::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                // Only the category and status code are kept: server replies can echo addresses.
                let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                // lettre shows a refusal as "permanent error (550): <the server's text>".
                let text = e.to_string();
                let reply = text.split_once("): ").map_or("", |(_, r)| r);
                if e.is_permanent() && matches!(enhanced_subject(reply), Some(1 | 2)) {
                    MailError::Refused(format!("smtp refused {code}").trim().to_owned())
                } else if e.is_permanent() {
                    MailError::Permanent(format!("smtp permanent {code}").trim().to_owned())
                } else if e.is_transient() {
                    MailError::Transient(format!("smtp transient {code}").trim().to_owned())
                } else {
                    MailError::Transient("smtp connection failed".to_owned())
                }
            }),
            Mailer::Dir(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|_| MailError::Transient("mail directory write failed".to_owned())),
        }
    }
}

/// A file sent with an email (e.g. the visit's calendar file).
#[derive(Clone, Debug)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Builds the message: text + HTML alternatives, and the attachments if any.
pub fn build(
    from_address: &str,
    to: &str,
    email: &ActionEmail,
    attachments: &[Attachment],
) -> Result<Message, MailError> {
    let from = Mailbox::new(
        Some(email.branding.sender_name.clone()),
        from_address
            .parse()
            .map_err(|_| MailError::Permanent("invalid sender address".to_owned()))?,
    );
    let to: Mailbox = to
        .parse()
        .map_err(|_| MailError::Refused(INVALID_RECIPIENT.to_owned()))?;
    let (text, html) = email
        .render()
        .map_err(|_| MailError::Permanent("email template failed".to_owned()))?;
    let body = MultiPart::alternative_plain_html(text, html);
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone());
    let built = if attachments.is_empty() {
        builder.multipart(body)
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for a in attachments {
            let ct = ContentType::parse(&a.content_type)
                .map_err(|_| MailError::Permanent("invalid attachment type".to_owned()))?;
            mixed = mixed.singlepart(
                lettre::message::Attachment::new(a.filename.clone()).body(a.body.clone(), ct),
            );
        }
        builder.multipart(mixed)
    };
    built.map_err(|_| MailError::Permanent("email could not be built".to_owned()))
}

#[cfg(test)]
mod enhanced {
    use super::enhanced_subject;

    #[test]
    fn the_enhanced_status_names_what_was_refused() {
        assert_eq!(enhanced_subject("5.1.1 No such mailbox"), Some(1));
        assert_eq!(enhanced_subject("5.2.2 Mailbox full"), Some(2));
        assert_eq!(enhanced_subject("5.7.1 Sender address rejected"), Some(7));
        assert_eq!(enhanced_subject("4.3.0 Try again later"), Some(3));
        assert_eq!(enhanced_subject("No such user here"), None);
        assert_eq!(enhanced_subject("550 5.1.1 x"), None);
        assert_eq!(enhanced_subject("5.1 x"), None);
        assert_eq!(enhanced_subject(""), None);
    }
}
