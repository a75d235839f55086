//! Staff roles that mean something (issue 9.2): one table of route × role drives the checks.
//! These tests walk that table — every page route and every API operation — as every role and
//! as nobody, and fail when a route has no policy or answers a role its policy does not name.

use std::collections::HashMap;

use portal_domain::identity::Role;
use portal_tests::scheduling::Sched;
use portal_tests::{PASSWORD, TestApp};
use portal_web::policy::{self, Access, Policy};
use reqwest::Method;
use serde_json::{Value, json};

const ROLES: [Role; 5] = [
    Role::Patient,
    Role::FrontDesk,
    Role::Clinician,
    Role::Billing,
    Role::ClinicAdmin,
];

fn admits(policy: &Policy, role: Option<Role>) -> bool {
    match (policy.access, role) {
        (Access::Public, _) => true,
        // Checked by the handler against the clinic's API keys: no session is a key.
        (Access::Key, _) => false,
        // Every session here is fully signed in: the code page is for sessions half-way.
        (Access::SecondStep, _) => false,
        (_, None) => false,
        (Access::Security, Some(_)) => true,
        (Access::SignedIn, Some(_)) => true,
        (Access::AnyOf(perms), Some(r)) => perms.iter().any(|p| r.may(*p)),
    }
}

/// Every operation in the OpenAPI document has exactly one row in the API policy table, and
/// every row names a real operation.
#[test]
fn every_api_operation_has_a_policy_and_every_policy_an_operation() {
    let spec: Value = serde_json::from_str(&portal_web::openapi_json()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            operations.push((m, path.clone()));
        }
    }
    assert!(operations.len() >= 15, "the spec lost its operations?");
    for (m, path) in &operations {
        let rows: Vec<_> = policy::API
            .iter()
            .filter(|(pm, pp, _)| pm == m && pp == path)
            .collect();
        assert_eq!(rows.len(), 1, "{m} {path} needs exactly one policy row");
    }
    for (m, path, _) in policy::API {
        assert!(
            operations.iter().any(|(om, op)| om == m && op == path),
            "policy row {m} {path} names no operation"
        );
    }
}

/// Replaces `:param` and `{param}` segments with a made-up id.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| {
            if seg.starts_with(':') || seg.starts_with('{') {
                "apt_00000000000000000000000000"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

struct People {
    s: Sched,
}

/// A server with one pooled connection for requests (a pool of two: the clinic registry's
/// change listener keeps the other). A request's clinic transaction is the one its route
/// guard opened and handed on (`web/src/tx.rs`); a handler that opened another beside it
/// would wait for a second connection and answer 500 after the pool's timeout, which these
/// tests count as a failure.
async fn one_connection() -> TestApp {
    TestApp::spawn_with(HashMap::from([(
        "PORTAL_DATABASE_POOL_SIZE",
        "2".to_owned(),
    )]))
    .await
}

async fn people(app: &TestApp) -> People {
    let s = app.scheduling_clinic("roles").await;
    app.staff(&s.tenant, "desk@roles.example", Role::FrontDesk)
        .await;
    app.staff(&s.tenant, "doc@roles.example", Role::Clinician)
        .await;
    app.staff(&s.tenant, "bill@roles.example", Role::Billing)
        .await;
    app.patient(&s.tenant, "Pat", "pat@roles.example").await;
    People { s }
}

fn email_of(role: Role) -> &'static str {
    match role {
        Role::Patient => "pat@roles.example",
        Role::FrontDesk => "desk@roles.example",
        Role::Clinician => "doc@roles.example",
        Role::Billing => "bill@roles.example",
        Role::ClinicAdmin => "admin@roles.example",
        Role::Proxy => unreachable!(),
    }
}

#[tokio::test]
async fn every_page_route_answers_each_role_as_its_policy_says() {
    let app = one_connection().await;
    let p = people(&app).await;
    let pages = portal_web::page_policies();
    assert!(pages.len() > 40, "the page table lost its routes?");
    let mut failures = Vec::new();
    let mut who: Vec<(Option<Role>, portal_tests::Browser)> = vec![(None, app.browser(&p.s.host))];
    for role in ROLES {
        who.push((
            Some(role),
            app.sign_in(&p.s.host, email_of(role), PASSWORD).await,
        ));
    }
    for (template, policy) in &pages {
        let path = concrete(template);
        for (role, browser) in who.iter_mut() {
            let resp = browser.get(&path).await;
            let status = resp.status().as_u16();
            let to_login = status == 303
                && resp
                    .headers()
                    .get("location")
                    .is_some_and(|l| l == "/login");
            let refused = status == 403 || (role.is_none() && to_login);
            if status >= 500 {
                failures.push(format!("{template} as {role:?}: server error {status}"));
            } else if refused == admits(policy, *role) {
                failures.push(format!("{template} as {role:?}: {status}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "routes not answering by their policy:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_api_operation_answers_each_role_as_its_policy_says() {
    let app = one_connection().await;
    let p = people(&app).await;
    let mut tokens = vec![(None, "not-a-session".to_owned())];
    for role in ROLES {
        tokens.push((Some(role), app.api_token(&p.s.host, email_of(role)).await));
    }
    let mut failures = Vec::new();
    // Signing out goes last, or every later call would find no session.
    let mut rows: Vec<_> = policy::API.iter().collect();
    rows.sort_by_key(|(m, t, _)| *m == Method::DELETE && *t == "/v1/sessions/current");
    for (method, template, policy) in rows {
        let path = concrete(template);
        for (role, token) in &tokens {
            let body = matches!(*method, Method::POST | Method::PUT).then(|| json!({}));
            let (status, _) = app.api(&p.s.host, token, method.clone(), &path, body).await;
            let refused = status == 403
                || (role.is_none() && status == 401)
                || (policy.access == Access::Key && status == 401);
            if status >= 500 {
                failures.push(format!(
                    "{method} {template} as {role:?}: server error {status}"
                ));
            } else if refused == admits(policy, *role) {
                failures.push(format!("{method} {template} as {role:?}: {status}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "operations not answering by their policy:\n{}",
        failures.join("\n")
    );
}

/// Billing works with demographics and money, never visit reasons.
#[tokio::test]
async fn billing_cannot_open_a_visit_or_its_reason() {
    let app = TestApp::spawn().await;
    let p = people(&app).await;
    let s = &p.s;
    let pat = app.api_token(&s.host, "pat@roles.example").await;
    let (st, visit) = app
        .api(
            &s.host,
            &pat,
            Method::POST,
            "/v1/appointments",
            Some(json!({"visit_type_id": s.checkup, "provider_id": s.dr_a,
                        "location_id": s.location, "starts_at": s.at("2026-11-04T10:00"),
                        "reason": "persistent cough"})),
        )
        .await;
    assert_eq!(st, 201, "{visit}");
    let id = visit["id"].as_str().unwrap();

    let desk = app.api_token(&s.host, "desk@roles.example").await;
    let (st, seen) = app
        .api(
            &s.host,
            &desk,
            Method::GET,
            &format!("/v1/appointments/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "front desk runs the schedule");
    assert_eq!(seen["reason"], "persistent cough");

    let bill = app.api_token(&s.host, "bill@roles.example").await;
    for path in [
        format!("/v1/appointments/{id}"),
        "/v1/appointments".to_owned(),
    ] {
        let (st, body) = app.api(&s.host, &bill, Method::GET, &path, None).await;
        assert_eq!(st, 403, "{path}: {body}");
        assert!(!body.to_string().contains("cough"));
    }
    let mut billing = app.sign_in(&s.host, "bill@roles.example", PASSWORD).await;
    let (st, page) = billing.page("/staff/schedule").await;
    assert_eq!(st, 403);
    assert!(!page.contains("cough"));
    assert!(page.contains("not part of your role"), "{page}");
    // Patient details stay open to billing (a patient's page shows their details but no
    // visits); billing starts its day on its own work queue.
    let (st, _) = billing.page("/admin/patients").await;
    assert_eq!(st, 200);
    let resp = billing.get("/").await;
    assert_eq!(resp.headers()["location"], "/billing");
}
