//! Appointment reminders through the real pipeline: delayed jobs wait in PostgreSQL, the relay
//! releases them when the (test's) clock reaches them, emails go to the mail directory and
//! texts to a local Twilio-compatible fake. Moving the clock runs days in milliseconds.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use portal_domain::ids::PatientId;
use portal_tests::scheduling::Sched;
use portal_tests::twilio_fake::{TOKEN, TwilioFake};
use portal_tests::{TestApp, read_emails};
use reqwest::Method;
use serde_json::json;

async fn app_with_sms() -> (TestApp, TwilioFake) {
    let fake = TwilioFake::start().await;
    let env: HashMap<&str, String> = fake.env().into_iter().collect();
    (TestApp::spawn_with_workers(env).await, fake)
}

/// Sets a confirmed mobile number, as staff entering it would.
async fn set_phone(app: &TestApp, s: &Sched, patient: PatientId, phone: &str) {
    let sql = format!(
        "UPDATE \"{}\".patients SET phone = $1, phone_verified_at = now() WHERE id = $2",
        s.tenant.schema_name()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(phone)
        .bind(patient.as_uuid())
        .execute(&app.db.admin)
        .await
        .unwrap();
}

async fn book(app: &TestApp, s: &Sched, token: &str, local: &str) -> String {
    let (st, a) = app
        .api(
            &s.host,
            token,
            Method::POST,
            "/v1/appointments",
            Some(json!({"visit_type_id": s.checkup, "provider_id": s.dr_a,
                        "location_id": s.location, "starts_at": s.at(local),
                        "reason": "private matter"})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    a["id"].as_str().unwrap().to_owned()
}

fn reminder_emails(app: &TestApp, to: &str) -> Vec<portal_tests::Email> {
    read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.to == to && e.subject.starts_with("Reminder"))
        .collect()
}

/// Moves the clock to `at` and lets every job that is due by then run.
async fn run_until(app: &TestApp, at: DateTime<Utc>) {
    app.clock.set(at);
    // The relay polls for delayed jobs every second; wait for it to pick them up.
    for _ in 0..200 {
        let due: i64 =
            sqlx::query_scalar("SELECT count(*) FROM control.outbox WHERE not_before <= $1")
                .bind(at)
                .fetch_one(&app.db.admin)
                .await
                .unwrap();
        if due == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(app.jobs_settled().await, 0, "no job died");
}

fn ny(local: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").unwrap();
    (naive + Duration::hours(5)).and_utc()
}

#[tokio::test]
async fn reminders_go_out_by_email_and_sms_at_the_visits_local_time_once_each() {
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("remind").await;
    let ana = app.patient(&s.tenant, "Ana", "ana@remind.example").await;
    set_phone(&app, &s, ana, "+15550101001").await;
    let token = app.api_token(&s.host, "ana@remind.example").await;
    // Thursday 5 Nov 9:30: reminders Monday 9:30 (72 h) and Wednesday 9:30 (24 h).
    book(&app, &s, &token, "2026-11-05T09:30").await;
    assert_eq!(app.jobs_settled().await, 0);
    assert!(reminder_emails(&app, "ana@remind.example").is_empty());
    assert!(sms.messages().is_empty(), "nothing before it is due");

    run_until(&app, ny("2026-11-02T09:29")).await;
    assert!(sms.messages().is_empty(), "not a minute early");
    run_until(&app, ny("2026-11-02T09:30")).await;
    let emails = reminder_emails(&app, "ana@remind.example");
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].subject, "Reminder: your visit at Clinic remind");
    assert!(
        emails[0].text.contains("Thu 5 Nov 2026, 9:30 AM EST"),
        "{}",
        emails[0].text
    );
    let texts = sms.messages();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].to, "+15550101001");
    assert_eq!(
        texts[0].body,
        "Clinic remind: reminder of your visit on Thu 5 Nov 2026, 9:30 AM EST. Reply C to confirm. Reply STOP to opt out."
    );

    run_until(&app, ny("2026-11-04T09:30")).await;
    run_until(&app, ny("2026-11-06T12:00")).await;
    assert_eq!(reminder_emails(&app, "ana@remind.example").len(), 2);
    assert_eq!(sms.messages().len(), 2);
    let everything: String = read_emails(&app.mail_dir)
        .iter()
        .map(|e| e.raw.clone())
        .chain(sms.messages().iter().map(|m| m.body.clone()))
        .collect();
    assert!(!everything.contains("private matter"), "no reason anywhere");
    assert!(!everything.contains("Dr A"), "no provider anywhere");
}

#[tokio::test]
async fn cancelled_and_moved_visits_get_no_stale_reminders() {
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("stale").await;
    let ben = app.patient(&s.tenant, "Ben", "ben@stale.example").await;
    set_phone(&app, &s, ben, "+15550101002").await;
    let token = app.api_token(&s.host, "ben@stale.example").await;
    let cancelled = book(&app, &s, &token, "2026-11-05T09:30").await;
    let moved = book(&app, &s, &token, "2026-11-05T10:00").await;
    let (st, _) = app
        .api(
            &s.host,
            &token,
            Method::POST,
            &format!("/v1/appointments/{cancelled}/cancel"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = app
        .api(
            &s.host,
            &token,
            Method::POST,
            &format!("/v1/appointments/{moved}/reschedule"),
            Some(json!({"provider_id": s.dr_a, "location_id": s.location,
                        "starts_at": s.at("2026-11-06T11:00")})),
        )
        .await;
    assert_eq!(st, 200);
    // Past every reminder of the old times and of the new one.
    run_until(&app, ny("2026-11-02T12:00")).await;
    run_until(&app, ny("2026-11-03T12:00")).await;
    run_until(&app, ny("2026-11-04T12:00")).await;
    run_until(&app, ny("2026-11-05T12:00")).await;
    let emails = reminder_emails(&app, "ben@stale.example");
    let texts = sms.messages();
    assert_eq!(
        emails.len(),
        2,
        "only the moved visit's 72 h and 24 h reminders"
    );
    assert_eq!(texts.len(), 2);
    for e in &emails {
        assert!(
            e.text.contains("Fri 6 Nov 2026, 11:00 AM EST"),
            "{}",
            e.text
        );
    }
    for t in &texts {
        assert!(
            t.body.contains("Fri 6 Nov 2026, 11:00 AM EST"),
            "{}",
            t.body
        );
    }
}

#[tokio::test]
async fn a_failing_sms_provider_is_retried_never_texts_twice_and_ends_dead_and_visible() {
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("flaky").await;
    let cy = app.patient(&s.tenant, "Cy", "cy@flaky.example").await;
    set_phone(&app, &s, cy, "+15550101003").await;
    let token = app.api_token(&s.host, "cy@flaky.example").await;
    book(&app, &s, &token, "2026-11-05T09:30").await;
    app.jobs_settled().await;

    // The first reminder: the provider sends it but its reply is lost, then errors once more.
    sms.lose_replies(1);
    sms.fail_next(0);
    run_until(&app, ny("2026-11-02T09:30")).await;
    assert_eq!(sms.messages().len(), 1, "one text, despite the retry");
    assert!(sms.calls() >= 2, "the lost reply was retried");

    // The second: the provider is down for good; the job dies after its attempts (3 in tests).
    sms.fail_next(100);
    app.clock.set(ny("2026-11-04T09:30"));
    let dead = loop {
        let d = app.jobs_settled().await;
        if d > 0 {
            break d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(dead, 1);
    assert_eq!(sms.messages().len(), 1);
    let (kind, error): (String, String) =
        sqlx::query_as("SELECT kind, last_error FROM control.job_deliveries WHERE status = 'dead'")
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
    assert_eq!(
        (kind.as_str(), error.as_str()),
        ("reminder.appointment", "sms provider 500")
    );
    // The email reminder of the same time went out regardless.
    assert_eq!(reminder_emails(&app, "cy@flaky.example").len(), 2);

    // Staff see the text that never went out, with whom and which visit it was for.
    app.staff(
        &s.tenant,
        "desk@flaky.example",
        portal_domain::identity::Role::FrontDesk,
    )
    .await;
    let desk = app.api_token(&s.host, "desk@flaky.example").await;
    let (st, list) = app
        .api(
            &s.host,
            &desk,
            Method::GET,
            "/v1/undelivered-messages",
            None,
        )
        .await;
    assert_eq!(st, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["what"], "Reminder 24 h before, by text");
    assert_eq!(list[0]["who"], "Cy Tester");
    assert_eq!(list[0]["patient_id"], cy.to_string());
    assert_eq!(
        DateTime::parse_from_rfc3339(list[0]["visit_at"].as_str().unwrap()).unwrap(),
        ny("2026-11-05T09:30")
    );
    assert_eq!(list[0]["reason"], "sms provider 500");
    // The schedule page points at it.
    let mut browser = app
        .sign_in(&s.host, "desk@flaky.example", portal_tests::PASSWORD)
        .await;
    let (_, page) = browser.page("/staff/schedule").await;
    assert!(
        page.contains("1 message to patients could not be sent"),
        "{page}"
    );
    let (st, page) = browser.page("/staff/undelivered").await;
    assert_eq!(st, 200);
    assert!(page.contains("Cy Tester") && page.contains("Reminder 24 h before, by text"));

    // Nobody else sees it: not the patient, not another clinic's staff.
    let (st, _) = app
        .api(
            &s.host,
            &token,
            Method::GET,
            "/v1/undelivered-messages",
            None,
        )
        .await;
    assert_eq!(st, 401);
    let other = app.scheduling_clinic("steady").await;
    app.staff(
        &other.tenant,
        "desk@steady.example",
        portal_domain::identity::Role::FrontDesk,
    )
    .await;
    let theirs = app.api_token(&other.host, "desk@steady.example").await;
    let (st, list) = app
        .api(
            &other.host,
            &theirs,
            Method::GET,
            "/v1/undelivered-messages",
            None,
        )
        .await;
    assert_eq!((st, list), (200, json!([])));
}

async fn put_prefs(
    app: &TestApp,
    s: &Sched,
    token: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    app.api(
        &s.host,
        token,
        Method::PUT,
        "/v1/me/reminder-preferences",
        Some(body),
    )
    .await
}

#[tokio::test]
async fn patients_choose_their_channels_and_can_undo_a_stop() {
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("prefs").await;
    app.patient(&s.tenant, "Fay", "fay@prefs.example").await;
    let token = app.api_token(&s.host, "fay@prefs.example").await;
    let (st, p) = put_prefs(&app, &s, &token, json!({"email": true, "sms": true})).await;
    assert_eq!((st, p["code"].as_str()), (422, Some("sms_needs_phone")));
    let (st, p) = put_prefs(
        &app,
        &s,
        &token,
        json!({"email": true, "sms": true, "phone": "call me"}),
    )
    .await;
    assert_eq!((st, p["code"].as_str()), (422, Some("invalid_phone")));
    let (st, p) = put_prefs(
        &app,
        &s,
        &token,
        json!({"email": false, "sms": true, "phone": "(555) 010-1006"}),
    )
    .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["phone"], "+15550101006");
    assert_eq!(
        (p["email"].as_bool(), p["sms"].as_bool()),
        (Some(false), Some(true))
    );
    // A number the patient typed gets texts only once confirmed: a code is texted to it.
    assert_eq!(p["phone_verified"], false);
    assert_eq!(app.jobs_settled().await, 0);
    let code_text = sms.messages().pop().expect("a code by text");
    assert_eq!(code_text.to, "+15550101006");
    let code: String = code_text
        .body
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect();
    let (st, body) = app
        .api(
            &s.host,
            &token,
            Method::POST,
            "/v1/me/phone-verification",
            Some(json!({"code": "000000"})),
        )
        .await;
    assert!(st == 422 || code == "000000", "{body}");
    let (st, _) = app
        .api(
            &s.host,
            &token,
            Method::POST,
            "/v1/me/phone-verification",
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(st, 204);

    // Texts only.
    book(&app, &s, &token, "2026-11-05T09:30").await;
    run_until(&app, ny("2026-11-02T09:30")).await;
    assert_eq!(sms.messages().len(), 2, "the code, then the reminder");
    assert_eq!(sms.messages()[1].to, "+15550101006");
    assert!(
        reminder_emails(&app, "fay@prefs.example").is_empty(),
        "email is off"
    );

    // STOP, then the patient turns texts back on in the portal: they resume. (Days passed on
    // the test clock, so the patient signs in again.)
    let (st, _) = webhook(&app, &s, "+15550101006", "STOP", true).await;
    assert_eq!(st, 200);
    let token = app.api_token(&s.host, "fay@prefs.example").await;
    let (st, p) = app
        .api(
            &s.host,
            &token,
            Method::GET,
            "/v1/me/reminder-preferences",
            None,
        )
        .await;
    assert_eq!((st, p["sms_opted_out"].as_bool()), (200, Some(true)));
    // Someone else typing Fay's number, unconfirmed, cannot lift her STOP.
    app.patient(&s.tenant, "Gus", "gus@prefs.example").await;
    let gus = app.api_token(&s.host, "gus@prefs.example").await;
    let (st, g) = put_prefs(
        &app,
        &s,
        &gus,
        json!({"email": false, "sms": true, "phone": "+15550101006"}),
    )
    .await;
    assert_eq!((st, g["phone_verified"].as_bool()), (200, Some(false)));
    assert_eq!(g["sms_opted_out"], true, "still stopped: {g}");
    // The code for Gus's claim goes nowhere either: the number said STOP.
    let texts = sms.messages().len();
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(sms.messages().len(), texts);
    let (st, p) = put_prefs(
        &app,
        &s,
        &token,
        json!({"email": true, "sms": true, "phone": "+15550101006"}),
    )
    .await;
    assert_eq!((st, p["sms_opted_out"].as_bool()), (200, Some(false)));
    run_until(&app, ny("2026-11-04T09:30")).await;
    assert_eq!(sms.messages().len(), 3);
    assert_eq!(reminder_emails(&app, "fay@prefs.example").len(), 1);

    // The same choices on the web page, with the same checks.
    let mut fay = app
        .sign_in(&s.host, "fay@prefs.example", portal_tests::PASSWORD)
        .await;
    let (st, page) = fay.page("/account/reminders").await;
    assert_eq!(st, 200);
    assert!(page.contains("value=\"+15550101006\""), "{page}");
    let resp = fay
        .post_form("/account/reminders", &[("sms", "on"), ("phone", "+12")])
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("complete phone number"));

    // Each of Fay's saved changes is audited.
    let audited: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{0}\".audit_log WHERE action = 'reminder_preferences.update'
           AND patient_id = (SELECT id FROM \"{0}\".patients WHERE email = 'fay@prefs.example')",
        s.tenant.schema_name()
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(audited, 2, "two saved changes (refused ones wrote nothing)");
}

#[tokio::test]
async fn the_clinic_sets_its_own_reminder_schedule() {
    let (app, sms) = app_with_sms().await;
    let mut s = app.scheduling_clinic("sched").await;
    let gus = app.patient(&s.tenant, "Gus", "gus@sched.example").await;
    set_phone(&app, &s, gus, "+15550101007").await;
    for (hours, problem) in [
        ("72, soon", "whole numbers of hours"),
        ("800", "whole numbers of hours"),
        ("1, 2, 3, 4, 5", "At most four"),
        ("", "at least one reminder time"),
    ] {
        let resp = s
            .admin
            .post_form(
                "/admin/scheduling/reminders",
                &[("hours", hours), ("email", "1"), ("sms", "1")],
            )
            .await;
        assert_eq!(resp.status(), 422, "{hours}");
        assert!(resp.text().await.unwrap().contains(problem), "{hours}");
    }
    // One reminder, 48 hours before, by text only.
    let resp = s
        .admin
        .post_form(
            "/admin/scheduling/reminders",
            &[("hours", "48"), ("sms", "1")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = s.admin.page("/admin/scheduling").await;
    assert!(
        page.contains("value=\"48\""),
        "the form shows what is stored"
    );

    let token = app.api_token(&s.host, "gus@sched.example").await;
    book(&app, &s, &token, "2026-11-05T09:30").await;
    run_until(&app, ny("2026-11-03T09:29")).await;
    assert!(sms.messages().is_empty());
    run_until(&app, ny("2026-11-05T09:00")).await;
    assert_eq!(sms.messages().len(), 1, "one text, 48 hours before");
    assert!(
        reminder_emails(&app, "gus@sched.example").is_empty(),
        "email off"
    );
}

/// A reply as the provider delivers it: to the platform's one webhook URL, naming the number
/// it was sent to (`To`).
async fn webhook_to(app: &TestApp, to: &str, from: &str, body: &str, sign: bool) -> (u16, String) {
    let fields = vec![
        ("From".to_owned(), from.to_owned()),
        ("To".to_owned(), to.to_owned()),
        ("Body".to_owned(), body.to_owned()),
        ("MessageSid".to_owned(), "SMinbound".to_owned()),
    ];
    let base = app.db.config.base_domain.clone();
    // The public URL the provider calls (and signs), as the product builds its links.
    let url = format!("https://{base}/webhooks/sms");
    let signature = if sign {
        portal_web::sms_signature(TOKEN, &url, &fields)
    } else {
        "bm90IGEgc2lnbmF0dXJl".to_owned()
    };
    let resp = app
        .client
        .post(format!("http://{}/webhooks/sms", app.addr))
        .header("host", base)
        .header("x-twilio-signature", signature)
        .form(&fields)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A reply to the platform's shared number.
async fn webhook(app: &TestApp, _s: &Sched, from: &str, body: &str, sign: bool) -> (u16, String) {
    webhook_to(app, portal_tests::twilio_fake::FROM, from, body, sign).await
}

#[tokio::test]
async fn stop_and_confirm_replies_are_honoured_and_unsigned_ones_refused() {
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("reply").await;
    // This clinic texts from its own number; replies to it are the clinic's.
    const OWN: &str = "+15557770001";
    app.db
        .provisioner()
        .set_sms_number(&portal_tenants::Slug::parse("reply").unwrap(), Some(OWN))
        .await
        .unwrap();
    let dee = app.patient(&s.tenant, "Dee", "dee@reply.example").await;
    set_phone(&app, &s, dee, "+15550101004").await;
    let token = app.api_token(&s.host, "dee@reply.example").await;
    let id = book(&app, &s, &token, "2026-11-05T09:30").await;

    let (st, _) = webhook_to(&app, OWN, "+15550101004", "STOP", false).await;
    assert_eq!(st, 403, "a forged webhook call is refused");
    let (st, answer) = webhook_to(&app, OWN, "+15550101004", "c", true).await;
    assert_eq!(st, 200);
    assert!(
        answer.contains("Thu 5 Nov 2026, 9:30 AM EST is confirmed"),
        "{answer}"
    );
    let (st, answer) = webhook_to(&app, OWN, "+15559999999", "C", true).await;
    assert_eq!(st, 200);
    assert!(
        answer.contains("reply C to confirm"),
        "an unknown number learns nothing: {answer}"
    );

    run_until(&app, ny("2026-11-02T09:30")).await;
    assert_eq!(sms.messages().len(), 1);
    assert!(
        !sms.messages()[0].body.contains("Reply C"),
        "a confirmed visit is not asked to confirm again"
    );
    let (st, answer) = webhook_to(&app, OWN, "+15550101004", " Stop ", true).await;
    assert_eq!(st, 200);
    assert!(answer.contains("no more texts"), "{answer}");
    run_until(&app, ny("2026-11-04T09:30")).await;
    assert_eq!(sms.messages().len(), 1, "no text after STOP");
    assert_eq!(
        reminder_emails(&app, "dee@reply.example").len(),
        2,
        "email still on"
    );

    // Staff see the confirmation.
    app.staff(
        &s.tenant,
        "desk@reply.example",
        portal_domain::identity::Role::FrontDesk,
    )
    .await;
    let desk = app.api_token(&s.host, "desk@reply.example").await;
    let (st, a) = app
        .api(
            &s.host,
            &desk,
            Method::GET,
            &format!("/v1/appointments/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(a["confirmed_at"].is_string(), "{a}");
}

/// Deletes every Redis key of this test's deployment, as a Redis restarted without its data.
async fn flush_redis(app: &TestApp) {
    let client = redis::Client::open(portal_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.db.config.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn redis_losing_its_data_or_a_worker_dying_mid_job_loses_no_reminder() {
    let fake = TwilioFake::start().await;
    let mut env: HashMap<&str, String> = fake.env().into_iter().collect();
    env.insert("PORTAL_JOB_RECONCILE_AFTER_MS", "300".into());
    let app = TestApp::spawn_with_workers(env).await;
    let s = app.scheduling_clinic("lost").await;
    let eve = app.patient(&s.tenant, "Eve", "eve@lost.example").await;
    set_phone(&app, &s, eve, "+15550101005").await;
    let token = app.api_token(&s.host, "eve@lost.example").await;
    book(&app, &s, &token, "2026-11-05T09:30").await;
    assert_eq!(app.jobs_settled().await, 0);

    // Redis forgets everything before any reminder is due: they wait in PostgreSQL anyway.
    flush_redis(&app).await;
    run_until(&app, ny("2026-11-02T09:30")).await;
    assert_eq!(reminder_emails(&app, "eve@lost.example").len(), 1);
    assert_eq!(fake.messages().len(), 1);

    // The 24-hour reminders had been handed over when things went wrong: the email's worker
    // died mid-job (running, no sign of life for a day), the text was lost with Redis (queued).
    sqlx::query(
        "WITH moved AS (DELETE FROM control.outbox WHERE kind = 'reminder.appointment'
                        RETURNING id, kind, version, tenant_id, payload)
         INSERT INTO control.job_deliveries
             (job_id, kind, version, tenant_id, payload, status, worker, updated_at)
         SELECT id, kind, version, tenant_id, payload,
                CASE WHEN payload->>'channel' = 'email' THEN 'running' ELSE 'queued' END,
                'a-killed-worker', now() - interval '1 day'
         FROM moved",
    )
    .execute(&app.db.admin)
    .await
    .unwrap();
    flush_redis(&app).await;
    app.clock.set(ny("2026-11-04T09:30"));
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(reminder_emails(&app, "eve@lost.example").len(), 2);
    assert_eq!(fake.messages().len(), 2);
    // Every reminder is finished in the log, so the reconciler will never send one again.
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM control.job_deliveries
         WHERE kind = 'reminder.appointment' AND status <> 'done'",
    )
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(open, 0);
}

/// Issue 9.9: a suspended clinic sends nothing — its jobs are held, visible to the operator —
/// yet a patient's STOP is still honoured; when it reopens, the held work goes out.
#[tokio::test]
async fn a_suspended_clinic_sends_nothing_holds_its_jobs_and_still_honours_stop() {
    use portal_tenants::{Slug, TenantStatus};
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("paused").await;
    let eve = app.patient(&s.tenant, "Eve", "eve@paused.example").await;
    set_phone(&app, &s, eve, "+15550101009").await;
    let token = app.api_token(&s.host, "eve@paused.example").await;
    book(&app, &s, &token, "2026-11-05T09:30").await;
    assert_eq!(app.jobs_settled().await, 0);
    let slug = Slug::parse("paused").unwrap();
    app.db
        .provisioner()
        .set_status(&slug, TenantStatus::Suspended)
        .await
        .unwrap();
    run_until(&app, ny("2026-11-02T09:31")).await;
    assert!(sms.messages().is_empty(), "no text while suspended");
    assert!(reminder_emails(&app, "eve@paused.example").is_empty());
    let held = portal_workers::dead::held(&app.db.admin).await.unwrap();
    assert_eq!(held.len(), 2, "the 72-hour email and text wait: {held:?}");
    assert!(held.iter().all(|h| h.tenant == "paused"));
    assert_eq!(
        app.get(&s.host, "/").await.status(),
        503,
        "the site shows nothing"
    );
    let (st, answer) = webhook(&app, &s, "+15550101009", "STOP", true).await;
    assert_eq!(st, 200);
    assert!(answer.contains("no more texts"), "{answer}");

    app.db
        .provisioner()
        .set_status(&slug, TenantStatus::Active)
        .await
        .unwrap();
    for _ in 0..200 {
        if portal_workers::dead::held(&app.db.admin)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(
        reminder_emails(&app, "eve@paused.example").len(),
        1,
        "the held email reminder went out once the clinic reopened"
    );
    assert!(
        sms.messages().is_empty(),
        "but no text: the patient said STOP"
    );
}

/// Issue 9.10: an offer goes by email and by text as separate jobs, so an email that keeps
/// failing never sends the text again; and a text that would go out at night waits for 08:00.
#[tokio::test]
async fn an_offer_text_goes_once_though_its_email_fails_and_waits_out_the_night() {
    let fake = TwilioFake::start().await;
    let mut sink = portal_tests::SmtpSink::start().await;
    let mut env: HashMap<&str, String> = fake.env().into_iter().collect();
    env.insert("PORTAL_SMTP_URL", sink.url());
    let app = TestApp::spawn_with_workers(env).await;
    let s = app.scheduling_clinic("night").await;
    let ann = app.patient(&s.tenant, "Ann", "ann@night.example").await;
    set_phone(&app, &s, ann, "+15550101077").await;
    app.patient(&s.tenant, "Bo", "bo@night.example").await;
    let ann_token = app.api_token(&s.host, "ann@night.example").await;
    let bo_token = app.api_token(&s.host, "bo@night.example").await;
    let ann_visit = book(&app, &s, &ann_token, "2026-11-06T09:00").await;
    let bo_visit = book(&app, &s, &bo_token, "2026-11-04T10:00").await;
    let (st, _) = app
        .api(
            &s.host,
            &ann_token,
            Method::POST,
            &format!("/v1/appointments/{ann_visit}/waitlist"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(app.jobs_settled().await, 0);

    // 22:00 in New York, and the mail server refuses everything.
    app.clock.set(ny("2026-11-02T22:00"));
    sink.stop();
    // (Signed in again: the morning's session timed out.)
    let bo_token = app.api_token(&s.host, "bo@night.example").await;
    let (st, _) = app
        .api(
            &s.host,
            &bo_token,
            Method::POST,
            &format!("/v1/appointments/{bo_visit}/cancel"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let dead = app.jobs_settled().await;
    assert_eq!(
        dead, 2,
        "Bo's cancellation notice and Ann's offer email die"
    );
    let offer_texts = || {
        fake.messages()
            .into_iter()
            .filter(|m| m.body.contains("earlier time"))
            .count()
    };
    assert_eq!(offer_texts(), 0, "no text at 22:00");
    app.clock.set(ny("2026-11-03T08:00"));
    for _ in 0..200 {
        if offer_texts() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.jobs_settled().await, 2, "nothing else died");
    assert_eq!(offer_texts(), 1, "the text went at 08:00, once");
    assert_eq!(fake.messages()[0].to, "+15550101077");
}

/// Books a check-up for a new patient of `s` with a confirmed `phone`; returns the visit.
async fn patient_with_phone(app: &TestApp, s: &Sched, name: &str, phone: &str, at: &str) -> String {
    let slug = s.host.split('.').next().unwrap().to_owned();
    let email = format!("{}@{slug}.example", name.to_lowercase());
    let id = app.patient(&s.tenant, name, &email).await;
    set_phone(app, s, id, phone).await;
    let token = app.api_token(&s.host, &email).await;
    book(app, s, &token, at).await
}

/// Issue 9.8: each clinic texts from its own number or the shared one; a reply to the shared
/// number goes to the clinic that last texted the phone; STOP to the shared number silences
/// every clinic that uses it, and no other.
#[tokio::test]
async fn texts_come_from_each_clinics_number_and_a_stop_to_the_shared_one_silences_its_clinics() {
    use portal_tests::twilio_fake::FROM;
    const PHONE: &str = "+15550102000";
    const OWN: &str = "+15557770003";
    let (app, sms) = app_with_sms().await;
    let alpha = app.scheduling_clinic("alpha").await;
    let bravo = app.scheduling_clinic("bravo").await;
    let charlie = app.scheduling_clinic("charlie").await;
    app.db
        .provisioner()
        .set_sms_number(&portal_tenants::Slug::parse("charlie").unwrap(), Some(OWN))
        .await
        .unwrap();
    patient_with_phone(&app, &alpha, "Pat", PHONE, "2026-11-05T09:30").await;
    let bravo_visit = patient_with_phone(&app, &bravo, "Pat", PHONE, "2026-11-05T10:30").await;
    patient_with_phone(&app, &charlie, "Pat", PHONE, "2026-11-05T11:00").await;

    // 72 hours before: Alpha first, then Bravo, then Charlie.
    run_until(&app, ny("2026-11-02T09:31")).await;
    run_until(&app, ny("2026-11-02T10:31")).await;
    run_until(&app, ny("2026-11-02T11:01")).await;
    let from_of = |clinic: &str| -> Vec<String> {
        sms.messages()
            .into_iter()
            .filter(|m| m.body.starts_with(&format!("Clinic {clinic}:")))
            .map(|m| m.from)
            .collect()
    };
    assert_eq!(from_of("alpha"), [FROM]);
    assert_eq!(from_of("bravo"), [FROM]);
    assert_eq!(from_of("charlie"), [OWN], "a clinic's own number");

    // "C" to the shared number: Bravo texted last from it, so it is Bravo's visit.
    let (st, answer) = webhook_to(&app, FROM, PHONE, "C", true).await;
    assert_eq!(st, 200);
    assert!(answer.contains("Clinic bravo: thank you"), "{answer}");
    let desk = app.api_token(&bravo.host, "admin@bravo.example").await;
    let (_, v) = app
        .api(
            &bravo.host,
            &desk,
            Method::GET,
            &format!("/v1/appointments/{bravo_visit}"),
            None,
        )
        .await;
    assert!(v["confirmed_at"].is_string(), "{v}");

    // STOP to the shared number: Alpha and Bravo go quiet; Charlie, on its own number, not.
    let (st, _) = webhook_to(&app, FROM, PHONE, "STOP", true).await;
    assert_eq!(st, 200);
    let before = sms.messages().len();
    run_until(&app, ny("2026-11-04T11:01")).await;
    let after: Vec<_> = sms.messages().into_iter().skip(before).collect();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].from, OWN);
}

/// Issue 9.8: CONFIRM from a number two patients share confirms nothing and answers with a
/// link; a phone gets at most ten texts a day.
#[tokio::test]
async fn a_shared_family_phone_confirms_nothing_and_texts_stop_at_the_daily_limit() {
    const PHONE: &str = "+15550103000";
    const OWN: &str = "+15557770004";
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("family").await;
    app.db
        .provisioner()
        .set_sms_number(&portal_tenants::Slug::parse("family").unwrap(), Some(OWN))
        .await
        .unwrap();
    let mum = patient_with_phone(&app, &s, "Mum", PHONE, "2026-11-05T09:30").await;
    patient_with_phone(&app, &s, "Kid", PHONE, "2026-11-05T10:00").await;
    let (st, answer) = webhook_to(&app, OWN, PHONE, "CONFIRM", true).await;
    assert_eq!(st, 200);
    assert!(
        answer.contains("more than one person uses this number"),
        "{answer}"
    );
    assert!(answer.contains("/appointments"), "{answer}");
    let admin = app.api_token(&s.host, "admin@family.example").await;
    let (_, v) = app
        .api(
            &s.host,
            &admin,
            Method::GET,
            &format!("/v1/appointments/{mum}"),
            None,
        )
        .await;
    assert!(v["confirmed_at"].is_null(), "nothing confirmed: {v}");

    // Ten texts already today: the reminders due now are not sent.
    sqlx::query("INSERT INTO control.sms_daily (phone, day, sent) VALUES ($1, $2, 10)")
        .bind(PHONE)
        .bind(ny("2026-11-02T09:31").date_naive())
        .execute(&app.db.admin)
        .await
        .unwrap();
    run_until(&app, ny("2026-11-02T10:01")).await;
    assert!(sms.messages().is_empty(), "{:?}", sms.messages());
}

/// Issue 9.8: confirming a number gives a clear error for a wrong code and, after five, asks
/// for a new one; new codes are limited to three an hour; the page offers the same.
#[tokio::test]
async fn confirming_a_number_refuses_wrong_codes_and_limits_new_ones() {
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("confirm").await;
    app.patient(&s.tenant, "Lee", "lee@confirm.example").await;
    let token = app.api_token(&s.host, "lee@confirm.example").await;
    let verify = |code: &str| {
        app.api(
            &s.host,
            &token,
            Method::POST,
            "/v1/me/phone-verification",
            Some(json!({ "code": code })),
        )
    };
    let (st, body) = verify("123456").await;
    assert_eq!(
        (st, body["code"].as_str()),
        (422, Some("no_code")),
        "{body}"
    );
    let (st, _) = put_prefs(
        &app,
        &s,
        &token,
        json!({"email": false, "sms": true, "phone": "+15550104000"}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(app.jobs_settled().await, 0);
    let code: String = sms.messages()[0]
        .body
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect();
    // A code that cannot be the right one: each digit shifted by one.
    let wrong: String = code
        .chars()
        .map(|c| char::from(b'0' + (c as u8 - b'0' + 1) % 10))
        .collect();
    for _ in 0..5 {
        let (st, body) = verify(&wrong).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (422, Some("wrong_code")),
            "{body}"
        );
    }
    let (st, body) = verify(&code).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (422, Some("code_expired")),
        "{body}"
    );

    let resend = || {
        app.api(
            &s.host,
            &token,
            Method::POST,
            "/v1/me/phone-verification/resend",
            None,
        )
    };
    // The number change sent one code; two more may be asked for this hour.
    for _ in 0..2 {
        assert_eq!(resend().await.0, 202);
    }
    let (st, body) = resend().await;
    assert_eq!(
        (st, body["code"].as_str()),
        (429, Some("too_many_requests"))
    );
    // Changing to yet another number would text a fourth code: refused too, nothing saved.
    let (st, body) = put_prefs(
        &app,
        &s,
        &token,
        json!({"email": false, "sms": true, "phone": "+15550104001"}),
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (429, Some("too_many_requests")),
        "{body}"
    );
    // The new codes went out; the newest is the one that counts, and its tries start afresh.
    assert_eq!(app.jobs_settled().await, 0);
    let newest: String = sms
        .messages()
        .last()
        .unwrap()
        .body
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect();
    let wrong: String = newest
        .chars()
        .map(|c| char::from(b'0' + (c as u8 - b'0' + 1) % 10))
        .collect();
    // The page says the same in words.
    let mut lee = app
        .sign_in(&s.host, "lee@confirm.example", portal_tests::PASSWORD)
        .await;
    let (_, page) = lee.page("/account/reminders").await;
    assert!(page.contains("Confirm your mobile number"), "{page}");
    let resp = lee
        .post_form("/account/reminders/verify", &[("code", wrong.as_str())])
        .await;
    assert_eq!(resp.status(), 422);
    let text = resp.text().await.unwrap();
    assert!(text.contains("That code is not right"), "{text}");
    let resp = lee.post_form("/account/reminders/verify/resend", &[]).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
}
