//! Limits on unauthenticated work and on request bodies (issue 9.6): a clear 429 or 413 in
//! the shared shape, nothing written when a limit trips, counts shared by every web process
//! through Redis, and still enforced (per process) when Redis is down.

use portal_tests::{TestApp, redis_url};
use portal_web::Limiter;
use portal_web::limits::{FORGOT_PER_EMAIL, Limit};
use serde_json::json;
use sha2::Digest;

async fn forgot(app: &TestApp, host: &str, email: &str) -> reqwest::Response {
    let mut b = app.browser(host);
    b.post_form("/password/forgot", &[("email", email)]).await
}

#[tokio::test]
async fn forgot_password_is_limited_per_target_email_with_a_clear_429() {
    let app = TestApp::spawn_with_workers(std::collections::HashMap::new()).await;
    let t = app.clinic("forget").await;
    app.patient(&t, "Jo", "jo@forget.example").await;
    let host = app.host("forget");
    for _ in 0..FORGOT_PER_EMAIL.max {
        assert_eq!(forgot(&app, &host, "jo@forget.example").await.status(), 200);
    }
    let resp = forgot(&app, &host, "JO@forget.example ").await;
    assert_eq!(resp.status(), 429, "the same address however it is typed");
    let retry: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 3600);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Too many requests like this one"), "{page}");
    // Nothing was sent for the refused request; another address is unaffected.
    assert_eq!(app.jobs_settled().await, 0);
    let sent = portal_tests::read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.to == "jo@forget.example")
        .count();
    assert_eq!(sent, FORGOT_PER_EMAIL.max as usize);
    assert_eq!(
        forgot(&app, &host, "other@forget.example").await.status(),
        200
    );
}

const TEST_LIMIT: Limit = Limit {
    name: "test-shared",
    max: 2,
    window_secs: 3600,
};

#[tokio::test]
async fn two_processes_share_one_count_and_a_redis_outage_still_limits() {
    let prefix = format!("limits_{}", uuid::Uuid::new_v4().simple());
    let client = || redis::Client::open(redis_url()).unwrap();
    // Two web processes: two limiters on the same Redis and prefix.
    let key = b"one deployment's limiter secret".to_vec();
    let (a, b) = (
        Limiter::new(client(), &prefix, key.clone()),
        Limiter::new(client(), &prefix, key.clone()),
    );
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    assert!(a.check(&[(TEST_LIMIT, "x@y.example")], now).await.is_ok());
    assert!(b.check(&[(TEST_LIMIT, "x@y.example")], now).await.is_ok());
    assert!(a.check(&[(TEST_LIMIT, "x@y.example")], now).await.is_err());
    assert!(b.check(&[(TEST_LIMIT, "x@y.example")], now).await.is_err());
    // Redis holds keyed hashes only: neither the address nor its plain SHA-256.
    let mut conn = client().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let plain: String = sha2::Sha256::digest(b"x@y.example")[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !keys[0].contains("x@y") && !keys[0].contains(&plain),
        "{keys:?}"
    );

    // Redis unreachable: the process counts on its own, and the limit still trips.
    let down = Limiter::new(
        redis::Client::open("redis://127.0.0.1:1").unwrap(),
        &prefix,
        key,
    );
    assert!(
        down.check(&[(TEST_LIMIT, "z@y.example")], now)
            .await
            .is_ok()
    );
    assert!(
        down.check(&[(TEST_LIMIT, "z@y.example")], now)
            .await
            .is_ok()
    );
    assert!(
        down.check(&[(TEST_LIMIT, "z@y.example")], now)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_they_are_read() {
    let app = TestApp::spawn().await;
    app.clinic("big").await;
    let host = app.host("big");
    let big = "x".repeat(2 * 1024 * 1024);
    // Declared length: refused at once, in the API's error shape.
    let resp = app
        .client
        .post(format!("http://{}/api/v1/sessions", app.addr))
        .header("host", &host)
        .header("content-type", "application/json")
        .body(json!({"email": "a@b.example", "password": big}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");
    // No declared length (chunked): read up to the limit, then refused.
    let chunks =
        futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024])));
    let resp = app
        .client
        .post(format!("http://{}/login", app.addr))
        .header("host", &host)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // A normal form still works.
    let mut b = app.browser(&host);
    let resp = b
        .post_form(
            "/login",
            &[("email", "a@b.example"), ("password", "nope nope nope")],
        )
        .await;
    assert_eq!(resp.status(), 401);
}
