//! Results (issue 11): a clinician enters a lab result, the patient is told without content
//! and sees it flagged with its trend and the clinician's comment; the patient's own choice to
//! wait for a comment (or some days) holds a result back; bad entries are refused on their
//! field with nothing written; another patient's result answers like a missing one.

use std::collections::HashMap;

use chrono::Duration;
use portal_domain::clock::Clock;
use portal_domain::identity::Role;
use portal_tests::{PASSWORD, TestApp};

/// Enters a glucose value through the staff page and returns the result's page path (staff).
async fn enter_glucose(
    doc: &mut portal_tests::Browser,
    patient: &str,
    value: &str,
    collected: &str,
) -> String {
    let path = format!("/admin/patients/{patient}/record/results");
    let resp = doc
        .post_form(
            &path,
            &[
                ("name", "Glucose"),
                ("loinc", "2345-7"),
                ("value", value),
                ("unit", "mg/dL"),
                ("low", "70"),
                ("high", "99"),
                ("collected", collected),
                ("performer", "Quest Diagnostics"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let (_, page) = doc.page(&format!("/admin/patients/{patient}/record")).await;
    let marker = format!("/admin/patients/{patient}/results/");
    let at = page.find(&marker).expect("the result is listed");
    let rest = &page[at..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The patient chooses to see lab results only `days` after they are in (or once commented).
async fn wait_for_lab_results(patient: &mut portal_tests::Browser, days: &str) {
    let resp = patient
        .post_form(
            "/results/preferences",
            &[
                ("lab_when", "wait"),
                ("lab_days", days),
                ("imaging_when", "now"),
                ("imaging_days", "7"),
                ("other_when", "now"),
                ("other_days", "7"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
}

/// The patient's record version (`record_versions`), read as the database owner.
async fn record_version(app: &TestApp, schema: &str, patient: uuid::Uuid) -> uuid::Uuid {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\".record_versions WHERE patient_id = $1"
    )))
    .bind(patient)
    .fetch_one(&app.db.admin)
    .await
    .unwrap()
}

fn result_id(staff_path: &str) -> &str {
    staff_path.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn a_lab_result_reaches_the_patient_flagged_with_its_trend_and_comment() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("labs").await;
    let host = app.host("labs");
    app.staff(&t, "doc@labs.example", Role::Clinician).await;
    let ana = app.patient(&t, "Ana", "ana@labs.example").await;
    let ben = app.patient(&t, "Ben", "ben@labs.example").await;
    let mut doc = app.sign_in(&host, "doc@labs.example", PASSWORD).await;

    // Bad entries are refused on their field, and nothing is written.
    let record = format!("/admin/patients/{ana}/record/results");
    for (fields, field_id, words) in [
        (
            vec![("name", "Glucose"), ("loinc", "2345-7"), ("value", "130")],
            "result-unit",
            "needs its unit",
        ),
        (
            vec![
                ("name", "Glucose"),
                ("loinc", "2345-6"),
                ("value", "130"),
                ("unit", "mg/dL"),
            ],
            "result-loinc",
            "not a LOINC code",
        ),
        (
            vec![
                ("name", "Glucose"),
                ("loinc", "2345-7"),
                ("value", "130"),
                ("unit", "mg/dL"),
                ("collected", "2999-01-01T08:00"),
            ],
            "result-collected",
            "in the future",
        ),
        (
            vec![
                ("name", "Glucose"),
                ("loinc", "2345-7"),
                ("value", "130"),
                ("unit", "mg/dL"),
                ("low", "99"),
                ("high", "70"),
            ],
            "result-low",
            "above its high end",
        ),
    ] {
        let resp = doc.post_form(&record, &fields).await;
        assert_eq!(resp.status(), 422, "{field_id}");
        let page = resp.text().await.unwrap();
        assert!(
            page.contains(&format!(r#"id="{field_id}-error""#)),
            "{field_id}: {page}"
        );
        assert!(page.contains(words), "{words}");
    }
    let (_, page) = doc.page(&format!("/admin/patients/{ana}/record")).await;
    assert!(page.contains("No results yet."), "nothing half-written");

    // Two earlier values and a high one today.
    let now = app.clock.now();
    let day = |d: i64| {
        (now - Duration::days(d))
            .format("%Y-%m-%dT08:00")
            .to_string()
    };
    enter_glucose(&mut doc, &ana.to_string(), "92", &day(400)).await;
    enter_glucose(&mut doc, &ana.to_string(), "97", &day(200)).await;
    let staff_path = enter_glucose(&mut doc, &ana.to_string(), "131", &day(1)).await;
    let id = result_id(&staff_path).to_owned();

    // The patient is told, with no content.
    let mail = app.email_to("ana@labs.example").await;
    assert!(
        mail.subject.contains("A new result is ready"),
        "{}",
        mail.subject
    );
    for secret in ["Glucose", "131", "mg/dL", "High"] {
        assert!(
            !mail.text.contains(secret) && !mail.subject.contains(secret),
            "{secret} leaked"
        );
    }
    assert!(mail.text.contains("/results"));

    // The patient sees it new and flagged, in full, with the trend of all three values.
    let mut ana_b = app.sign_in(&host, "ana@labs.example", PASSWORD).await;
    let (st, list) = ana_b.page("/results").await;
    assert_eq!(st, 200);
    assert_eq!(list.matches(r#"data-testid="result-row""#).count(), 3);
    assert!(
        list.contains("result-flagged") && list.contains("result-new"),
        "{list}"
    );
    let (st, one) = ana_b.page(&format!("/results/{id}")).await;
    assert_eq!(st, 200);
    assert!(
        one.contains("131 mg/dL") && one.contains("70–99 mg/dL") && one.contains(">High<"),
        "{one}"
    );
    let (st, trend) = ana_b.page("/results/trend/2345-7").await;
    assert_eq!(st, 200);
    assert!(
        trend.contains("<svg") && trend.contains("normal-band"),
        "{trend}"
    );
    assert_eq!(
        trend.matches(r#"data-flag="out""#).count(),
        1,
        "one value outside the range"
    );
    assert_eq!(
        trend.matches("mg/dL</td>").count(),
        3,
        "the table lists all three"
    );
    let (_, list) = ana_b.page("/results").await;
    assert_eq!(
        list.matches("result-new").count(),
        2,
        "opened: no longer new"
    );

    // The clinician comments (against the version they saw); a stale comment is refused.
    let comment = format!("{staff_path}/comment");
    let resp = doc
        .post_form(
            &comment,
            &[
                ("version", "1"),
                (
                    "comment",
                    "Slightly high. Let's recheck fasting in 3 months.",
                ),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = doc
        .post_form(
            &comment,
            &[("version", "1"), ("comment", "An older screen's comment")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("changed by someone else")
    );
    let (_, one) = ana_b.page(&format!("/results/{id}")).await;
    assert!(one.contains("recheck fasting in 3 months"), "{one}");
    assert!(!one.contains("An older screen"));

    // Ben cannot open Ana's result or see it in his list; a made-up id answers the same.
    let mut ben_b = app.sign_in(&host, "ben@labs.example", PASSWORD).await;
    let (st, page) = ben_b.page(&format!("/results/{id}")).await;
    assert_eq!(st, 404);
    assert!(!page.contains("Glucose"));
    let (st, _) = ben_b
        .page(&format!("/results/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(st, 404);
    let (_, list) = ben_b.page("/results").await;
    assert!(list.contains("You have no results yet."));
    // Nor through the staff path with Ben's id.
    let (st, _) = doc
        .page(&format!("/admin/patients/{ben}/results/{id}"))
        .await;
    assert_eq!(st, 404);

    // Every view is audited against Ana.
    let schema = t.schema_name().to_owned();
    let views: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".audit_log WHERE action = 'result.view' AND patient_id = '{}'",
        ana.as_uuid()
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert!(views >= 3, "{views}");
    assert_eq!(app.jobs_settled().await, 0);
}

#[tokio::test]
async fn a_patient_who_chose_to_wait_sees_a_result_after_the_comment_or_the_days() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("waits").await;
    let host = app.host("waits");
    app.staff(&t, "doc@waits.example", Role::Clinician).await;
    let ana = app.patient(&t, "Ana", "ana@waits.example").await;
    let mut doc = app.sign_in(&host, "doc@waits.example", PASSWORD).await;
    let mut ana_b = app.sign_in(&host, "ana@waits.example", PASSWORD).await;

    // Days outside 1–30 are refused on their field.
    let resp = ana_b
        .post_form(
            "/results/preferences",
            &[
                ("lab_when", "wait"),
                ("lab_days", "90"),
                ("imaging_when", "now"),
                ("other_when", "now"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains(r#"id="lab-days-error""#)
    );
    wait_for_lab_results(&mut ana_b, "3").await;

    let now = app.clock.now();
    let first = enter_glucose(
        &mut doc,
        &ana.to_string(),
        "131",
        &(now - Duration::days(2))
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
    )
    .await;
    let second = enter_glucose(
        &mut doc,
        &ana.to_string(),
        "88",
        &(now - Duration::days(1))
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
    )
    .await;
    let mail = app.email_to("ana@waits.example").await;
    assert!(mail.text.contains("As you asked"), "{}", mail.text);

    // Held: listed without its name, and its page says when it will show.
    let (_, list) = ana_b.page("/results").await;
    assert_eq!(list.matches("result-waiting").count(), 2);
    assert!(!list.contains("Glucose"), "{list}");
    let (st, page) = ana_b.page(&format!("/results/{}", result_id(&first))).await;
    assert_eq!(st, 200);
    assert!(page.contains("result-waiting-page") && !page.contains("131"));
    let (st, _) = ana_b.page("/results/trend/2345-7").await;
    assert_eq!(st, 404, "no visible values: no trend");

    // The comment releases the first at once, and the patient is told.
    let resp = doc
        .post_form(
            &format!("{first}/comment"),
            &[("version", "1"), ("comment", "Please recheck.")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = ana_b.page(&format!("/results/{}", result_id(&first))).await;
    assert!(
        page.contains("131 mg/dL") && page.contains("Please recheck."),
        "{page}"
    );
    assert_eq!(app.jobs_settled().await, 0);
    let released = app
        .email_in(&app.mail_dir.clone(), "ana@waits.example", 2)
        .await;
    assert!(
        released.subject.contains("can now be seen"),
        "{}",
        released.subject
    );

    // The second shows once three days have passed, with its own notice; the first's delayed
    // notice is stale (the comment released it) and sends nothing.
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    let later = app
        .email_in(&app.mail_dir.clone(), "ana@waits.example", 3)
        .await;
    assert!(later.subject.contains("can now be seen"));
    assert_eq!(app.jobs_settled().await, 0);
    let sent = portal_tests::read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.to.contains("ana@waits.example"))
        .count();
    assert_eq!(sent, 4, "two arrivals, two releases, nothing more");
    // (Three days on, the earlier session has long timed out.)
    let mut ana_b = app.sign_in(&host, "ana@waits.example", PASSWORD).await;
    let (_, page) = ana_b
        .page(&format!("/results/{}", result_id(&second)))
        .await;
    assert!(page.contains("88 mg/dL"), "{page}");
}

#[tokio::test]
async fn the_health_summary_and_areas_show_the_chart() {
    let app = TestApp::spawn().await;
    let t = app.clinic("summary").await;
    let host = app.host("summary");
    app.patient(&t, "Ana", "ana@summary.example").await;
    let mut ana_b = app.sign_in(&host, "ana@summary.example", PASSWORD).await;
    let (st, page) = ana_b.page("/record").await;
    assert_eq!(st, 200);
    for heading in [
        "Allergies</h2>",
        "Problems and diagnoses</h2>",
        "Recent results</h2>",
        "Current medications</h2>",
        "Immunizations</h2>",
        "Latest vital signs</h2>",
    ] {
        assert!(page.contains(heading), "{heading}");
    }
    // Visits, notes and care plans are each a link away, not on the summary; so are past
    // medications.
    for heading in [
        "Visits</h2>",
        "Clinicians' notes</h2>",
        "Care plans and goals</h2>",
    ] {
        assert!(!page.contains(heading), "{heading}");
    }
    assert!(page.contains(r#"<a href="/record/medications">All medications, past ones too</a>"#));
    for (area, heading) in [
        ("medications", "Medications</h2>"),
        ("immunizations", "Immunizations</h2>"),
        ("vitals", "Latest vital signs</h2>"),
        ("visits", "Visits</h2>"),
        ("plans", "Care plans and goals</h2>"),
    ] {
        let (st, page) = ana_b.page(&format!("/record/{area}")).await;
        assert_eq!(st, 200, "{area}");
        assert!(page.contains(heading), "{area}: {heading}");
    }
    let (st, _) = ana_b.page("/record/secrets").await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn the_api_gives_the_patient_their_own_record_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let t = app.clinic("apirec").await;
    let host = app.host("apirec");
    app.staff(&t, "doc@apirec.example", Role::Clinician).await;
    let ana = app.patient(&t, "Ana", "ana@apirec.example").await;
    app.patient(&t, "Ben", "ben@apirec.example").await;
    let mut doc = app.sign_in(&host, "doc@apirec.example", PASSWORD).await;
    let now = app.clock.now();
    let staff_path = enter_glucose(
        &mut doc,
        &ana.to_string(),
        "131",
        &(now - Duration::days(1))
            .format("%Y-%m-%dT08:00")
            .to_string(),
    )
    .await;
    let id = result_id(&staff_path).to_owned();
    let get = |token: String, path: String| {
        let app = &app;
        let host = host.clone();
        async move {
            let resp = app
                .client
                .get(format!("http://{}/api{path}", app.addr))
                .header("host", host)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (
                status,
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let ana_token = app.api_token(&host, "ana@apirec.example").await;
    let ben_token = app.api_token(&host, "ben@apirec.example").await;
    let (st, list) = get(ana_token.clone(), "/v1/record/results".into()).await;
    assert_eq!(st, 200);
    assert_eq!(list[0]["name"], "Glucose");
    assert_eq!(list[0]["flagged"], true);
    let (st, one) = get(ana_token.clone(), format!("/v1/record/results/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(one["values"][0]["value"], 131.0);
    assert_eq!(one["values"][0]["unit"], "mg/dL");
    assert_eq!(one["values"][0]["flag"], "H");
    let (st, trend) = get(ana_token.clone(), "/v1/record/trends/2345-7".into()).await;
    assert_eq!(st, 200);
    assert_eq!(trend["points"].as_array().unwrap().len(), 1);
    let (st, summary) = get(ana_token, "/v1/record".into()).await;
    assert_eq!(st, 200);
    assert_eq!(summary["recent_results"].as_array().unwrap().len(), 1);
    // Ben: Ana's result is missing, and his own lists are empty.
    let (st, body) = get(ben_token.clone(), format!("/v1/record/results/{id}")).await;
    assert_eq!(st, 404);
    assert!(!body.to_string().contains("Glucose"));
    let (_, list) = get(ben_token.clone(), "/v1/record/results".into()).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let (st, _) = get(ben_token, "/v1/record/trends/2345-7".into()).await;
    assert_eq!(st, 404);
}

/// The value cells of a trend page's table, newest first.
fn trend_values(page: &str) -> Vec<String> {
    page.split(r#"<td data-label="Value">"#)
        .skip(1)
        .map(|c| c[..c.find('<').unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn a_summary_or_trend_viewed_before_shows_every_change_on_the_next_view() {
    let app = TestApp::spawn().await;
    let t = app.clinic("fresh").await;
    let host = app.host("fresh");
    app.staff(&t, "doc@fresh.example", Role::Clinician).await;
    let ana = app.patient(&t, "Ana", "ana@fresh.example").await;
    let mut doc = app.sign_in(&host, "doc@fresh.example", PASSWORD).await;
    let mut ana_b = app.sign_in(&host, "ana@fresh.example", PASSWORD).await;
    let at = |days: i64| {
        (app.clock.now() - Duration::days(days))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let trend = "/results/trend/2345-7";

    // Viewed (and kept by the web) before anything is there, then after each change.
    let (_, summary) = ana_b.page("/record").await;
    assert!(!summary.contains("Glucose"));
    enter_glucose(&mut doc, &ana.to_string(), "131", &at(3)).await;
    let (_, summary) = ana_b.page("/record").await;
    assert!(summary.contains("Glucose"), "{summary}");
    let (st, page) = ana_b.page(trend).await;
    assert_eq!(st, 200);
    assert_eq!(trend_values(&page).len(), 1);
    let (_, again) = ana_b.page(trend).await;
    assert_eq!(
        trend_values(&again),
        trend_values(&page),
        "a second view is the same"
    );

    enter_glucose(&mut doc, &ana.to_string(), "88", &at(2)).await;
    let (_, page) = ana_b.page(trend).await;
    let values = trend_values(&page);
    assert_eq!(values.len(), 2, "{values:?}");
    assert!(values[0].starts_with("88"), "{values:?}");

    // A change made outside the portal's own code (here by hand, in SQL) shows as well: the
    // database's triggers, not the write paths, mark the record changed.
    let flagged = |page: &str| page.matches("Outside normal range").count();
    let (_, summary) = ana_b.page("/record").await;
    assert_eq!(flagged(&summary), 1, "131 is high, 88 is normal");
    let schema = t.schema_name().to_owned();
    let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".observations
         SET value_num = 197, interpretation = 'H', version = version + 1
         WHERE patient_id = $1 AND value_num = 88"
    )))
    .bind(ana.as_uuid())
    .execute(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    let (_, page) = ana_b.page(trend).await;
    let values = trend_values(&page);
    assert!(values[0].starts_with("197"), "{values:?}");
    let (_, summary) = ana_b.page("/record").await;
    assert_eq!(flagged(&summary), 2, "the summary shows the change too");

    // A result the patient chose to wait for joins the trend when its time comes, with no
    // write in between; staff see it at once.
    wait_for_lab_results(&mut ana_b, "3").await;
    enter_glucose(&mut doc, &ana.to_string(), "150", &at(1)).await;
    let (_, page) = ana_b.page(trend).await;
    assert_eq!(trend_values(&page).len(), 2, "held: not in the trend yet");
    let (_, staff) = doc
        .page(&format!("/admin/patients/{ana}/trend/2345-7"))
        .await;
    assert!(trend_values(&staff)[0].starts_with("150"));
    let before = record_version(&app, &schema, ana.as_uuid()).await;
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    assert_eq!(
        record_version(&app, &schema, ana.as_uuid()).await,
        before,
        "nothing was written meanwhile"
    );
    let mut ana_b = app.sign_in(&host, "ana@fresh.example", PASSWORD).await;
    let (_, page) = ana_b.page(trend).await;
    let values = trend_values(&page);
    assert_eq!(values.len(), 3, "{values:?}");
    assert!(values[0].starts_with("150"), "{values:?}");
}

#[tokio::test]
async fn every_table_the_chart_reads_marks_the_record_changed() {
    let app = TestApp::spawn().await;
    let t = app.clinic("marks").await;
    let schema = t.schema_name().to_owned();
    // Every record table (those the versioning trigger keeps history for: everything the
    // summary and the trends read) has both triggers; a record table added later without
    // them fails here.
    let tables: Vec<(String, i64)> = sqlx::query_as(
        "SELECT k.relname::text,
                (SELECT count(*) FROM pg_trigger b
                 WHERE b.tgrelid = k.oid AND b.tgname LIKE '%\\_bump\\_on\\_%')
         FROM pg_trigger g JOIN pg_class k ON k.oid = g.tgrelid
         JOIN pg_namespace n ON n.oid = k.relnamespace JOIN pg_proc f ON f.oid = g.tgfoid
         WHERE n.nspname = $1 AND f.proname = 'record_keep_version'
         ORDER BY 1",
    )
    .bind(&schema)
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert!(tables.len() >= 10, "{tables:?}");
    let missing: Vec<&(String, i64)> = tables.iter().filter(|(_, n)| *n != 2).collect();
    assert!(
        missing.is_empty(),
        "record tables without version triggers: {missing:?}"
    );
    let seen: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger g JOIN pg_class k ON k.oid = g.tgrelid
         JOIN pg_namespace n ON n.oid = k.relnamespace
         WHERE n.nspname = $1 AND k.relname = 'result_seen' AND g.tgname LIKE '%bump%'",
    )
    .bind(&schema)
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(seen, 4, "insert, update, delete and truncate");
    // A truncate fires no row triggers: record tables refuse it; emptying result_seen (every
    // result new again) gives every record a new version.
    for (table, _) in &tables {
        let r = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "TRUNCATE \"{schema}\".{table} CASCADE"
        )))
        .execute(&app.db.admin)
        .await;
        assert!(r.is_err(), "{table} was truncated");
    }
    let patient = app.patient(&t, "Ana", "ana@marks.example").await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".record_versions VALUES ($1, gen_random_uuid())"
    )))
    .bind(patient.as_uuid())
    .execute(&app.db.admin)
    .await
    .unwrap();
    let before = record_version(&app, &schema, patient.as_uuid()).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "TRUNCATE \"{schema}\".result_seen"
    )))
    .execute(&app.db.admin)
    .await
    .unwrap();
    assert_ne!(
        record_version(&app, &schema, patient.as_uuid()).await,
        before
    );
}
