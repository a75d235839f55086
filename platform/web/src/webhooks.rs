//! The inbound SMS webhook: one URL for the whole platform (`POST /webhooks/sms` on the base
//! domain), so it works whatever domains clinics use. Twilio-compatible: the request must carry
//! a valid `X-Twilio-Signature` (HMAC-SHA1 of that URL and the sorted form fields, keyed by the
//! auth token), or it is refused. STOP and START are recorded for the phone and the number it
//! wrote to (on the shared number: for every clinic that texts from it). The reply is routed
//! by that number — a clinic's own, or on the shared number the clinic that last texted the
//! phone — and C/CONFIRM acts there on the one patient who confirmed the phone. The answer is
//! TwiML.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{IntoResponse, Request, Response, handler};
use portal_domain::scheduling::reminders::{Reply, ReplyOutcome, apply_reply};
use portal_domain::scheduling::{clinic_tz, local_label};
use portal_tenants::sms as texts;
use secrecy::ExposeSecret;
use sha1::Sha1;

use crate::csrf::constant_eq;
use crate::request::form_field as field;
use crate::{AppState, internal};

/// Twilio's signature: base64(HMAC-SHA1(token, url + each field name and value, by name)).
pub fn signature(token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Escapes text for the XML answer.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[handler]
pub async fn sms(
    req: &Request,
    Data(state): Data<&AppState>,
    Form(fields): Form<Vec<(String, String)>>,
) -> poem::Result<Response> {
    let on_platform = matches!(
        req.extensions().get::<crate::CurrentSite>(),
        Some(crate::CurrentSite::Platform)
    );
    let (true, Some(token)) = (on_platform, &state.sms_webhook_token) else {
        return Err(poem::Error::from(poem::error::NotFoundError));
    };
    let url = state.links.platform("/webhooks/sms");
    let expected = signature(token.expose_secret(), &url, &fields);
    let sent = req.header("x-twilio-signature").unwrap_or_default();
    if expected.is_empty() || !constant_eq(sent.as_bytes(), expected.as_bytes()) {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    let (from, to) = (field(&fields, "From"), field(&fields, "To"));
    let reply = Reply::parse(field(&fields, "Body"));
    let now = state.clock.now();
    let pool = state.registry.pool();
    match reply {
        Reply::Stop => texts::opt_out(pool, to, from, now)
            .await
            .map_err(internal)?,
        Reply::Start => texts::opt_in(pool, to, from).await.map_err(internal)?,
        Reply::Confirm | Reply::Other => {}
    }
    let tenant = texts::route_reply(&state.registry, to, from)
        .await
        .map_err(internal)?;
    let outcome = match &tenant {
        Some(t) => {
            let mut tx = crate::tx::begin(req, &state.tenant_db, t)
                .await
                .map_err(internal)?;
            let outcome = apply_reply(&mut tx, from, reply, now)
                .await
                .map_err(internal)?;
            tx.commit().await.map_err(internal)?;
            outcome
        }
        None => match reply {
            Reply::Stop => ReplyOutcome::OptedOut,
            Reply::Start => ReplyOutcome::OptedIn,
            _ => ReplyOutcome::Unknown,
        },
    };
    let name = tenant
        .as_ref()
        .map_or("This service".to_owned(), |t| t.display_name().to_owned());
    let answer = match outcome {
        ReplyOutcome::OptedOut => {
            format!("{name}: you will get no more texts from this number. Reply START to resume.")
        }
        ReplyOutcome::OptedIn => format!("{name}: texts are back on. Reply STOP to opt out."),
        ReplyOutcome::Confirmed(at) => match &tenant {
            Some(t) => format!(
                "{name}: thank you, your visit on {} is confirmed.",
                local_label(at, clinic_tz(t))
            ),
            None => format!("{name}: thank you."),
        },
        ReplyOutcome::Ambiguous => format!(
            "{name}: more than one person uses this number, so we could not tell whose visit to confirm. Please confirm in the portal: {}",
            tenant.as_ref().map_or_else(String::new, |t| state
                .links
                .clinic(t.slug(), "/appointments"))
        ),
        ReplyOutcome::NothingToConfirm | ReplyOutcome::Unknown => format!(
            "{name}: reply C to confirm your next visit or STOP to opt out. To change a visit, sign in to the portal."
        ),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
        xml(&answer)
    );
    Ok(body
        .with_content_type("text/xml; charset=utf-8")
        .into_response())
}
