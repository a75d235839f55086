//! Statements through the API (issue 13): the clinic's billing system sends a whole statement
//! with a clinic API key; it is issued to the patient found by their MRN exactly as billing
//! staff would issue it (charged once, a notice with no amount); sending it again returns the
//! same statement; the same id with other content is 409; every kind of bad input is refused
//! with where it is and nothing written; no key, a revoked key or another clinic's key is 401.

use portal_domain::audit::AuditContext;
use portal_domain::clock::Clock;
use portal_domain::identity::api_keys;
use portal_tenants::Tenant;
use portal_tests::bills::{desk, ledger};
use portal_tests::{PASSWORD, TestApp, read_emails};
use serde_json::{Value, json};

const MRN: &str = "https://ehr.example/mrn";

async fn key(app: &TestApp, t: &Tenant) -> (uuid::Uuid, String) {
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(t).await.unwrap();
    let k = api_keys::create(
        &mut tx,
        None,
        &AuditContext::default(),
        "Billing system",
        app.clock.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    k
}

async fn send(app: &TestApp, host: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("http://{}/api/v1/billing/statements", app.addr))
        .header("host", host)
        .json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn day(app: &TestApp, offset: i64) -> String {
    (app.clock.now() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

fn statement(app: &TestApp, external_id: &str) -> Value {
    json!({
        "external_id": external_id,
        "patient": {"system": MRN, "value": "MRN-42"},
        "currency": "USD",
        "due_on": day(app, 30),
        "lines": [
            {"service_date": day(app, -3), "description": "Office visit", "code": "99213",
             "charge": "180.00", "insurance_paid": "120.00", "adjustment": "20.00"},
            {"service_date": day(app, -3), "description": "Flu vaccine", "code": "90686",
             "charge": "35.50"}
        ]
    })
}

async fn statements_of(app: &TestApp, t: &Tenant) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".statements",
        t.schema_name()
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_statement_sent_by_the_billing_system_is_issued_once_and_bad_ones_are_refused() {
    let app = TestApp::spawn_with_workers(Default::default()).await;
    let mut d = desk(&app).await;
    let harbor = app.clinic("harbor").await;
    // Ana's record came from the EHR with her MRN.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{}\".patient_identifiers (system, value, patient_id, created_at)
         VALUES ($1, 'MRN-42', $2, now())",
        d.sunrise.schema_name()
    )))
    .bind(MRN)
    .bind(d.ana.as_uuid())
    .execute(&app.db.admin)
    .await
    .unwrap();
    let (kid, k) = key(&app, &d.sunrise).await;
    let (_, harbor_key) = key(&app, &harbor).await;

    // No key, a made-up key, another clinic's key: 401, nothing written.
    let body = statement(&app, "INV-1001");
    for bad in [None, Some("pk_not_a_key"), Some(harbor_key.as_str())] {
        let (st, v) = send(&app, &d.host, bad, &body).await;
        assert_eq!(st, 401, "{v}");
        assert_eq!(v["code"], "unauthorized");
    }
    assert_eq!(statements_of(&app, &d.sunrise).await, 0);

    // Made and issued: the patient's part of each line, charged once.
    let (st, made) = send(&app, &d.host, Some(&k), &body).await;
    assert_eq!(st, 201, "{made}");
    assert_eq!(made["issued"]["minor"], 7550);
    assert_eq!(made["issued"]["display"], "$75.50");
    assert_eq!(made["external_id"], "INV-1001");
    assert_eq!(ledger(&app, &d.sunrise).await, [(7550, 7550, 1)]);
    let id = made["id"].as_str().unwrap().to_owned();
    let (status, page) = d.staff.page(&format!("/billing/statements/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Flu vaccine") && page.contains(">Due<"),
        "{page}"
    );
    // The patient sees it and is told, with no amount and no service.
    let mut ana = app.sign_in(&d.host, "ana@example.com", PASSWORD).await;
    let (status, bill) = ana.page(&format!("/bills/{id}")).await;
    assert_eq!(status, 200);
    assert!(bill.contains("$75.50"), "{bill}");
    assert_eq!(app.jobs_settled().await, 0);
    let notices: Vec<_> = read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.to == "ana@example.com" && e.subject.contains("A new statement"))
        .collect();
    assert_eq!(notices.len(), 1);
    assert!(!notices[0].text.contains('$') && !notices[0].text.contains("Flu"));

    // The same statement again (other key order and spacing): the same one, 200.
    let reordered: Value =
        serde_json::from_str(&serde_json::to_string_pretty(&body).unwrap()).unwrap();
    let (st, again) = send(&app, &d.host, Some(&k), &reordered).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["id"], made["id"]);
    assert_eq!(again["number"], made["number"]);
    assert_eq!(ledger(&app, &d.sunrise).await, [(7550, 7550, 1)]);
    // The same id with other content: 409, nothing changed.
    let mut changed = body.clone();
    changed["lines"][1]["charge"] = json!("40.00");
    let (st, v) = send(&app, &d.host, Some(&k), &changed).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["code"], "external_id_reused");
    assert_eq!(statements_of(&app, &d.sunrise).await, 1);

    // Sent again after its due date passed (a retry a month late): still the same one.
    app.clock.set(app.clock.now() + chrono::Duration::days(40));
    let (st, late) = send(&app, &d.host, Some(&k), &body).await;
    assert_eq!(st, 200, "{late}");
    assert_eq!(late["id"], made["id"]);

    // Bad input: every problem with where it is; nothing written.
    let mut bad = statement(&app, "INV-1002");
    bad["currency"] = json!("EUR");
    bad["due_on"] = json!(day(&app, -2));
    bad["lines"][0]["code"] = json!("ABC");
    bad["lines"][1]["charge"] = json!("-5");
    bad["lines"][1]["service_date"] = json!(day(&app, 3));
    let (st, v) = send(&app, &d.host, Some(&k), &bad).await;
    assert_eq!(st, 422, "{v}");
    let fields: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    for f in [
        "currency",
        "due_on",
        "lines[0].code",
        "lines[1].charge",
        "lines[1].service_date",
    ] {
        assert!(fields.contains(&f), "{f} in {v}");
    }
    let mut empty = statement(&app, "INV-1003");
    empty["lines"] = json!([]);
    let (st, v) = send(&app, &d.host, Some(&k), &empty).await;
    assert_eq!(
        (st, v["problems"][0]["field"].as_str()),
        (422, Some("lines"))
    );
    let mut stranger = statement(&app, "INV-1004");
    stranger["patient"]["value"] = json!("MRN-404");
    let (st, v) = send(&app, &d.host, Some(&k), &stranger).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (422, Some("unknown_patient")),
        "{v}"
    );
    let (st, _) = send(&app, &d.host, Some(&k), &json!({"external_id": "x"})).await;
    assert_eq!(st, 400, "a body of the wrong shape");
    assert_eq!(statements_of(&app, &d.sunrise).await, 1);
    assert_eq!(ledger(&app, &d.sunrise).await, [(7550, 7550, 1)]);

    // A revoked key stops at once; the other clinic got nothing from any of this.
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&d.sunrise).await.unwrap();
    assert!(
        api_keys::revoke(
            &mut tx,
            None,
            &AuditContext::default(),
            kid,
            app.clock.now()
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    let (st, _) = send(&app, &d.host, Some(&k), &statement(&app, "INV-1005")).await;
    assert_eq!(st, 401);
    assert_eq!(statements_of(&app, &d.sunrise).await, 1);
    assert_eq!(statements_of(&app, &harbor).await, 0);
}
