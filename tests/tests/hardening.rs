//! Smaller hardening points of issue 9: the schedule's live refresh does not keep an idle staff
//! session alive; request ids in audit rows are the server's own; HSTS on an https deployment;
//! the dev mailbox never on a public base domain.

use std::collections::HashMap;

use chrono::Duration;
use portal_domain::identity::Role;
use portal_tests::{PASSWORD, TestApp};

#[tokio::test]
async fn the_schedules_refresh_does_not_keep_an_idle_staff_session_alive() {
    let app = TestApp::spawn().await;
    let t = app.clinic("idle").await;
    app.staff(&t, "desk@idle.example", Role::FrontDesk).await;
    let host = app.host("idle");
    let mut desk = app.sign_in(&host, "desk@idle.example", PASSWORD).await;
    assert_eq!(desk.page("/staff/schedule").await.0, 200);
    // The page polls every few seconds while nobody touches it...
    for _ in 0..4 {
        app.clock.advance(Duration::minutes(3));
        assert_eq!(desk.get("/staff/schedule/stamp").await.status(), 200);
    }
    // ...16 minutes after the last real action (4 after the last poll), the next page asks to
    // sign in again: the polls did not count as use.
    app.clock.advance(Duration::minutes(4));
    let resp = desk.get("/staff/schedule").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login");
}

#[tokio::test]
async fn audit_rows_carry_the_servers_request_id_not_the_clients() {
    let app = TestApp::spawn().await;
    let t = app.clinic("reqid").await;
    let host = app.host("reqid");
    let resp = app
        .client
        .post(format!("http://{}/api/v1/sessions", app.addr))
        .header("host", &host)
        .header("x-request-id", "chosen-by-the-client")
        .json(&serde_json::json!({"email": "x@reqid.example", "password": "wrong wrong wrong"}))
        .send()
        .await
        .unwrap();
    let server_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(server_id, "chosen-by-the-client");
    let stored: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT request_id FROM \"{}\".audit_log WHERE action = 'signin.failed'",
        t.schema_name()
    )))
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(stored, [Some(server_id)]);
}

#[tokio::test]
async fn an_https_deployment_sends_hsts_and_never_the_dev_mailbox() {
    // The test deployment's base domain is portal.test: public links are https.
    let app = TestApp::spawn_with(HashMap::from([("PORTAL_DEV", "1".to_owned())])).await;
    app.clinic("hsts").await;
    let resp = app.get(&app.host("hsts"), "/").await;
    let hsts = resp.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert!(hsts.contains("max-age=31536000"), "{hsts}");
    let platform = app.db.config.base_domain.clone();
    assert_eq!(app.get(&platform, "/dev/mailbox").await.status(), 404);
}
