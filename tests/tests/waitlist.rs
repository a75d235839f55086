//! The earlier-slot waitlist: a cancellation or a move offers the time it frees to waiting
//! patients whose visit is later; when several accept at once, one moves and the others keep
//! their visit.

use std::collections::HashMap;

use portal_tests::scheduling::Sched;
use portal_tests::{TestApp, read_emails};
use reqwest::Method;
use serde_json::{Value, json};

async fn book(app: &TestApp, s: &Sched, token: &str, local: &str) -> String {
    let (st, a) = app
        .api(
            &s.host,
            token,
            Method::POST,
            "/v1/appointments",
            Some(json!({"visit_type_id": s.checkup, "provider_id": s.dr_a,
                        "location_id": s.location, "starts_at": s.at(local)})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    a["id"].as_str().unwrap().to_owned()
}

/// Puts the patient's visit on the earlier-slot waitlist.
async fn wait_for_earlier(app: &TestApp, s: &Sched, token: &str, visit: &str) {
    let (st, body) = app
        .api(
            &s.host,
            token,
            Method::POST,
            &format!("/v1/appointments/{visit}/waitlist"),
            None,
        )
        .await;
    assert_eq!(st, 204, "{body}");
}

#[tokio::test]
async fn a_cancelled_time_goes_to_the_first_waiting_patient_who_takes_it() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let s = app.scheduling_clinic("wait").await;
    let mut tokens = Vec::new();
    for name in ["ann", "bo", "cy", "di", "ed"] {
        let email = format!("{name}@wait.example");
        app.patient(&s.tenant, name, &email).await;
        tokens.push(app.api_token(&s.host, &email).await);
    }
    let (ann, bo, cy, di, ed) = (&tokens[0], &tokens[1], &tokens[2], &tokens[3], &tokens[4]);
    let ann_visit = book(&app, &s, ann, "2026-11-06T09:00").await;
    let bo_visit = book(&app, &s, bo, "2026-11-06T09:30").await;
    let cy_visit = book(&app, &s, cy, "2026-11-03T09:00").await; // earlier than the freed time
    let _di_visit = book(&app, &s, di, "2026-11-06T10:00").await; // not waiting
    let ed_visit = book(&app, &s, ed, "2026-11-04T10:00").await; // will cancel
    for (t, v) in [(ann, &ann_visit), (bo, &bo_visit), (cy, &cy_visit)] {
        wait_for_earlier(&app, &s, t, v).await;
    }
    // Nobody may put another patient's visit on the list.
    let (st, _) = app
        .api(
            &s.host,
            di,
            Method::POST,
            &format!("/v1/appointments/{ann_visit}/waitlist"),
            None,
        )
        .await;
    assert_eq!(st, 404);

    let (st, _) = app
        .api(
            &s.host,
            ed,
            Method::POST,
            &format!("/v1/appointments/{ed_visit}/cancel"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(app.jobs_settled().await, 0);
    let offered: Vec<String> = read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.subject == "An earlier time opened at Clinic wait")
        .map(|e| e.to)
        .collect();
    let mut offered_sorted = offered.clone();
    offered_sorted.sort();
    assert_eq!(
        offered_sorted,
        ["ann@wait.example", "bo@wait.example"],
        "only later, waiting visits"
    );

    let offer_of = |body: &Value| body[0]["id"].as_str().unwrap().to_owned();
    let (_, ann_offers) = app
        .api(&s.host, ann, Method::GET, "/v1/waitlist-offers", None)
        .await;
    let (_, bo_offers) = app
        .api(&s.host, bo, Method::GET, "/v1/waitlist-offers", None)
        .await;
    let (ann_offer, bo_offer) = (offer_of(&ann_offers), offer_of(&bo_offers));
    let freed = chrono::DateTime::parse_from_rfc3339(&s.at("2026-11-04T10:00")).unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(ann_offers[0]["starts_at"].as_str().unwrap()).unwrap(),
        freed
    );

    // Both take it at the same moment.
    let ann_path = format!("/v1/waitlist-offers/{ann_offer}/accept");
    let bo_path = format!("/v1/waitlist-offers/{bo_offer}/accept");
    let (a, b) = tokio::join!(
        app.api(&s.host, ann, Method::POST, &ann_path, None),
        app.api(&s.host, bo, Method::POST, &bo_path, None),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let (winner, loser, loser_visit) = if a.0 == 200 {
        (&a.1, bo, &bo_visit)
    } else {
        (&b.1, ann, &ann_visit)
    };
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(winner["starts_at"].as_str().unwrap()).unwrap(),
        freed
    );
    assert_eq!(winner["version"], 2);
    let (_, kept) = app
        .api(
            &s.host,
            loser,
            Method::GET,
            &format!("/v1/appointments/{loser_visit}"),
            None,
        )
        .await;
    assert_eq!(kept["version"], 1, "the loser keeps their visit");
    assert_eq!(kept["status"], "booked");
    let (_, left) = app
        .api(&s.host, loser, Method::GET, "/v1/waitlist-offers", None)
        .await;
    // The taken offer is not shown again. If Ann won, her old 09:00 is free in turn and goes to
    // Bo, still waiting with a later visit; if Bo won, his old 09:30 is later than Ann's visit.
    let left_times: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["starts_at"].as_str().unwrap())
        .collect();
    if a.0 == 200 {
        assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(left_times[0]).unwrap(),
            chrono::DateTime::parse_from_rfc3339(&s.at("2026-11-06T09:00")).unwrap(),
            "Ann's old time goes to Bo"
        );
    } else {
        assert_eq!(left, json!([]), "a taken offer is not shown again");
    }
    // Only one visit at that time.
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".appointments WHERE starts_at = $1 AND status = 'booked'",
        s.tenant.schema_name()
    )))
    .bind(freed.with_timezone(&chrono::Utc))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_visit_moved_away_offers_its_old_time_to_waiting_patients_but_not_to_itself() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let s = app.scheduling_clinic("moves").await;
    let mut tokens = Vec::new();
    let mut patients = Vec::new();
    for name in ["fay", "gus"] {
        let email = format!("{name}@moves.example");
        patients.push(app.patient(&s.tenant, name, &email).await);
        tokens.push(app.api_token(&s.host, &email).await);
    }
    let (fay, gus) = (&tokens[0], &tokens[1]);
    let fay_visit = book(&app, &s, fay, "2026-11-06T09:00").await;
    let gus_visit = book(&app, &s, gus, "2026-11-04T10:00").await;
    for (t, v) in [(fay, &fay_visit), (gus, &gus_visit)] {
        wait_for_earlier(&app, &s, t, v).await;
    }
    // Gus moves his visit later; the time he leaves is earlier than Fay's visit.
    let (st, moved) = app
        .api(
            &s.host,
            gus,
            Method::POST,
            &format!("/v1/appointments/{gus_visit}/reschedule"),
            Some(json!({"provider_id": s.dr_a, "location_id": s.location,
                        "starts_at": s.at("2026-11-06T11:00")})),
        )
        .await;
    assert_eq!(st, 200, "{moved}");
    assert_eq!(app.jobs_settled().await, 0);
    let (_, fay_offers) = app
        .api(&s.host, fay, Method::GET, "/v1/waitlist-offers", None)
        .await;
    assert_eq!(fay_offers.as_array().unwrap().len(), 1, "{fay_offers}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(fay_offers[0]["starts_at"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&s.at("2026-11-04T10:00")).unwrap()
    );
    // Gus's own old time is not offered back to him, and he stays on the list.
    let (_, gus_offers) = app
        .api(&s.host, gus, Method::GET, "/v1/waitlist-offers", None)
        .await;
    assert_eq!(gus_offers, json!([]));
    let offered: Vec<String> = read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.subject == "An earlier time opened at Clinic moves")
        .map(|e| e.to)
        .collect();
    assert_eq!(offered, ["fay@moves.example"]);
    // Making the offer is a write about Fay, audited as the clinic acting automatically (never
    // under Gus, whose name Fay's access report must not show).
    let offer_rows: Vec<(Option<uuid::Uuid>, Option<String>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT patient_id, actor_role FROM \"{}\".audit_log WHERE action = 'waitlist.offer_made'",
            s.tenant.schema_name()
        )))
        .fetch_all(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(offer_rows, [(Some(patients[0].as_uuid()), None)]);
    // Fay takes it.
    let offer = fay_offers[0]["id"].as_str().unwrap();
    let (st, taken) = app
        .api(
            &s.host,
            fay,
            Method::POST,
            &format!("/v1/waitlist-offers/{offer}/accept"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{taken}");
    assert_eq!(taken["id"], fay_visit.as_str());
    assert_eq!(taken["version"], 2);
}

/// Issue 9.1: when Ana's cancellation offers her time to Ben, Ben's "Who viewed my record"
/// shows the clinic acting automatically — never Ana's name — and every row has plain words.
#[tokio::test]
async fn a_waiting_patients_access_report_never_names_the_patient_who_freed_the_time() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("names").await;
    app.patient(&s.tenant, "Anaxandra", "ana@names.example")
        .await;
    app.patient(&s.tenant, "Benedikt", "ben@names.example")
        .await;
    let ana = app.api_token(&s.host, "ana@names.example").await;
    let ben = app.api_token(&s.host, "ben@names.example").await;
    let ana_visit = book(&app, &s, &ana, "2026-11-04T10:00").await;
    let ben_visit = book(&app, &s, &ben, "2026-11-06T09:30").await;
    wait_for_earlier(&app, &s, &ben, &ben_visit).await;
    let (st, _) = app
        .api(
            &s.host,
            &ana,
            Method::POST,
            &format!("/v1/appointments/{ana_visit}/cancel"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (_, offers) = app
        .api(&s.host, &ben, Method::GET, "/v1/waitlist-offers", None)
        .await;
    assert_eq!(offers.as_array().map(Vec::len), Some(1), "{offers}");

    let mut browser = app
        .sign_in(&s.host, "ben@names.example", portal_tests::PASSWORD)
        .await;
    let (st, page) = browser.page("/account/access").await;
    assert_eq!(st, 200);
    assert!(
        !page.contains("Anaxandra"),
        "another patient's name leaked: {page}"
    );
    assert!(
        page.contains("Clinic names (automatic)"),
        "the offer should read as the clinic: {page}"
    );
    assert!(page.contains("Offered an earlier time"), "{page}");
    assert!(
        page.contains("Benedikt Tester"),
        "his own actions carry his name"
    );
    assert!(!page.contains("Other activity"), "{page}");
}

/// Issue 9.10: an offer whose patient has left the waitlist can no longer be taken.
#[tokio::test]
async fn an_offer_cannot_be_taken_after_leaving_the_waitlist() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("leave").await;
    app.patient(&s.tenant, "Ann", "ann@leave.example").await;
    app.patient(&s.tenant, "Bo", "bo@leave.example").await;
    let ann = app.api_token(&s.host, "ann@leave.example").await;
    let bo = app.api_token(&s.host, "bo@leave.example").await;
    let ann_visit = book(&app, &s, &ann, "2026-11-06T09:00").await;
    let bo_visit = book(&app, &s, &bo, "2026-11-04T10:00").await;
    wait_for_earlier(&app, &s, &ann, &ann_visit).await;
    let (st, _) = app
        .api(
            &s.host,
            &bo,
            Method::POST,
            &format!("/v1/appointments/{bo_visit}/cancel"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (_, offers) = app
        .api(&s.host, &ann, Method::GET, "/v1/waitlist-offers", None)
        .await;
    let offer = offers[0]["id"].as_str().unwrap().to_owned();
    let (st, _) = app
        .api(
            &s.host,
            &ann,
            Method::DELETE,
            &format!("/v1/appointments/{ann_visit}/waitlist"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, body) = app
        .api(
            &s.host,
            &ann,
            Method::POST,
            &format!("/v1/waitlist-offers/{offer}/accept"),
            None,
        )
        .await;
    assert_eq!(st, 404, "{body}");
    let (_, visit) = app
        .api(
            &s.host,
            &ann,
            Method::GET,
            &format!("/v1/appointments/{ann_visit}"),
            None,
        )
        .await;
    assert!(
        visit["starts_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-06"),
        "{visit}"
    );
}
