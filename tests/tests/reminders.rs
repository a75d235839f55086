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

async fn set_phone(app: &TestApp, s: &Sched, patient: PatientId, phone: &str) {
    let sql = format!(
        "UPDATE \"{}\".patients SET phone = $1 WHERE id = $2",
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
}

async fn webhook(app: &TestApp, s: &Sched, from: &str, body: &str, sign: bool) -> (u16, String) {
    let fields = vec![
        ("From".to_owned(), from.to_owned()),
        ("Body".to_owned(), body.to_owned()),
        ("MessageSid".to_owned(), "SMinbound".to_owned()),
    ];
    // The public URL the provider calls (and signs), as the product builds its links.
    let url = format!("https://{}/webhooks/sms", s.host);
    let signature = if sign {
        portal_web::sms_signature(TOKEN, &url, &fields)
    } else {
        "bm90IGEgc2lnbmF0dXJl".to_owned()
    };
    let resp = app
        .client
        .post(format!("http://{}/webhooks/sms", app.addr))
        .header("host", &s.host)
        .header("x-twilio-signature", signature)
        .form(&fields)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn stop_and_confirm_replies_are_honoured_and_unsigned_ones_refused() {
    let (app, sms) = app_with_sms().await;
    let s = app.scheduling_clinic("reply").await;
    let dee = app.patient(&s.tenant, "Dee", "dee@reply.example").await;
    set_phone(&app, &s, dee, "+15550101004").await;
    let token = app.api_token(&s.host, "dee@reply.example").await;
    let id = book(&app, &s, &token, "2026-11-05T09:30").await;

    let (st, _) = webhook(&app, &s, "+15550101004", "STOP", false).await;
    assert_eq!(st, 403, "a forged webhook call is refused");
    let (st, answer) = webhook(&app, &s, "+15550101004", "c", true).await;
    assert_eq!(st, 200);
    assert!(
        answer.contains("Thu 5 Nov 2026, 9:30 AM EST is confirmed"),
        "{answer}"
    );
    let (st, answer) = webhook(&app, &s, "+15559999999", "C", true).await;
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
    let (st, answer) = webhook(&app, &s, "+15550101004", " Stop ", true).await;
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
        portal_domain::identity::Role::Staff,
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
