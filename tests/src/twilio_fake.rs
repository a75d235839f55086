//! A small local stand-in for Twilio's Messages API, reached through the product's
//! configurable base URL. It checks the Basic credentials, records each message once per
//! idempotency token, and can be told to fail: answer 500 (nothing recorded), or record the
//! message and then answer 500 (a reply lost on the way back, as when a worker dies mid-send).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Form, Json};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, Server, handler, post};

pub const SID: &str = "ACtest0000000000000000000000000000";
pub const TOKEN: &str = "fake-twilio-auth-token";
pub const FROM: &str = "+15550000000";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    pub from: String,
    pub to: String,
    pub body: String,
    pub key: String,
}

#[derive(Default)]
struct State {
    messages: Vec<Sms>,
    /// Calls answered 500 without recording.
    fail: u32,
    /// Calls recorded, then answered 500.
    lose_reply: u32,
    calls: u32,
}

#[derive(Clone)]
pub struct TwilioFake {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

#[handler]
async fn messages(
    req: &Request,
    Data(state): Data<&Arc<Mutex<State>>>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    if req.header("authorization") != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let sms = Sms {
        from: get("From"),
        to: get("To"),
        body: get("Body"),
        key: req
            .header("i-twilio-idempotency-token")
            .unwrap_or_default()
            .to_owned(),
    };
    let mut s = state.lock().unwrap();
    s.calls += 1;
    if s.fail > 0 {
        s.fail -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if !s
        .messages
        .iter()
        .any(|m| m.key == sms.key && !sms.key.is_empty())
    {
        s.messages.push(sms);
    }
    if s.lose_reply > 0 {
        s.lose_reply -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        StatusCode::CREATED,
        Json(serde_json::json!({"sid": "SMfake", "status": "queued"})),
    )
        .into_response()
}

impl TwilioFake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind fake");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("socket addr");
        let app = Route::new()
            .at("/2010-04-01/Accounts/:sid/Messages.json", post(messages))
            .data(state.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        Self { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The product's configuration for this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PORTAL_SMS_PROVIDER", "twilio".into()),
            ("PORTAL_TWILIO_BASE_URL", self.base_url()),
            ("PORTAL_TWILIO_ACCOUNT_SID", SID.into()),
            ("PORTAL_TWILIO_AUTH_TOKEN", TOKEN.into()),
            ("PORTAL_TWILIO_FROM", FROM.into()),
        ]
    }

    pub fn messages(&self) -> Vec<Sms> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn calls(&self) -> u32 {
        self.state.lock().unwrap().calls
    }

    /// The next `n` calls fail with 500 and send nothing.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail = n;
    }

    /// The next `n` calls send the message but answer 500.
    pub fn lose_replies(&self, n: u32) {
        self.state.lock().unwrap().lose_reply = n;
    }
}
