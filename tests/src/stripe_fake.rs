//! The local Stripe stand-in (`infra/stripe_fake.py`, Python's standard library only) on its
//! own port, for tests: the product reaches it through `PORTAL_STRIPE_BASE_URL`, and tests
//! steer it through its `/_fake/` control endpoints (its clock, webhook delivery, faults,
//! payouts). Stopped when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub const SECRET_KEY: &str = "sk_test_portal_tests";
pub const WEBHOOK_SECRET: &str = "whsec_portal_tests";

/// A `Stripe-Signature` header for `body` signed with `secret` at unix time `t`, as Stripe
/// signs its webhooks (`t=<t>,v1=<hex HMAC-SHA256 of "t.body">`).
pub fn signature(body: &[u8], t: i64, secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

pub struct StripeFake {
    pub port: u16,
    child: Child,
    client: reqwest::Client,
}

impl StripeFake {
    pub fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/stripe_fake.py");
        let mut child = Command::new("python3")
            .args([
                script,
                "--port",
                "0",
                "--api-key",
                SECRET_KEY,
                "--webhook-secret",
                WEBHOOK_SECRET,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start infra/stripe_fake.py with python3");
        let stdout = child.stdout.take().expect("the fake's stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("the fake's first line");
        let port = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the fake said {first:?}"));
        StripeFake {
            port,
            child,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The settings that point the product at this fake.
    pub fn env(&self) -> HashMap<&'static str, String> {
        HashMap::from([
            ("PORTAL_STRIPE_SECRET_KEY", SECRET_KEY.to_owned()),
            ("PORTAL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("PORTAL_STRIPE_BASE_URL", self.url()),
        ])
    }

    /// POSTs JSON to a control endpoint (`/_fake/...`) and returns its JSON.
    pub async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .post(format!("{}{path}", self.url()))
            .json(&body)
            .send()
            .await
            .expect("fake control");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Removes every fault still waiting to happen.
    pub async fn clear_faults(&self) {
        self.client
            .delete(format!("{}/_fake/faults", self.url()))
            .send()
            .await
            .expect("fake control");
    }

    /// GETs a control endpoint.
    pub async fn read(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .expect("fake control")
            .json()
            .await
            .expect("fake JSON")
    }

    /// Delivers webhooks to the server at `addr`, as its platform site (`host`).
    pub async fn deliver_to(&self, addr: std::net::SocketAddr, host: &str) {
        self.control(
            "/_fake/webhooks/url",
            json!({"url": format!("http://{addr}/webhooks/stripe"), "host": host}),
        )
        .await;
    }

    /// Sets the fake's clock (unix seconds), for `created` times and webhook signatures.
    pub async fn set_clock(&self, now: i64) {
        self.control("/_fake/clock", json!({"now": now})).await;
    }

    /// Waits until every webhook queued so far was delivered (or given up on).
    pub async fn webhooks_idle(&self) {
        for _ in 0..500 {
            let s = self.read("/_fake/webhooks").await;
            if s["idle"] == json!(true) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("webhooks never went idle");
    }

    /// The fake's objects of one kind (`payment_intent`, `refund`, …).
    pub async fn objects(&self, kind: &str) -> Vec<Value> {
        self.read(&format!("/_fake/objects?type={kind}")).await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for StripeFake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
