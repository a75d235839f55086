//! Appointments end to end: set-up through the admin pages, booking through the patient pages
//! and the API, the database refusing double bookings under a real race, the rules' errors,
//! isolation between patients and clinics, the staff schedule, and the confirmation emails.

use std::collections::HashMap;

use chrono::Duration;
use portal_domain::identity::Role;
use portal_tests::scheduling::Sched;
use portal_tests::{PASSWORD, TestApp, read_emails};
use reqwest::Method;
use serde_json::{Value, json};

async fn count(app: &TestApp, sched: &Sched, sql: &str) -> i64 {
    let schema = sched.tenant.schema_name().to_owned();
    let q = sql.replace("{schema}", &format!("\"{schema}\""));
    sqlx::query_scalar(sqlx::AssertSqlSafe(q))
        .fetch_one(&app.db.admin)
        .await
        .unwrap()
}

fn book_body(s: &Sched, visit_type: &str, provider: &str, local: &str) -> Value {
    json!({
        "visit_type_id": visit_type,
        "provider_id": provider,
        "location_id": s.location,
        "starts_at": s.at(local),
    })
}

/// The open times of the one day the booking page shows.
fn day_shown(page: &str) -> &str {
    let day = page.split(r#"data-testid="day-heading""#).nth(1).unwrap();
    day.split("</section>").next().unwrap()
}

#[tokio::test]
async fn a_patient_books_through_the_pages_and_staff_see_it_in_the_schedule() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("sunrise").await;
    app.patient(&s.tenant, "Ana", "ana@sunrise.example").await;
    let mut ana = app.sign_in(&s.host, "ana@sunrise.example", PASSWORD).await;

    let (status, page) = ana
        .page(&format!("/appointments/new?visit_type={}", s.checkup))
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Times are in the clinic&#39;s time zone, America/New_York (EST)."),
        "the zone is named"
    );
    // Monday 8:00 now, two hours' notice: Monday 10:00 is the first check-up with Dr A; the
    // 9:00–9:30 slots are too soon.
    // One day at a time, opening on the first day with open times.
    assert!(page.contains(r#"data-testid="day-heading">Mon 2 Nov 2026"#));
    let monday = day_shown(&page);
    assert!(
        !monday.contains("9:30 AM <small>Dr"),
        "too soon to be offered"
    );
    assert!(monday.contains("10:00 AM <small>Dr A"));

    let start = s.at("2026-11-03T09:30");
    let resp = ana
        .post_form(
            "/appointments",
            &[
                ("visit_type", &s.checkup),
                ("provider", &s.dr_a),
                ("location", &s.location),
                ("start", &start),
                ("reason", "sore knee"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/appointments/apt_") && location.ends_with("?done=booked"),
        "{location}"
    );
    let (_, detail) = ana.page(&location).await;
    assert!(detail.contains("Your visit is booked"), "{detail}");
    assert!(
        detail.contains("sore knee"),
        "the patient sees their own reason"
    );
    let (_, list) = ana.page("/appointments").await;
    assert!(list.contains("Tue 3 Nov 2026, 9:30 AM EST"), "{list}");
    assert!(list.contains("Check-up with Dr A"));

    // The slot is gone for the next person.
    let (_, again) = ana
        .page(&format!(
            "/appointments/new?visit_type={}&provider={}&from=2026-11-03&day=2026-11-03",
            s.checkup, s.dr_a
        ))
        .await;
    assert!(again.contains(r#"data-testid="day-heading">Tue 3 Nov 2026"#));
    let tuesday = day_shown(&again);
    assert!(!tuesday.contains("9:30 AM"), "booked time still offered");
    assert!(tuesday.contains("10:00 AM"));

    // Staff see it in the day's schedule, with the patient and the reason.
    let (status, schedule) = s.admin.page("/staff/schedule?date=2026-11-03").await;
    assert_eq!(status, 200);
    assert!(schedule.contains("Ana Tester"), "{schedule}");
    assert!(schedule.contains("sore knee"));
    assert!(schedule.contains("9:30 AM – 10:00 AM"));

    // Audited: the booking and the reads, against Ana's record.
    let booked = count(
        &app,
        &s,
        "SELECT count(*) FROM {schema}.audit_log WHERE action = 'appointment.book' AND patient_id IS NOT NULL",
    )
    .await;
    assert_eq!(booked, 1);
    assert!(
        count(
            &app,
            &s,
            "SELECT count(*) FROM {schema}.audit_log WHERE action IN ('appointment.list', 'schedule.view')"
        )
        .await
            >= 2
    );
}

#[tokio::test]
async fn patients_racing_for_the_last_slot_get_one_booking_and_clear_refusals_with_alternatives() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("race").await;
    let mut tokens = Vec::new();
    for i in 0..8 {
        let email = format!("p{i}@race.example");
        app.patient(&s.tenant, &format!("P{i}"), &email).await;
        tokens.push(app.api_token(&s.host, &email).await);
    }
    let body = book_body(&s, &s.checkup, &s.dr_b, "2026-11-04T09:30");
    let results = futures::future::join_all(tokens.iter().map(|t| {
        app.api(
            &s.host,
            t,
            Method::POST,
            "/v1/appointments",
            Some(body.clone()),
        )
    }))
    .await;
    let created = results.iter().filter(|(st, _)| *st == 201).count();
    let taken: Vec<_> = results.iter().filter(|(st, _)| *st == 409).collect();
    assert_eq!(created, 1, "{results:?}");
    assert_eq!(taken.len(), 7, "{results:?}");
    for (_, b) in &taken {
        assert_eq!(b["code"], "slot_taken");
        let alts = b["alternatives"].as_array().unwrap();
        assert!(!alts.is_empty(), "fresh alternatives offered");
        assert!(
            alts.iter().all(|a| !(a["provider_id"] == s.dr_b.as_str()
                && a["starts_at"]
                    .as_str()
                    .unwrap()
                    .starts_with("2026-11-04T14:30"))),
            "the taken time is not offered again"
        );
    }
    assert_eq!(
        count(
            &app,
            &s,
            "SELECT count(*) FROM {schema}.appointments WHERE status = 'booked'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn bad_bookings_get_specific_errors_and_write_nothing() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("rules").await;
    let other = app.scheduling_clinic("elsewhere").await;
    app.patient(&s.tenant, "Ben", "ben@rules.example").await;
    let t = app.api_token(&s.host, "ben@rules.example").await;
    let cases = [
        (
            book_body(&s, &s.checkup, &s.dr_a, "2026-11-01T10:00"),
            "in_past",
        ),
        (
            book_body(&s, &s.checkup, &s.dr_a, "2026-11-02T09:30"),
            "too_soon",
        ),
        (
            book_body(&s, &s.checkup, &s.dr_a, "2027-03-01T10:00"),
            "beyond_horizon",
        ),
        (
            book_body(&s, &s.checkup, &s.dr_a, "2026-11-03T15:00"),
            "outside_availability",
        ),
        (
            book_body(&s, &s.checkup, &s.dr_a, "2026-11-03T09:10"),
            "outside_availability",
        ),
        (
            book_body(&s, &s.video, &s.dr_b, "2026-11-03T09:00"),
            "not_offered",
        ),
        (
            book_body(&s, &s.procedure, &s.dr_a, "2026-11-03T09:00"),
            "not_self_bookable",
        ),
        (
            book_body(&s, &s.checkup, &other.dr_a, "2026-11-03T09:00"),
            "unknown_provider",
        ),
        (
            book_body(&s, &other.checkup, &s.dr_a, "2026-11-03T09:00"),
            "unknown_visit_type",
        ),
        (
            json!({"visit_type_id": s.checkup, "provider_id": s.dr_a, "location_id": other.location,
                   "starts_at": s.at("2026-11-03T09:00")}),
            "unknown_location",
        ),
    ];
    for (body, code) in cases {
        let (status, resp) = app
            .api(
                &s.host,
                &t,
                Method::POST,
                "/v1/appointments",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, resp["code"].as_str().unwrap_or("")),
            (422, code),
            "{body} → {resp}"
        );
    }
    let mut long = book_body(&s, &s.checkup, &s.dr_a, "2026-11-03T09:00");
    long["reason"] = json!("x".repeat(1001));
    let (status, resp) = app
        .api(&s.host, &t, Method::POST, "/v1/appointments", Some(long))
        .await;
    assert_eq!(
        (status, resp["code"].as_str().unwrap()),
        (422, "reason_too_long")
    );
    let (status, _) = app
        .api(
            &s.host,
            &t,
            Method::POST,
            "/v1/appointments",
            Some(json!({"visit_type_id": s.checkup})),
        )
        .await;
    assert_eq!(
        status, 400,
        "a body missing fields is refused by the parser"
    );
    assert_eq!(
        count(&app, &s, "SELECT count(*) FROM {schema}.appointments").await,
        0
    );
    assert_eq!(
        count(&app, &s, "SELECT count(*) FROM control.outbox").await,
        0,
        "no confirmation queued for a refused booking"
    );
    // Time off removes times: Dr A away all of Tuesday morning.
    let resp = s
        .admin
        .post_form(
            "/admin/scheduling/time-off",
            &[
                ("provider", &s.dr_a),
                ("starts", "2026-11-03T00:00"),
                ("ends", "2026-11-03T12:00"),
                ("label", "Training"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (status, resp) = app
        .api(
            &s.host,
            &t,
            Method::POST,
            "/v1/appointments",
            Some(book_body(&s, &s.checkup, &s.dr_a, "2026-11-03T10:00")),
        )
        .await;
    assert_eq!(
        (status, resp["code"].as_str().unwrap()),
        (422, "outside_availability")
    );
}

#[tokio::test]
async fn bad_set_up_is_refused_with_a_clear_message() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("setup").await;
    // Dr A already works 09:00–12:00 on Mondays (at any location, one place at a time).
    let resp = s
        .admin
        .post_form(
            "/admin/scheduling/hours",
            &[
                ("provider", &s.dr_a),
                ("location", &s.location),
                ("weekday", "1"),
                ("start", "11:00"),
                ("end", "13:00"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("These hours overlap hours this provider already has on that day."),
        "{body}"
    );
    let resp = s
        .admin
        .post_form(
            "/admin/scheduling/visit-types",
            &[
                ("name", "Tele"),
                ("duration", "20"),
                ("audience", "any"),
                ("modality", "video"),
                ("video_base_url", "http://insecure.example"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("starting with https://")
    );
    let resp = s
        .admin
        .post_form(
            "/admin/scheduling/hours",
            &[
                ("provider", &s.dr_b),
                ("location", &s.location),
                ("weekday", "2"),
                ("start", "17:00"),
                ("end", "09:00"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("End must be after start.")
    );
    let resp = s
        .admin
        .post_form(
            "/admin/scheduling/time-off",
            &[("provider", ""), ("starts", "tomorrow"), ("ends", "")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("Give a start and an end date and time."),
        "{body}"
    );
    let resp = s
        .admin
        .post_form("/admin/scheduling/locations", &[("name", "   ")])
        .await;
    assert_eq!(resp.status(), 422);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("Give the location a name (up to 120 characters)."),
        "{body}"
    );
    // A patient cannot reach the set-up at all (a page says it is not part of their role).
    app.patient(&s.tenant, "Cy", "cy@setup.example").await;
    let mut cy = app.sign_in(&s.host, "cy@setup.example", PASSWORD).await;
    assert_eq!(cy.page("/admin/scheduling").await.0, 403);
    assert_eq!(cy.page("/staff/schedule").await.0, 403);
}

#[tokio::test]
async fn another_patients_appointment_answers_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("iso").await;
    app.patient(&s.tenant, "Ana", "ana@iso.example").await;
    app.patient(&s.tenant, "Ben", "ben@iso.example").await;
    let ana = app.api_token(&s.host, "ana@iso.example").await;
    let ben = app.api_token(&s.host, "ben@iso.example").await;
    let (st, a) = app
        .api(
            &s.host,
            &ana,
            Method::POST,
            "/v1/appointments",
            Some(book_body(&s, &s.checkup, &s.dr_a, "2026-11-05T10:00")),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    let id = a["id"].as_str().unwrap();
    let missing = "apt_0190f0f00f0f7f0f8f0f0f0f0f0f0f0f";
    for target in [id, missing] {
        let (st, body) = app
            .api(
                &s.host,
                &ben,
                Method::GET,
                &format!("/v1/appointments/{target}"),
                None,
            )
            .await;
        assert_eq!((st, body["code"].as_str().unwrap()), (404, "not_found"));
        let (st, body) = app
            .api(
                &s.host,
                &ben,
                Method::POST,
                &format!("/v1/appointments/{target}/cancel"),
                None,
            )
            .await;
        assert_eq!((st, body["code"].as_str().unwrap()), (404, "not_found"));
    }
    let mut ben_browser = app.sign_in(&s.host, "ben@iso.example", PASSWORD).await;
    assert_eq!(
        ben_browser.page(&format!("/appointments/{id}")).await.0,
        404
    );
    assert_eq!(
        ben_browser
            .page(&format!("/appointments/{id}/calendar.ics"))
            .await
            .0,
        404
    );
    let (_, bens) = app
        .api(&s.host, &ben, Method::GET, "/v1/appointments", None)
        .await;
    assert_eq!(bens, json!([]));
    // Another clinic's staff cannot see it either.
    let other = app.scheduling_clinic("iso2").await;
    app.staff(&other.tenant, "desk@iso2.example", Role::FrontDesk)
        .await;
    let desk = app.api_token(&other.host, "desk@iso2.example").await;
    let (st, _) = app
        .api(
            &other.host,
            &desk,
            Method::GET,
            &format!("/v1/appointments/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 404);
    // Ana still has it, untouched.
    let (st, mine) = app
        .api(
            &s.host,
            &ana,
            Method::GET,
            &format!("/v1/appointments/{id}"),
            None,
        )
        .await;
    assert_eq!((st, mine["status"].as_str().unwrap()), (200, "booked"));
}

#[tokio::test]
async fn moving_and_cancelling_follow_the_clinics_cut_off() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("moves").await;
    app.patient(&s.tenant, "Dee", "dee@moves.example").await;
    let dee = app.api_token(&s.host, "dee@moves.example").await;
    let (_, a) = app
        .api(
            &s.host,
            &dee,
            Method::POST,
            "/v1/appointments",
            Some(book_body(&s, &s.checkup, &s.dr_a, "2026-11-05T10:00")),
        )
        .await;
    let id = a["id"].as_str().unwrap().to_owned();
    let (st, moved) = app
        .api(
            &s.host,
            &dee,
            Method::POST,
            &format!("/v1/appointments/{id}/reschedule"),
            Some(json!({"provider_id": s.dr_b, "location_id": s.location,
                        "starts_at": s.at("2026-11-06T09:00")})),
        )
        .await;
    assert_eq!(st, 200, "{moved}");
    assert_eq!(moved["id"], id.as_str(), "a move keeps the appointment");
    assert_eq!(moved["version"], 2);
    assert_eq!(moved["provider_name"], "Dr B");
    // The old time is free again.
    let (_, slots) = app
        .api(
            &s.host,
            &dee,
            Method::GET,
            &format!(
                "/v1/slots?visit_type_id={}&provider_id={}&from=2026-11-05&days=1",
                s.checkup, s.dr_a
            ),
            None,
        )
        .await;
    let freed = chrono::DateTime::parse_from_rfc3339(&s.at("2026-11-05T10:00")).unwrap();
    assert!(
        slots["slots"].as_array().unwrap().iter().any(|x| {
            chrono::DateTime::parse_from_rfc3339(x["starts_at"].as_str().unwrap()).unwrap() == freed
        }),
        "{slots}"
    );
    // Thursday 5th 10:00 → within 24 hours of Friday 9:00 the patient can no longer cancel.
    app.clock.advance(Duration::hours(3 * 24 + 2));
    let dee = app.api_token(&s.host, "dee@moves.example").await;
    let (st, body) = app
        .api(
            &s.host,
            &dee,
            Method::POST,
            &format!("/v1/appointments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        (st, body["code"].as_str().unwrap()),
        (422, "past_cutoff"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("call the clinic")
    );
    // Staff still can.
    app.staff(&s.tenant, "desk@moves.example", Role::FrontDesk)
        .await;
    let desk = app.api_token(&s.host, "desk@moves.example").await;
    let (st, done) = app
        .api(
            &s.host,
            &desk,
            Method::POST,
            &format!("/v1/appointments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!((st, done["status"].as_str().unwrap()), (200, "cancelled"));
    let (st, body) = app
        .api(
            &s.host,
            &desk,
            Method::POST,
            &format!("/v1/appointments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        (st, body["code"].as_str().unwrap()),
        (422, "not_changeable")
    );
}

#[tokio::test]
async fn staff_book_for_a_patient_check_in_and_mark_no_shows_at_the_right_time() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("desk").await;
    let eve = app.patient(&s.tenant, "Eve", "eve@desk.example").await;
    // Staff may book a staff-only visit type, and sooner than patients may.
    let start = s.at("2026-11-02T09:00");
    let resp = s
        .admin
        .post_form(
            "/staff/book",
            &[
                ("patient", &eve.to_string()),
                ("visit_type", &s.procedure),
                ("provider", &s.dr_a),
                ("location", &s.location),
                ("start", &start),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let (_, page) = s.admin.page("/staff/schedule?date=2026-11-02").await;
    assert!(
        page.contains("Eve Tester") && page.contains("Procedure"),
        "{page}"
    );
    let id = page
        .split("data-appointment=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // 08:00: no-show is refused before the start; check-in opens at 07:00, so it works.
    let resp = s
        .admin
        .post_form(
            &format!("/staff/appointments/{id}/no-show"),
            &[("date", "2026-11-02")],
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("once it has started"));
    let resp = s
        .admin
        .post_form(
            &format!("/staff/appointments/{id}/check-in"),
            &[("date", "2026-11-02")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = s.admin.page("/staff/schedule?date=2026-11-02").await;
    assert!(page.contains("Checked in"));
    let resp = s
        .admin
        .post_form(
            &format!("/staff/appointments/{id}/complete"),
            &[("date", "2026-11-02")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = s.admin.page("/staff/schedule?date=2026-11-02").await;
    assert!(page.contains("Completed"));
    // The week view holds the same day.
    let (_, week) = s
        .admin
        .page("/staff/schedule?date=2026-11-04&view=week")
        .await;
    assert!(week.contains("Week of Mon 2 Nov 2026") && week.contains("Eve Tester"));
}

async fn stamp(b: &mut portal_tests::Browser) -> Value {
    let resp = b.get("/staff/schedule/stamp").await;
    resp.json::<Value>().await.unwrap()["stamp"].clone()
}

#[tokio::test]
async fn the_schedule_stamp_moves_when_a_patient_books() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("live").await;
    app.patient(&s.tenant, "Fay", "fay@live.example").await;
    let fay = app.api_token(&s.host, "fay@live.example").await;
    let before = stamp(&mut s.admin).await;
    app.api(
        &s.host,
        &fay,
        Method::POST,
        "/v1/appointments",
        Some(book_body(&s, &s.checkup, &s.dr_a, "2026-11-03T11:00")),
    )
    .await;
    let after = stamp(&mut s.admin).await;
    assert_ne!(before, after, "the open schedule learns of the booking");
    // Patients cannot read it.
    let mut fay_browser = app.sign_in(&s.host, "fay@live.example", PASSWORD).await;
    assert_eq!(fay_browser.get("/staff/schedule/stamp").await.status(), 403);
}

#[tokio::test]
async fn confirmations_carry_a_calendar_file_and_never_the_reason() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let s = app.scheduling_clinic("post").await;
    app.patient(&s.tenant, "Gus", "gus@post.example").await;
    let gus = app.api_token(&s.host, "gus@post.example").await;
    let mut body = book_body(&s, &s.video, &s.dr_a, "2026-11-04T09:20");
    body["reason"] = json!("persistent chest pain");
    let (st, a) = app
        .api(&s.host, &gus, Method::POST, "/v1/appointments", Some(body))
        .await;
    assert_eq!(st, 201, "{a}");
    let join = a["video_url"].as_str().unwrap().to_owned();
    assert!(join.starts_with("https://meet.example/clinic/"), "{join}");
    let id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(app.jobs_settled().await, 0);
    let booked = app.email_to("gus@post.example").await;
    assert_eq!(booked.subject, "Your visit at Clinic post is booked");
    assert!(
        booked.text.contains("Wed 4 Nov 2026, 9:20 AM EST"),
        "{}",
        booked.text
    );
    assert!(booked.raw.contains("text/calendar"));
    assert!(booked.raw.contains("visit.ics"));
    assert!(
        !booked.raw.to_lowercase().contains("chest"),
        "no reason in the email"
    );
    assert!(!booked.raw.contains("Dr A"), "no provider in the email");

    let (st, _) = app
        .api(
            &s.host,
            &gus,
            Method::POST,
            &format!("/v1/appointments/{id}/reschedule"),
            Some(json!({"provider_id": s.dr_a, "location_id": s.location,
                        "starts_at": s.at("2026-11-05T09:40")})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(app.jobs_settled().await, 0);
    let (st, _) = app
        .api(
            &s.host,
            &gus,
            Method::POST,
            &format!("/v1/appointments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(app.jobs_settled().await, 0);
    let all: Vec<_> = read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.to == "gus@post.example")
        .collect();
    let subjects: Vec<_> = all.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "Your visit at Clinic post is booked",
            "Your visit at Clinic post has moved",
            "Your visit at Clinic post is cancelled"
        ]
    );
    // The calendar file (base64 in the raw message) decoded by the parser.
    let ics = |raw: &str| -> String {
        let m = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let att = m.attachments().next().expect("an attachment");
        // Long lines are folded (CRLF + space); unfold to read them.
        String::from_utf8(att.contents().to_vec())
            .unwrap()
            .replace("\r\n ", "")
    };
    let first = ics(&all[0].raw);
    assert!(first.contains("DTSTART:20261104T142000Z"), "{first}");
    assert!(first.contains(&format!("UID:{id}@post")));
    assert!(
        first.contains(&join),
        "the join link is in the calendar file"
    );
    let second = ics(&all[1].raw);
    assert!(
        second.contains("DTSTART:20261105T144000Z") && second.contains("SEQUENCE:2"),
        "{second}"
    );
    let third = ics(&all[2].raw);
    assert!(
        third.contains("METHOD:CANCEL") && third.contains("STATUS:CANCELLED"),
        "{third}"
    );
    assert!(all.iter().all(|e| !e.raw.to_lowercase().contains("chest")));
}

#[tokio::test]
async fn a_video_visit_shows_its_join_link_and_an_in_person_one_does_not() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("video").await;
    app.patient(&s.tenant, "Hal", "hal@video.example").await;
    let hal = app.api_token(&s.host, "hal@video.example").await;
    let (_, v) = app
        .api(
            &s.host,
            &hal,
            Method::POST,
            "/v1/appointments",
            Some(book_body(&s, &s.video, &s.dr_a, "2026-11-04T09:00")),
        )
        .await;
    let (_, p) = app
        .api(
            &s.host,
            &hal,
            Method::POST,
            "/v1/appointments",
            Some(book_body(&s, &s.checkup, &s.dr_b, "2026-11-04T09:00")),
        )
        .await;
    let mut b = app.sign_in(&s.host, "hal@video.example", PASSWORD).await;
    let (_, video) = b
        .page(&format!("/appointments/{}", v["id"].as_str().unwrap()))
        .await;
    assert!(video.contains("Join the video visit"));
    assert!(video.contains(v["video_url"].as_str().unwrap()));
    let (_, person) = b
        .page(&format!("/appointments/{}", p["id"].as_str().unwrap()))
        .await;
    assert!(!person.contains("Join the video visit"));
    assert!(person.contains("Main Street"));
    let ics = b
        .get(&format!(
            "/appointments/{}/calendar.ics",
            p["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        ics.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let text = ics.text().await.unwrap();
    assert!(text.contains("LOCATION:Main Street\\, 1 Main St"), "{text}");
}

#[tokio::test]
async fn the_openapi_spec_documents_the_appointment_endpoints() {
    let app = TestApp::spawn().await;
    app.clinic("spec").await;
    let spec: Value = app
        .get(&app.host("spec"), "/api/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/booking-options",
        "/v1/slots",
        "/v1/appointments",
        "/v1/appointments/{id}",
        "/v1/appointments/{id}/reschedule",
        "/v1/appointments/{id}/cancel",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(
        spec["paths"]["/v1/appointments"]["post"]["responses"]
            .get("409")
            .is_some()
    );
}

/// Issue 9.13: a patient may move only a visit they could have booked themself; staff may
/// move any.
#[tokio::test]
async fn a_patient_cannot_move_a_staff_only_visit_but_staff_can() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("staffonly").await;
    let flo = app.patient(&s.tenant, "Flo", "flo@staffonly.example").await;
    let start = s.at("2026-11-05T09:00");
    let resp = s
        .admin
        .post_form(
            "/staff/book",
            &[
                ("patient", &flo.to_string()),
                ("visit_type", &s.procedure),
                ("provider", &s.dr_a),
                ("location", &s.location),
                ("start", &start),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let token = app.api_token(&s.host, "flo@staffonly.example").await;
    let (_, list) = app
        .api(&s.host, &token, Method::GET, "/v1/appointments", None)
        .await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let to = json!({"provider_id": s.dr_a, "location_id": s.location,
                    "starts_at": s.at("2026-11-06T09:00")});
    let (st, body) = app
        .api(
            &s.host,
            &token,
            Method::POST,
            &format!("/v1/appointments/{id}/reschedule"),
            Some(to.clone()),
        )
        .await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["code"], "not_self_bookable");
    let admin = app.api_token(&s.host, "admin@staffonly.example").await;
    let (st, body) = app
        .api(
            &s.host,
            &admin,
            Method::POST,
            &format!("/v1/appointments/{id}/reschedule"),
            Some(to),
        )
        .await;
    assert_eq!(st, 200, "{body}");
}

/// Issue 9.11: a list read is audited once per patient it shows, so the patient's own access
/// report says a member of staff had their name on the schedule.
#[tokio::test]
async fn the_schedule_audits_each_patient_it_shows() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("listaudit").await;
    for (name, at) in [("Gil", "2026-11-03T09:00"), ("Hal", "2026-11-03T09:30")] {
        let email = format!("{}@listaudit.example", name.to_lowercase());
        app.patient(&s.tenant, name, &email).await;
        let token = app.api_token(&s.host, &email).await;
        let (st, _) = app
            .api(
                &s.host,
                &token,
                Method::POST,
                "/v1/appointments",
                Some(book_body(&s, &s.checkup, &s.dr_a, at)),
            )
            .await;
        assert_eq!(st, 201);
    }
    let (st, _) = s.admin.page("/staff/schedule?date=2026-11-03").await;
    assert_eq!(st, 200);
    let rows = count(
        &app,
        &s,
        "SELECT count(*) FROM {schema}.audit_log WHERE action = 'schedule.view' AND patient_id IS NOT NULL",
    )
    .await;
    assert_eq!(rows, 2, "one row per patient shown");
    let mut gil = app
        .sign_in(&s.host, "gil@listaudit.example", PASSWORD)
        .await;
    let (_, report) = gil.page("/account/access").await;
    assert!(report.contains("Viewed the schedule"), "{report}");
    assert!(!report.contains("Hal"), "never another patient: {report}");
}
