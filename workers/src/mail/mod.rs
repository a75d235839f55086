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
    /// Retrying will not help (e.g. the address was refused for good).
    #[error("{0}")]
    Permanent(String),
}

impl MailError {
    /// Refused for good for this one recipient (no such mailbox, an address that cannot be),
    /// as opposed to the server refusing everything (a login, the sender): the other messages
    /// of a batch still go.
    pub fn is_recipient_refused(&self) -> bool {
        match self {
            MailError::Permanent(m) => {
                m == INVALID_RECIPIENT
                    || ["550", "551", "553"]
                        .iter()
                        .any(|code| *m == format!("smtp permanent {code}"))
            }
            MailError::Transient(_) => false,
        }
    }
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
                if e.is_permanent() {
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
        .map_err(|_| MailError::Permanent(INVALID_RECIPIENT.to_owned()))?;
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
