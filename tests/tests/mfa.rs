//! Two-step sign-in (issue 9.3): required of clinic administrators by default, set up behind
//! the password, codes refused on replay and outside one step either way, recovery codes that
//! work once, enrolment and removal audited, and patients may opt in.

use chrono::Duration;
use portal_domain::clock::Clock;
use portal_domain::identity::Role;
use portal_domain::identity::mfa::code_at;
use portal_tests::{Browser, PASSWORD, TestApp};
use serde_json::json;

fn between<'a>(page: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = page.find(start)? + start.len();
    let to = page[from..].find(end)? + from;
    Some(&page[from..to])
}

/// Goes through set-up on the security page; returns the secret and the recovery codes.
async fn enrol(app: &TestApp, b: &mut Browser) -> (String, Vec<String>) {
    let resp = b
        .post_form(
            "/account/security/start",
            &[("current_password", "not the password")],
        )
        .await;
    assert_eq!(resp.status(), 422, "step-up refuses a wrong password");
    let resp = b
        .post_form("/account/security/start", &[("current_password", PASSWORD)])
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("<svg"), "a QR code to scan");
    let secret: String = between(&page, "data-testid=\"totp-secret\">", "</code>")
        .expect("secret shown for typing")
        .split_whitespace()
        .collect();
    let resp = b
        .post_form("/account/security/confirm", &[("code", "000000")])
        .await;
    assert_eq!(resp.status(), 422, "a wrong first code does not turn it on");
    let code = code_at(&secret, app.clock.now()).unwrap();
    let resp = b
        .post_form("/account/security/confirm", &[("code", &code)])
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    let list = between(&page, "data-testid=\"recovery-codes\">", "</ul>").unwrap();
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next())
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn password_step(app: &TestApp, host: &str, email: &str) -> (Browser, String) {
    let mut b = app.browser(host);
    let resp = b
        .post_form("/login", &[("email", email), ("password", PASSWORD)])
        .await;
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    (b, to)
}

async fn audit_count(app: &TestApp, schema: &str, action: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".audit_log WHERE action = '{action}'"
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn administrators_must_set_it_up_and_codes_work_once_within_a_step() {
    let app = TestApp::spawn().await;
    app.clock
        .set(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    // A clinic as sign-up makes it: administrators must use two-step sign-in.
    let t = app.db.create_tenant_as_new("totp").await;
    app.staff(&t, "boss@totp.example", Role::ClinicAdmin).await;
    let host = app.host("totp");

    // The password alone leads only to setting it up.
    let (mut b, to) = password_step(&app, &host, "boss@totp.example").await;
    assert_eq!(to, "/account/security");
    let resp = b.get("/admin").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/account/security");
    let (st, page) = b.page("/account/security").await;
    assert_eq!(st, 200);
    assert!(page.contains("data-testid=\"must-enrol\""));
    // The API will not hand out a session that skipped it.
    let resp = app
        .client
        .post(format!("http://{}/api/v1/sessions", app.addr))
        .header("host", &host)
        .json(&json!({"email": "boss@totp.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let (secret, recovery) = enrol(&app, &mut b).await;
    assert_eq!(b.page("/admin").await.0, 200, "set up: signed in fully");
    assert_eq!(audit_count(&app, t.schema_name(), "mfa.enrol").await, 1);
    assert_eq!(
        audit_count(&app, t.schema_name(), "password.change_failed").await,
        1,
        "the wrong step-up password is audited"
    );

    // Next sign-in: password, then code. The code used at set-up is spent (same step).
    b.post_form("/logout", &[]).await;
    let (mut b, to) = password_step(&app, &host, "boss@totp.example").await;
    assert_eq!(to, "/login/code");
    assert_eq!(b.get("/admin").await.headers()["location"], "/login/code");
    let replay = code_at(&secret, app.clock.now()).unwrap();
    let resp = b.post_form("/login/code", &[("code", &replay)]).await;
    assert_eq!(resp.status(), 401, "a code is accepted once");
    // Two steps away either way is refused; one step later is fine.
    app.clock.advance(Duration::seconds(30));
    let stale = code_at(&secret, app.clock.now() - Duration::seconds(60)).unwrap();
    let early = code_at(&secret, app.clock.now() + Duration::seconds(60)).unwrap();
    for code in [&stale, &early] {
        let resp = b.post_form("/login/code", &[("code", code)]).await;
        assert_eq!(resp.status(), 401, "outside ±1 step");
    }
    let fresh = code_at(&secret, app.clock.now()).unwrap();
    let resp = b.post_form("/login/code", &[("code", &fresh)]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin");
    assert_eq!(b.page("/admin").await.0, 200);

    // A recovery code works once.
    b.post_form("/logout", &[]).await;
    let (mut b, _) = password_step(&app, &host, "boss@totp.example").await;
    let resp = b.post_form("/login/code", &[("code", &recovery[0])]).await;
    assert_eq!(resp.status(), 303, "recovery code accepted");
    b.post_form("/logout", &[]).await;
    let (mut b, _) = password_step(&app, &host, "boss@totp.example").await;
    let resp = b.post_form("/login/code", &[("code", &recovery[0])]).await;
    assert_eq!(resp.status(), 401, "and only once");
    let (_, page) = {
        app.clock.advance(Duration::seconds(30));
        let code = code_at(&secret, app.clock.now()).unwrap();
        let resp = b.post_form("/login/code", &[("code", &code)]).await;
        assert_eq!(resp.status(), 303);
        b.page("/account/security").await
    };
    assert!(page.contains("9 unused recovery codes"), "{page}");

    // Required for administrators: it cannot be turned off...
    let resp = b
        .post_form(
            "/account/security/remove",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(resp.status(), 409);
    // ...until the clinic stops requiring it (audited), then it can (audited).
    let resp = b.post_form("/admin/security", &[("required", "off")]).await;
    assert_eq!(resp.status(), 303);
    let resp = b
        .post_form(
            "/account/security/remove",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        audit_count(&app, t.schema_name(), "mfa.requirement").await,
        1
    );
    assert_eq!(audit_count(&app, t.schema_name(), "mfa.remove").await, 1);
    b.post_form("/logout", &[]).await;
    let (_, to) = password_step(&app, &host, "boss@totp.example").await;
    assert_eq!(to, "/admin", "off again: the password is enough");
}

#[tokio::test]
async fn patients_may_opt_in_and_the_api_then_needs_the_code() {
    let app = TestApp::spawn().await;
    app.clock
        .set(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    let t = app.clinic("optin").await;
    app.patient(&t, "Pia", "pia@optin.example").await;
    let host = app.host("optin");
    let mut b = app.sign_in(&host, "pia@optin.example", PASSWORD).await;
    let (secret, _) = enrol(&app, &mut b).await;
    let sign_in = |code: Option<String>| {
        let mut body = json!({"email": "pia@optin.example", "password": PASSWORD});
        if let Some(c) = code {
            body["code"] = json!(c);
        }
        app.client
            .post(format!("http://{}/api/v1/sessions", app.addr))
            .header("host", &host)
            .json(&body)
            .send()
    };
    let resp = sign_in(None).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "mfa_required"
    );
    app.clock.advance(Duration::seconds(30));
    let code = code_at(&secret, app.clock.now()).unwrap();
    let resp = sign_in(Some(code.clone())).await.unwrap();
    assert_eq!(resp.status(), 201);
    let resp = sign_in(Some(code)).await.unwrap();
    assert_eq!(resp.status(), 401, "the same code twice is a replay");
}

/// A code typed more than a minute after the password: the request marks the half-way
/// session as used (locking its row) and the second step then replaces that session. The
/// mark is committed before the handler runs, so the step neither waits on the request's own
/// lock nor holds two connections.
#[tokio::test]
async fn a_code_typed_minutes_after_the_password_still_signs_in() {
    let app = TestApp::spawn_with(std::collections::HashMap::from([(
        "PORTAL_DATABASE_POOL_SIZE",
        "2".to_owned(),
    )]))
    .await;
    app.clock
        .set(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    let t = app.db.create_tenant_as_new("slow").await;
    app.staff(&t, "boss@slow.example", Role::ClinicAdmin).await;
    let host = app.host("slow");
    let (mut b, _) = password_step(&app, &host, "boss@slow.example").await;
    let (secret, _) = enrol(&app, &mut b).await;
    b.post_form("/logout", &[]).await;

    let (mut b, to) = password_step(&app, &host, "boss@slow.example").await;
    assert_eq!(to, "/login/code");
    app.clock.advance(Duration::seconds(150));
    let code = code_at(&secret, app.clock.now()).unwrap();
    let resp = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        b.post_form("/login/code", &[("code", &code)]),
    )
    .await
    .expect("the code step answers instead of waiting on its own session's lock");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin");
    assert_eq!(b.page("/admin").await.0, 200);
}
