//! Sign-in throttling under bursts (issue 9.4): parallel guesses are counted as they arrive,
//! so a burst gets no more password checks than a sequence would, and a wrong current
//! password on the password-change form is throttled and audited the same way.

use std::collections::HashMap;

use portal_tests::{PASSWORD, TestApp};
use serde_json::json;

#[tokio::test]
async fn fifty_parallel_wrong_passwords_get_exactly_the_five_free_checks() {
    let app = TestApp::spawn().await;
    let t = app.clinic("burst").await;
    app.patient(&t, "Jo", "jo@burst.example").await;
    let host = app.host("burst");
    let url = format!("http://{}/api/v1/sessions", app.addr);
    let attempts = (0..50).map(|i| {
        let req =
            app.client.post(&url).header("host", &host).json(
                &json!({"email": "jo@burst.example", "password": format!("wrong guess {i}")}),
            );
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let retry = resp.headers().get("retry-after").cloned();
            (status, retry)
        }
    });
    let results = futures::future::join_all(attempts).await;
    let checked = results.iter().filter(|(s, _)| *s == 401).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(checked, 5, "password checks in the burst: {results:?}");
    assert_eq!(refused.len(), 45, "{results:?}");
    assert!(
        refused.iter().all(|(_, r)| r.is_some()),
        "429 says when to retry"
    );
    // The right password is refused too while the account waits (it is not checked).
    let (st, _) = sign_in_api(&app, &host, "jo@burst.example", PASSWORD).await;
    assert_eq!(st, 429);
    // One audit row per checked password, none for the refused ones.
    let failed: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".audit_log WHERE action = 'signin.failed'",
        t.schema_name()
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(failed, 5);
}

async fn sign_in_api(app: &TestApp, host: &str, email: &str, pw: &str) -> (u16, String) {
    let resp = app
        .client
        .post(format!("http://{}/api/v1/sessions", app.addr))
        .header("host", host)
        .json(&json!({"email": email, "password": pw}))
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_stolen_session_cannot_guess_the_current_password_faster_than_sign_in() {
    let app = TestApp::spawn_with(HashMap::new()).await;
    let t = app.clinic("steal").await;
    app.patient(&t, "Jo", "jo@steal.example").await;
    let host = app.host("steal");
    let mut b = app.sign_in(&host, "jo@steal.example", PASSWORD).await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        let guess = format!("not my password {i}");
        let resp = b
            .post_form(
                "/account/password",
                &[
                    ("current_password", guess.as_str()),
                    ("password", "a brand new passphrase"),
                    ("confirm", "a brand new passphrase"),
                ],
            )
            .await;
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(
        statuses,
        [422, 422, 422, 422, 422, 429, 429],
        "{statuses:?}"
    );
    let audited: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".audit_log WHERE action = 'password.change_failed'",
        t.schema_name()
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(audited, 5);
}

async fn failed_signin_addresses(app: &TestApp, schema: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT client_addr FROM \"{schema}\".audit_log WHERE action = 'signin.failed' ORDER BY id"
    )))
    .fetch_all(&app.db.admin)
    .await
    .unwrap()
}

async fn wrong_sign_in_from(app: &TestApp, host: &str, forwarded: &str) -> u16 {
    app.client
        .post(format!("http://{}/api/v1/sessions", app.addr))
        .header("host", host)
        .header("x-forwarded-for", forwarded)
        .json(&json!({"email": "nobody@proxy.example", "password": "wrong wrong wrong"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Issue 9.5: behind the TLS proxy the client is the right-most untrusted hop of
/// X-Forwarded-For (audit rows use it too); from anyone else the header is ignored.
#[tokio::test]
async fn the_client_is_taken_from_forwarded_for_only_behind_a_trusted_proxy() {
    let trusting = TestApp::spawn_with(HashMap::from([(
        "PORTAL_TRUSTED_PROXIES",
        "127.0.0.0/8".to_owned(),
    )]))
    .await;
    let t = trusting.clinic("proxy").await;
    let host = trusting.host("proxy");
    wrong_sign_in_from(&trusting, &host, "6.6.6.6, 198.51.100.7").await;
    wrong_sign_in_from(&trusting, &host, "2001:db8::1").await;
    assert_eq!(
        failed_signin_addresses(&trusting, t.schema_name()).await,
        ["198.51.100.7", "2001:db8::1"],
        "the hop the proxy saw, never what the client prepended"
    );

    let direct = TestApp::spawn().await;
    let t = direct.clinic("proxy").await;
    let host = direct.host("proxy");
    wrong_sign_in_from(&direct, &host, "198.51.100.7").await;
    assert_eq!(
        failed_signin_addresses(&direct, t.schema_name()).await,
        ["127.0.0.1"],
        "without a trusted proxy the header is ignored"
    );
}
