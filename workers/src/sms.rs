//! Text messages. Production talks to a Twilio-compatible HTTP API (base URL and credentials
//! from configuration); locally the default is a log file, one JSON line per message. Every
//! message carries an idempotency key (the job id), sent to the provider as
//! `I-Twilio-Idempotency-Token`, so a retry after a crash mid-send is not a second text.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncWriteExt;

#[derive(Clone, Debug)]
pub enum SmsConfig {
    /// Append messages to this file (the local default).
    Log(PathBuf),
    Twilio {
        /// `https://api.twilio.com`, or a local fake in tests.
        base_url: String,
        account_sid: String,
        auth_token: SecretString,
        /// The sending number, E.164.
        from: String,
    },
}

#[derive(Clone, Debug)]
pub enum SmsSender {
    Log(PathBuf),
    Twilio {
        client: reqwest::Client,
        url: String,
        account_sid: String,
        auth_token: SecretString,
        from: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// Worth retrying: the provider is down, slow or said "try later".
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (e.g. the number was refused).
    #[error("{0}")]
    Permanent(String),
}

impl SmsSender {
    pub fn new(config: &SmsConfig) -> Result<Self, String> {
        Ok(match config {
            SmsConfig::Log(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create SMS log directory: {e}"))?;
                }
                SmsSender::Log(path.clone())
            }
            SmsConfig::Twilio {
                base_url,
                account_sid,
                auth_token,
                from,
            } => SmsSender::Twilio {
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("SMS HTTP client: {e}"))?,
                url: format!(
                    "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
                    base_url.trim_end_matches('/')
                ),
                account_sid: account_sid.clone(),
                auth_token: auth_token.clone(),
                from: from.clone(),
            },
        })
    }

    /// The platform's shared sending number (clinics without their own text from it).
    pub fn platform_number(&self) -> &str {
        match self {
            // The log provider sends nothing anywhere; its "number" only keys opt-outs.
            SmsSender::Log(_) => "log",
            SmsSender::Twilio { from, .. } => from,
        }
    }

    /// Sends `body` to `to` (E.164) from `from`. `key` makes a repeat of the same message a
    /// no-op at the provider.
    pub async fn send(&self, from: &str, to: &str, body: &str, key: &str) -> Result<(), SmsError> {
        match self {
            SmsSender::Log(path) => {
                let line = serde_json::json!({ "from": from, "to": to, "body": body, "key": key })
                    .to_string();
                let mut f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|_| SmsError::Transient("sms log write failed".into()))?;
                f.write_all(format!("{line}\n").as_bytes())
                    .await
                    .map_err(|_| SmsError::Transient("sms log write failed".into()))
            }
            SmsSender::Twilio {
                client,
                url,
                account_sid,
                auth_token,
                ..
            } => {
                let resp = client
                    .post(url)
                    .basic_auth(account_sid, Some(auth_token.expose_secret()))
                    .header("I-Twilio-Idempotency-Token", key)
                    .form(&[("To", to), ("From", from), ("Body", body)])
                    .send()
                    .await
                    .map_err(|e| {
                        SmsError::Transient(if e.is_timeout() {
                            "sms provider timeout".into()
                        } else {
                            "sms provider unreachable".into()
                        })
                    })?;
                let status = resp.status();
                // Only the status is kept: provider replies can echo the number.
                if status.is_success() {
                    Ok(())
                } else if status.is_server_error() || status.as_u16() == 429 {
                    Err(SmsError::Transient(format!(
                        "sms provider {}",
                        status.as_u16()
                    )))
                } else {
                    Err(SmsError::Permanent(format!(
                        "sms provider {}",
                        status.as_u16()
                    )))
                }
            }
        }
    }
}
