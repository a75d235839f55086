//! Reminder dispatch benchmark (a benchmark, not a test): N visits, each with an email and a
//! text reminder, all due at the same instant; the real relay and worker send them to the real
//! SMTP sink (Debian's aiosmtpd) and the Twilio-compatible fake. Measures from the due instant
//! until every reminder is finished in the delivery log, then checks that each patient got
//! exactly one email and one text. Run with `infra/bench reminders`; method and figures go in
//! docs/BENCHMARKS.md.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal_domain::clock::{Clock, SystemClock};
use portal_domain::jobs::Job;
use portal_tests::twilio_fake::TwilioFake;
use portal_tests::{SmtpSink, TestDb};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // Reminders in all; half by email, half by text (one of each per visit).
    // Warnings (a failing relay, dead jobs) show on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("PORTAL_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let total: usize = env_or("BENCH_REMINDERS", 100_000);
    let visits = total / 2;
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 128);
    let pool: usize = env_or("BENCH_POOL", 16);

    let sink = SmtpSink::start().await;
    let sms = TwilioFake::start().await;
    let mut env: HashMap<&str, String> = sms.env().into_iter().collect();
    env.insert("PORTAL_SMTP_URL", sink.url());
    env.insert("PORTAL_JOB_CONCURRENCY", concurrency.to_string());
    env.insert("PORTAL_DATABASE_POOL_SIZE", pool.to_string());
    let db = TestDb::create_with(env).await;
    let tenant = db.create_tenant("remind").await;
    let schema = tenant.schema_name().to_owned();

    // --- The clinic: 20 providers, `visits` patients with an email and a mobile number, one
    // booked visit each, from three days ahead. Written directly (the booking path has its
    // own benchmark); the reminders below are the jobs booking would have queued.
    println!("== seeding {visits} visits");
    let seed = Instant::now();
    let now = SystemClock.now();
    let base = now + chrono::Duration::days(3);
    let mut tx = db.admin.begin().await.expect("begin");
    let statements = [
        format!("SET LOCAL search_path = \"{schema}\""),
        "INSERT INTO locations (id, name, created_at) VALUES (gen_random_uuid(), 'Main', now())"
            .to_owned(),
        "INSERT INTO visit_types (id, name, duration_minutes, created_at)
         VALUES (gen_random_uuid(), 'Check-up', 30, now())"
            .to_owned(),
        "INSERT INTO providers (id, display_name, created_at)
         SELECT gen_random_uuid(), 'Dr ' || i, now() FROM generate_series(1, 20) i"
            .to_owned(),
        format!(
            "INSERT INTO patients (id, given_name, family_name, date_of_birth, email, phone, created_at)
             SELECT gen_random_uuid(), 'P' || i, 'Bench', '1980-01-01', 'p' || i || '@remind.example',
                    '+1555' || lpad(i::text, 7, '0'), now()
             FROM generate_series(1, {visits}) i"
        ),
    ];
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s))
            .execute(&mut *tx)
            .await
            .expect("seed");
    }
    sqlx::query(
        "WITH p AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM patients),
              pr AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM providers)
         INSERT INTO appointments (id, patient_id, provider_id, location_id, visit_type_id,
                                   starts_at, ends_at, status, created_at, updated_at)
         SELECT gen_random_uuid(), p.id, pr.id, (SELECT id FROM locations),
                (SELECT id FROM visit_types),
                $1 + (p.n / 20) * interval '30 minutes',
                $1 + (p.n / 20) * interval '30 minutes' + interval '30 minutes',
                'booked', now(), now()
         FROM p JOIN pr ON pr.k = p.n % 20",
    )
    .bind(base)
    .execute(&mut *tx)
    .await
    .expect("appointments");
    // Everything due five seconds after the commit below (the workers' clock is real time).
    let due_in = chrono::Duration::seconds(5);
    let due = SystemClock.now() + due_in;
    sqlx::query(
        "INSERT INTO control.outbox (id, kind, version, tenant_id, payload, not_before)
         SELECT gen_random_uuid(), 'reminder.appointment', 1, $1,
                jsonb_build_object('appointment_id', a.id, 'version', a.version,
                                   'channel', c.channel, 'hours_before', 24),
                $2
         FROM appointments a CROSS JOIN (VALUES ('email'), ('sms')) AS c (channel)",
    )
    .bind(tenant.id().as_uuid())
    .bind(due)
    .execute(&mut *tx)
    .await
    .expect("reminders");
    // The payload is exactly what the product writes: the worker must be able to read it.
    let (kind, payload): (String, serde_json::Value) =
        sqlx::query_as("SELECT kind, payload FROM control.outbox LIMIT 1")
            .fetch_one(&mut *tx)
            .await
            .expect("one job");
    assert!(matches!(
        Job::from_parts(&kind, payload),
        Ok(Job::Reminder { .. })
    ));
    tx.commit().await.expect("commit");
    sqlx::query("ANALYZE control.outbox")
        .execute(&db.admin)
        .await
        .expect("analyze");
    println!("seeded in {:.1} s", seed.elapsed().as_secs_f64());

    // --- Dispatch: one worker process (relay, reconciler, handlers), as `portal work` runs.
    let deps = portal::work::deps(&db.config, Arc::new(SystemClock), None)
        .await
        .expect("deps");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(portal_workers::run(deps, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let wait = (due - SystemClock.now()).to_std().unwrap_or(Duration::ZERO);
    tokio::time::sleep(wait).await;
    let started = Instant::now();
    println!("== due now: dispatching {total} reminders");
    // Finished = nothing left in the outbox and nothing queued or running. Both are cheap
    // indexed checks: the harness must not load the database it measures (a count(*) over the
    // delivery log every few milliseconds would).
    let mut last_report = Instant::now();
    loop {
        let open: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM control.outbox)
                 OR EXISTS (SELECT 1 FROM control.job_deliveries
                            WHERE status IN ('queued', 'running'))",
        )
        .fetch_one(&db.admin)
        .await
        .expect("open jobs");
        if !open {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            let finished: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM control.job_deliveries WHERE status IN ('done', 'dead')",
            )
            .fetch_one(&db.admin)
            .await
            .expect("count");
            println!(
                "  {finished} finished after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = worker.await;

    // --- None lost, none doubled.
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.job_deliveries WHERE status = 'dead'")
            .fetch_one(&db.admin)
            .await
            .expect("count");
    let mut emails = 0usize;
    let mut email_to = HashSet::new();
    for entry in std::fs::read_dir(&sink.dir.0).expect("sink dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "eml") {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            emails += 1;
            if let Some(to) = raw.lines().find_map(|l| l.strip_prefix("To: ")) {
                email_to.insert(to.trim().to_owned());
            }
        }
    }
    let texts = sms.messages();
    let text_to: HashSet<String> = texts.iter().map(|m| m.to.clone()).collect();
    let rate = total as f64 / elapsed.as_secs_f64();

    println!("\n=== Summary");
    println!(
        "{total} reminders due at once ({visits} visits × email + text), concurrency {concurrency}, pool {pool}"
    );
    println!(
        "dispatched in {:.2} s = {rate:.0}/s (due instant → all finished in the delivery log)",
        elapsed.as_secs_f64()
    );
    println!(
        "emails received {emails} ({} distinct recipients), texts received {} ({} distinct numbers), dead {dead}",
        email_to.len(),
        texts.len(),
        text_to.len()
    );
    let exact = emails == visits
        && email_to.len() == visits
        && texts.len() == visits
        && text_to.len() == visits
        && dead == 0;
    println!("none lost or doubled: {}", if exact { "yes" } else { "NO" });
    if !exact {
        std::process::exit(1);
    }
}
