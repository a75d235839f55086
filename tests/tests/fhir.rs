//! FHIR R4 import (issue 11): a realistic multi-year bundle of the shape Synthea and EHR
//! exports write imports cleanly and importing it again changes nothing; one changed value is
//! one new version; conditional requests are honoured; every kind of bad input is refused with
//! its reason and nothing half-imported; keys of another clinic, revoked keys and no key get
//! 401 with nothing written.

use portal::demo_record::{MRN_SYSTEM, Person, bundle};
use portal_domain::audit::AuditContext;
use portal_domain::clock::Clock;
use portal_domain::identity::api_keys;
use portal_tenants::Tenant;
use portal_tests::{PASSWORD, TestApp};
use serde_json::{Value, json};

async fn key(app: &TestApp, t: &Tenant) -> (uuid::Uuid, String) {
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(t).await.unwrap();
    let k = api_keys::create(
        &mut tx,
        None,
        &AuditContext::default(),
        "EHR feed",
        app.clock.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    k
}

async fn post(app: &TestApp, host: &str, key: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("http://{}/fhir/R4", app.addr))
        .header("host", host)
        .header("content-type", "application/fhir+json")
        .body(body.to_vec());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v)
}

/// Rows in a clinic table, and versions kept in history.
async fn count(app: &TestApp, t: &Tenant, table: &str) -> i64 {
    let schema = t.schema_name().to_owned();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".{table}"
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap()
}

const TABLES: [&str; 12] = [
    "patients",
    "conditions",
    "allergies",
    "medications",
    "immunizations",
    "encounters",
    "procedures",
    "care_plans",
    "clinical_notes",
    "result_reports",
    "observations",
    "record_history",
];

async fn snapshot(app: &TestApp, t: &Tenant) -> Vec<i64> {
    let mut out = Vec::new();
    for table in TABLES {
        out.push(count(app, t, table).await);
    }
    out
}

fn ana<'a>() -> Person<'a> {
    Person {
        given: "Ana",
        family: "Tester",
        birth_date: "1984-03-27",
        email: "ana@fhir.example",
        mrn: "MRN-0001",
    }
}

fn statuses(v: &Value) -> Vec<String> {
    v["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_multi_year_bundle_imports_cleanly_and_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.clinic("fhir").await;
    let host = app.host("fhir");
    // The patient already has an account here, linked to the EHR's MRN: the import finds her
    // by it.
    let ana_id = app.patient(&t, "Ana", "ana@fhir.example").await;
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&t).await.unwrap();
    assert!(
        portal_domain::record::fhir::link_patient(
            &mut tx,
            &AuditContext::default(),
            ana_id,
            MRN_SYSTEM,
            "MRN-0001",
            app.clock.now()
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    let (_, k) = key(&app, &t).await;
    let b = bundle(&ana(), 30, app.clock.now());
    let n = b["entry"].as_array().unwrap().len();
    assert!(n >= 300, "hundreds of entries ({n})");
    let body = serde_json::to_vec(&b).unwrap();

    let (st, v) = post(&app, &host, Some(&k), &body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["type"], "transaction-response");
    let s = statuses(&v);
    assert_eq!(s.len(), n);
    assert!(
        s.iter().all(|x| x == "201 Created" || x == "200 OK"),
        "{s:?}"
    );
    let first = snapshot(&app, &t).await;
    assert_eq!(
        first[0], 1,
        "no second Ana: the existing patient was matched"
    );
    assert_eq!(*first.last().unwrap(), 0, "nothing replaced yet");
    assert_eq!(count(&app, &t, "conditions").await, 3);
    assert_eq!(count(&app, &t, "allergies").await, 2);
    assert_eq!(count(&app, &t, "medications").await, 3);
    assert_eq!(count(&app, &t, "encounters").await, 30);
    assert_eq!(count(&app, &t, "clinical_notes").await, 30);
    // 10 wellness visits × 4 panels; blood pressure kept as its two components.
    assert_eq!(count(&app, &t, "result_reports").await, 40);
    assert_eq!(count(&app, &t, "observations").await, 30 * 8 + 10 * 14);
    // Locations name the rows: Type/<id>/_history/<version>.
    let loc = v["entry"][5]["response"]["location"].as_str().unwrap();
    assert!(loc.ends_with("/_history/1"), "{loc}");

    // Again: everything matched, nothing written, no version.
    let (st, v) = post(&app, &host, Some(&k), &body).await;
    assert_eq!(st, 200);
    assert!(statuses(&v).iter().all(|x| x == "200 OK"));
    assert_eq!(snapshot(&app, &t).await, first, "re-import changed nothing");

    // One value changed at the source: one new version, the old one kept.
    let mut changed = b.clone();
    let glucose = changed["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["resource"]["code"]["coding"][0]["code"] == "2345-7")
        .unwrap();
    glucose["resource"]["valueQuantity"]["value"] = json!(250.0);
    let (st, _) = post(
        &app,
        &host,
        Some(&k),
        &serde_json::to_vec(&changed).unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    let after = snapshot(&app, &t).await;
    assert_eq!(after[..11], first[..11], "no new rows");
    assert_eq!(*after.last().unwrap(), 1, "one replaced version kept");

    // The patient reads it: the summary, a trend over the years, a note.
    let mut ana_b = app.sign_in(&host, "ana@fhir.example", PASSWORD).await;
    let (_, summary) = ana_b.page("/record").await;
    for words in [
        "Essential (primary) hypertension",
        "Penicillin G",
        "Lisinopril 10 MG Oral Tablet",
        "Influenza",
        "Body weight",
    ] {
        assert!(summary.contains(words), "{words}");
    }
    // A finished course is not a current medication: on its own page, not the summary.
    assert!(!summary.contains("Amoxicillin 250 MG Oral Capsule"));
    let (_, meds) = ana_b.page("/record/medications").await;
    assert!(meds.contains("Amoxicillin 250 MG Oral Capsule") && meds.contains("Lisinopril"));
    let (_, plans) = ana_b.page("/record/plans").await;
    assert!(plans.contains("Blood pressure self-management"));
    let (_, all_shots) = ana_b.page("/record/immunizations").await;
    assert!(
        all_shots.contains("Tdap"),
        "every immunization on its own page"
    );
    let (st, trend) = ana_b.page("/results/trend/2345-7").await;
    assert_eq!(st, 200);
    assert_eq!(
        trend.matches("mg/dL</td>").count(),
        10,
        "ten yearly glucose values"
    );
    assert!(trend.contains(">250 mg/dL<"), "the corrected value");
    // Thirty weights: the table lists the newest twenty and links to all of them; the chart
    // draws all thirty either way.
    let (_, weights) = ana_b.page("/results/trend/29463-7").await;
    let rows = |page: &str| page.matches(r#"<td data-label="Date">"#).count();
    assert_eq!(rows(&weights), 20, "the newest twenty");
    assert!(weights.contains(r#"href="/results/trend/29463-7?values=all""#));
    assert!(weights.contains("Body weight in kg, 30 values"));
    let (_, all) = ana_b.page("/results/trend/29463-7?values=all").await;
    assert_eq!(rows(&all), 30, "every value");
    assert!(!all.contains("values=all"), "no link to what is shown");
    let (_, visits) = ana_b.page("/record/visits").await;
    assert!(visits.contains("Plan: keep taking lisinopril"));

    // Imports are audited against the patient (as the clinic, by key).
    let schema = t.schema_name().to_owned();
    let imports: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".audit_log WHERE action = 'record.import' AND patient_id = '{}'",
        ana_id.as_uuid()
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(imports, 3);
    // Historical results are not news: no notices were queued for them.
    let notices: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.outbox WHERE kind = 'result.notice'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(notices, 0);
}

fn tiny(entries: Vec<Value>, kind: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"resourceType": "Bundle", "type": kind, "entry": entries})).unwrap()
}

fn patient_entry() -> Value {
    json!({
        "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": MRN_SYSTEM, "value": "MRN-9"}],
            "name": [{"family": "Okafor", "given": ["Ben"]}],
            "birthDate": "1990-01-02"
        },
        "request": {"method": "POST", "url": "Patient"}
    })
}

fn condition(url: &str, system: &str, code: &str) -> Value {
    json!({
        "fullUrl": url,
        "resource": {
            "resourceType": "Condition",
            "code": {"coding": [{"system": system, "code": code, "display": "Asthma"}]},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"},
            "onsetDateTime": "2020-05-01"
        },
        "request": {"method": "POST", "url": "Condition"}
    })
}

fn glucose(url: &str, value: Value) -> Value {
    json!({
        "fullUrl": url,
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"},
            "effectiveDateTime": "2024-03-01T08:00:00Z",
            "valueQuantity": value
        },
        "request": {"method": "POST", "url": "Observation"}
    })
}

#[tokio::test]
async fn bad_bundles_are_refused_with_their_reasons_and_nothing_is_half_imported() {
    let app = TestApp::spawn().await;
    let t = app.clinic("strict").await;
    let other = app.clinic("elsewhere").await;
    let host = app.host("strict");
    let (kid, k) = key(&app, &t).await;
    let (_, other_key) = key(&app, &other).await;
    let good = tiny(
        vec![
            patient_entry(),
            condition(
                "urn:uuid:c1",
                "http://hl7.org/fhir/sid/icd-10-cm",
                "J45.909",
            ),
        ],
        "transaction",
    );

    // Keys: none, another clinic's, garbage → 401, nothing written.
    for k in [None, Some(other_key.as_str()), Some("pk_made_up")] {
        let (st, v) = post(&app, &host, k, &good).await;
        assert_eq!(st, 401, "{k:?}");
        assert_eq!(v["resourceType"], "OperationOutcome");
    }
    assert_eq!(snapshot(&app, &t).await.iter().sum::<i64>(), 0);

    let future = app.clock.now().date_naive() + chrono::Duration::days(400);
    let mut unborn = patient_entry();
    unborn["resource"]["birthDate"] = json!(future.format("%Y-%m-%d").to_string());
    let mut second = patient_entry();
    second["fullUrl"] = json!("urn:uuid:someone-else");
    let mut late = glucose("urn:uuid:g1", json!({"value": 101, "unit": "mg/dL"}));
    late["resource"]["issued"] = json!("2024-02-01T08:00:00Z");
    let mut dangling = condition("urn:uuid:c2", "http://snomed.info/sct", "195967001");
    dangling["resource"]["encounter"] = json!({"reference": "urn:uuid:nowhere"});
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| {
            condition(
                &format!("urn:uuid:x{i}"),
                "http://snomed.info/sct",
                "195967001",
            )
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "malformed JSON",
            b"{\"resourceType\": \"Bundle\", ".to_vec(),
            400,
            "not JSON",
        ),
        (
            "not a bundle",
            br#"{"resourceType": "Patient"}"#.to_vec(),
            400,
            "not a FHIR Bundle",
        ),
        (
            "a type not taken",
            tiny(
                vec![
                    patient_entry(),
                    json!({"resource": {"resourceType": "Claim"}, "request": {"method": "POST", "url": "Claim"}}),
                ],
                "transaction",
            ),
            422,
            "Claim is not a resource type",
        ),
        (
            "a code in the wrong system",
            tiny(
                vec![
                    patient_entry(),
                    condition("urn:uuid:c3", "http://loinc.org", "2345-7"),
                ],
                "transaction",
            ),
            422,
            "does not take",
        ),
        (
            "a number without a unit",
            tiny(
                vec![
                    patient_entry(),
                    glucose("urn:uuid:g2", json!({"value": 101})),
                ],
                "transaction",
            ),
            422,
            "without a unit",
        ),
        (
            "a future birth date",
            tiny(vec![unborn], "transaction"),
            422,
            "birthDate is in the future",
        ),
        (
            "a result before its collection",
            tiny(vec![patient_entry(), late], "transaction"),
            422,
            "before its sample was collected",
        ),
        (
            "a reference leading nowhere",
            tiny(vec![patient_entry(), dangling], "transaction"),
            422,
            "neither in the bundle nor in the record",
        ),
        (
            "two patients",
            tiny(vec![patient_entry(), second], "transaction"),
            422,
            "two patients",
        ),
        (
            "too many entries",
            tiny(too_many, "transaction"),
            413,
            "at most 10000",
        ),
    ];
    for (what, body, status, words) in cases {
        let (st, v) = post(&app, &host, Some(&k), &body).await;
        assert_eq!(st, status, "{what}: {v}");
        assert_eq!(v["resourceType"], "OperationOutcome", "{what}");
        let text = v.to_string();
        assert!(text.contains(words), "{what}: {text}");
        assert_eq!(
            snapshot(&app, &t).await.iter().sum::<i64>(),
            0,
            "{what}: nothing written"
        );
    }

    // A batch writes what passes and answers an outcome for what does not.
    let batch = tiny(
        vec![
            patient_entry(),
            condition(
                "urn:uuid:c4",
                "http://hl7.org/fhir/sid/icd-10-cm",
                "J45.909",
            ),
            condition("urn:uuid:c5", "http://loinc.org", "2345-7"),
        ],
        "batch",
    );
    let (st, v) = post(&app, &host, Some(&k), &batch).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["type"], "batch-response");
    assert_eq!(
        statuses(&v),
        ["201 Created", "201 Created", "422 Unprocessable Entity"]
    );
    assert!(
        v["entry"][2]["response"]["outcome"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("does not take")
    );
    assert_eq!(count(&app, &t, "conditions").await, 1);

    // Conditional update by identifier: the same row, a new version.
    let put = |text: &str| {
        tiny(
            vec![json!({
                "resource": {
                    "resourceType": "Condition",
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001"}], "text": text},
                    "subject": {"reference": format!("Patient?identifier={MRN_SYSTEM}|MRN-9")}
                },
                "request": {"method": "PUT", "url": "Condition?identifier=https://ehr.example/problems|P-77"}
            })],
            "transaction",
        )
    };
    let (st, v) = post(&app, &host, Some(&k), &put("Asthma")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(statuses(&v), ["201 Created"]);
    let (_, v) = post(&app, &host, Some(&k), &put("Asthma, mild intermittent")).await;
    assert_eq!(statuses(&v), ["200 OK"]);
    assert!(
        v["entry"][0]["response"]["location"]
            .as_str()
            .unwrap()
            .ends_with("/_history/2")
    );
    assert_eq!(count(&app, &t, "conditions").await, 2);
    // ifNoneExist: an existing match is left alone, even with different data.
    let mut guarded = condition("urn:uuid:c6", "http://snomed.info/sct", "195967001");
    guarded["resource"]["identifier"] =
        json!([{"system": "https://ehr.example/problems", "value": "P-77"}]);
    guarded["resource"]["code"]["text"] = json!("Something else");
    guarded["request"]["ifNoneExist"] = json!("identifier=https://ehr.example/problems|P-77");
    let (st, _) = post(
        &app,
        &host,
        Some(&k),
        &tiny(vec![patient_entry(), guarded], "transaction"),
    )
    .await;
    assert_eq!(st, 200);
    let kept: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT text FROM \"{}\".conditions WHERE source_key = 'id:https://ehr.example/problems|P-77'",
        t.schema_name()
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(kept, "Asthma, mild intermittent");

    // A revoked key stops at once.
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&t).await.unwrap();
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
    let before = snapshot(&app, &t).await;
    let (st, _) = post(&app, &host, Some(&k), &good).await;
    assert_eq!(st, 401);
    assert_eq!(snapshot(&app, &t).await, before);
    // The other clinic got nothing from any of this.
    assert_eq!(snapshot(&app, &other).await.iter().sum::<i64>(), 0);
}

#[tokio::test]
async fn only_an_identifier_says_who_the_patient_is() {
    let app = TestApp::spawn().await;
    let t = app.clinic("twins").await;
    let host = app.host("twins");
    app.patient(&t, "Ana", "ana@twins.example").await;
    let (_, k) = key(&app, &t).await;
    // Same name and date of birth as the clinic's Ana, another MRN: another person.
    let b = bundle(
        &Person {
            email: "other.ana@twins.example",
            mrn: "MRN-OTHER",
            ..ana()
        },
        3,
        app.clock.now(),
    );
    let (st, v) = post(&app, &host, Some(&k), &serde_json::to_vec(&b).unwrap()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        count(&app, &t, "patients").await,
        2,
        "never merged by name and birth date"
    );
    let mut ana_b = app.sign_in(&host, "ana@twins.example", PASSWORD).await;
    let (_, mine) = ana_b.page("/record").await;
    assert!(
        !mine.contains("Essential (primary) hypertension"),
        "nothing of the other Ana's"
    );
    // A patient without any identifier could never be found again: refused.
    let mut anonymous = patient_entry();
    anonymous["resource"]["identifier"] = json!([]);
    let (st, v) = post(&app, &host, Some(&k), &tiny(vec![anonymous], "transaction")).await;
    assert_eq!(st, 422);
    assert!(v.to_string().contains("needs an identifier"), "{v}");
}

#[test]
fn the_import_is_in_the_openapi_document() {
    let spec: Value = serde_json::from_str(&portal_web::openapi_json()).unwrap();
    assert!(spec["paths"]["/fhir/R4"]["post"].is_object());
}
