//! The job pipeline under faults: Redis down, SMTP refusing mail, the same job delivered twice.
//! Everything runs for real: outbox in PostgreSQL, apalis queues on Redis, lettre over SMTP to
//! a local aiosmtpd server.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};

use portal_domain::identity::Role;
use portal_tests::{PASSWORD, SmtpSink, TestApp};

async fn invite_staff(app: &TestApp, host: &str, admin: &str, email: &str) {
    let mut b = app.sign_in(host, admin, PASSWORD).await;
    let resp = b
        .post_form(
            "/admin/staff",
            &[
                ("name", "New Person"),
                ("email", email),
                ("role", "front_desk"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
}

async fn outbox_len(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM control.outbox")
        .fetch_one(&app.db.admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn emails_go_out_over_smtp_branded_multipart_and_without_health_data() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_workers(HashMap::from([("PORTAL_SMTP_URL", sink.url())])).await;
    let t = app.clinic("sun").await;
    app.staff(&t, "boss@sun.example", Role::ClinicAdmin).await;
    let host = app.host("sun");
    invite_staff(&app, &host, "boss@sun.example", "new@sun.example").await;
    let email = app.email_in(&sink.dir.0, "new@sun.example", 0).await;
    assert!(email.raw.contains("multipart/alternative"));
    assert!(
        email.raw.contains("From: \"Clinic sun\""),
        "the clinic's sender name"
    );
    assert!(email.html.contains("#123456"), "the clinic's colour");
    assert!(
        email.link().starts_with(&format!("https://{host}/invite/")),
        "{}",
        email.link()
    );
    assert!(email.subject.contains("Clinic sun"));
    assert_eq!(app.jobs_settled().await, 0);
}

#[tokio::test]
async fn smtp_refusing_mail_is_retried_then_dead_and_a_retry_delivers_it() {
    let mut sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_workers(HashMap::from([("PORTAL_SMTP_URL", sink.url())])).await;
    let t = app.clinic("rain").await;
    app.staff(&t, "boss@rain.example", Role::ClinicAdmin).await;
    sink.stop();
    invite_staff(
        &app,
        &app.host("rain"),
        "boss@rain.example",
        "late@rain.example",
    )
    .await;

    assert_eq!(app.jobs_settled().await, 1, "one job is dead, none lost");
    let dead = portal_workers::dead::list(&app.db.admin).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].kind, "email.invitation");
    assert_eq!(dead[0].tenant, "rain");
    assert_eq!(dead[0].attempts, 3);
    let err = dead[0].last_error.clone().unwrap();
    assert!(err.starts_with("smtp"), "{err}");
    assert!(
        !err.contains("late@rain.example"),
        "no addresses in the log"
    );
    // The failed attempts rolled back their link tokens: none is left behind.
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&t).await.unwrap();
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM user_tokens")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(tokens, 0);
    drop(tx);

    sink.restart().await;
    let n = portal_workers::dead::retry(&app.db.admin, None)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let email = app.email_in(&sink.dir.0, "late@rain.example", 0).await;
    assert!(email.subject.contains("invited"));
    assert_eq!(app.jobs_settled().await, 0);
    assert!(
        portal_workers::dead::list(&app.db.admin)
            .await
            .unwrap()
            .is_empty()
    );
}

struct Redis(Child);

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        Self(child)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn redis_up(port: u16) {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("redis did not start");
}

#[tokio::test]
async fn with_redis_down_the_site_serves_and_jobs_wait_then_flow_when_it_returns() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Redis is down from the start: the workers cannot even connect.
    let app = TestApp::spawn_with_workers(HashMap::from([(
        "PORTAL_REDIS_URL",
        format!("redis://127.0.0.1:{port}"),
    )]))
    .await;
    let t = app.clinic("fog").await;
    app.staff(&t, "boss@fog.example", Role::ClinicAdmin).await;
    let host = app.host("fog");
    invite_staff(&app, &host, "boss@fog.example", "waiting@fog.example").await;
    assert_eq!(
        app.get(&host, "/").await.status(),
        200,
        "the site keeps serving"
    );
    assert_eq!(
        app.get(&host, "/readyz").await.status(),
        503,
        "and says Redis is down"
    );
    assert_eq!(outbox_len(&app).await, 1, "the job waits in the outbox");

    let _redis = Redis::start(port);
    redis_up(port).await;
    let email = app.email_to("waiting@fog.example").await;
    assert!(email.subject.contains("invited"));
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(outbox_len(&app).await, 0);
}

#[tokio::test]
async fn a_job_delivered_twice_sends_one_email() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("dew").await;
    app.staff(&t, "boss@dew.example", Role::ClinicAdmin).await;
    invite_staff(
        &app,
        &app.host("dew"),
        "boss@dew.example",
        "once@dew.example",
    )
    .await;
    app.email_to("once@dew.example").await;
    assert_eq!(app.jobs_settled().await, 0);
    // At-least-once delivery: the relay re-sends the same job (as after a crash between its
    // push to Redis and its commit).
    sqlx::query(
        "INSERT INTO control.outbox (id, kind, version, tenant_id, payload)
         SELECT job_id, kind, version, tenant_id, payload FROM control.job_deliveries",
    )
    .execute(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(app.jobs_settled().await, 0);
    let sent = portal_tests::read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.to == "once@dew.example")
        .count();
    assert_eq!(sent, 1);
}

#[tokio::test]
async fn a_clinic_role_cannot_queue_jobs_for_another_clinic() {
    let app = TestApp::spawn().await;
    let a = app.clinic("one").await;
    let b = app.clinic("two").await;
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&a).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO control.outbox (id, kind, version, tenant_id, payload)
         VALUES (gen_random_uuid(), 'email.invitation', 1, $1, '{}')",
    )
    .bind(b.id().as_uuid())
    .execute(tx.conn())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("only queue its own jobs"), "{err}");
    drop(tx);
    // One statement with its own job and another clinic's is refused whole.
    let mut tx = db.begin(&a).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO control.outbox (id, kind, version, tenant_id, payload)
         VALUES (gen_random_uuid(), 'email.invitation', 1, $1, '{}'),
                (gen_random_uuid(), 'email.invitation', 1, $2, '{}')",
    )
    .bind(a.id().as_uuid())
    .bind(b.id().as_uuid())
    .execute(tx.conn())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("only queue its own jobs"), "{err}");
    drop(tx);
    // Nor read the outbox at all.
    let mut tx = db.begin(&a).await.unwrap();
    assert!(
        sqlx::query("SELECT * FROM control.outbox")
            .execute(tx.conn())
            .await
            .is_err()
    );
}

/// A worker process's pipeline, in this process; aborting the handle is a crash.
async fn worker(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let mut deps = portal::work::deps(&app.db.config, app.clock.clone(), None)
        .await
        .unwrap();
    // A short heartbeat, so the dead worker is noticed within a couple of seconds.
    deps.config.poll_interval = std::time::Duration::from_millis(200);
    tokio::spawn(portal_workers::run(deps, std::future::pending()))
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing_and_another_finishes_it_once() {
    let mut sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(HashMap::from([
        ("PORTAL_SMTP_URL", sink.url()),
        ("PORTAL_JOB_MAX_ATTEMPTS", "50".to_owned()),
        ("PORTAL_JOB_RETRY_BASE_MS", "200".to_owned()),
    ]))
    .await;
    let t = app.clinic("gale").await;
    app.staff(&t, "boss@gale.example", Role::ClinicAdmin).await;
    sink.stop();
    let first = worker(&app).await;
    invite_staff(
        &app,
        &app.host("gale"),
        "boss@gale.example",
        "kept@gale.example",
    )
    .await;
    // Wait until the first worker is inside the job (failing against the stopped server)...
    for _ in 0..500 {
        let attempts: Option<i32> = sqlx::query_scalar(
            "SELECT attempts FROM control.job_deliveries WHERE status = 'running'",
        )
        .fetch_optional(&app.db.admin)
        .await
        .unwrap();
        if attempts.unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // ...then kill it mid-job (its heartbeats stop, like a crashed process).
    first.abort();
    let _ = first.await;
    sink.restart().await;
    let _second = worker(&app).await;
    let email = app.email_in(&sink.dir.0, "kept@gale.example", 0).await;
    assert!(email.subject.contains("invited"));
    assert_eq!(app.jobs_settled().await, 0);
    let sent = portal_tests::read_emails(&sink.dir.0)
        .into_iter()
        .filter(|e| e.to == "kept@gale.example")
        .count();
    assert_eq!(sent, 1, "finished exactly once");
}

#[tokio::test]
async fn a_burst_of_more_jobs_than_redis_can_take_at_once_is_worked_off() {
    // apalis-redis moves every due task to its active list in one Lua call, which fails for
    // more than ~8,000 tasks and then keeps failing: the relay must never hand it that many.
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("burst").await;
    // 9,000 reminders due now, for visits that do not exist: each job runs and sends nothing.
    let burst = 9_000i64;
    sqlx::query(
        "INSERT INTO control.outbox (id, kind, version, tenant_id, payload)
         SELECT gen_random_uuid(), 'reminder.appointment', 1, $1,
                jsonb_build_object('appointment_id', gen_random_uuid(), 'version', 1,
                                   'channel', 'email', 'hours_before', 24)
         FROM generate_series(1, $2)",
    )
    .bind(t.id().as_uuid())
    .bind(burst)
    .execute(&app.db.admin)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let done = loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM control.job_deliveries WHERE status IN ('done', 'dead')",
        )
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
        if done == burst || std::time::Instant::now() > deadline {
            break done;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(done, burst, "every job of the burst finished");
    assert_eq!(app.jobs_settled().await, 0, "none dead");
}

#[tokio::test]
async fn an_idle_worker_starts_a_job_when_it_is_queued_not_at_its_next_look() {
    // Workers and the relay look for work on their own only once a minute, longer than
    // `jobs_settled` waits (20 s): only the wake-ups (PostgreSQL NOTIFY for the relay, Redis
    // pub/sub for the workers) can get these emails out in time.
    let app =
        TestApp::spawn_with_workers(HashMap::from([("PORTAL_JOB_POLL_MS", "60000".into())])).await;
    let t = app.clinic("wake").await;
    app.staff(&t, "boss@wake.example", Role::ClinicAdmin).await;
    let host = app.host("wake");
    invite_staff(&app, &host, "boss@wake.example", "first@wake.example").await;
    assert_eq!(app.jobs_settled().await, 0);
    app.email_to("first@wake.example").await;
    // The first might have been found by the workers' look at start; by now they have looked,
    // found nothing more and gone idle, so the second is theirs only through a wake-up.
    invite_staff(&app, &host, "boss@wake.example", "second@wake.example").await;
    assert_eq!(app.jobs_settled().await, 0);
    app.email_to("second@wake.example").await;
}
