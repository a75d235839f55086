//! Identity and job-pipeline benchmark (a benchmark, not a test): authenticated
//! `GET /api/v1/me` throughput and p99 beside the machine's ceiling in the same run (a poem
//! endpoint that touches no database, and `pgbench -S` on the same PostgreSQL), and emails per
//! second from the outbox to a real SMTP server. Run with `infra/bench identity`; method and
//! figures go in docs/BENCHMARKS.md.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal_domain::clock::{Clock, SystemClock};
use portal_domain::identity::accounts;
use portal_domain::values::{EmailAddress, PersonName};
use portal_tests::bench::wrk;
use portal_tests::{PASSWORD, SmtpSink, TestApp, TestDb};

fn pgbench(db: &str, seconds: u32) -> f64 {
    let pg = ["-h", "127.0.0.1", "-U", "postgres"];
    let init = Command::new("pgbench")
        .args(pg)
        .args(["-i", "-q", "-s", "10", db])
        .output()
        .expect("pgbench");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = Command::new("pgbench")
        .args(pg)
        .args(["-S", "-c", "16", "-j", "2", "-T", &seconds.to_string(), db])
        .output()
        .expect("pgbench");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    text.lines()
        .find(|l| l.starts_with("tps ="))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .expect("pgbench tps")
}

#[tokio::main]
async fn main() {
    let seconds: u32 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let emails: usize = std::env::var("BENCH_EMAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);

    // --- Authenticated GET /api/v1/me -------------------------------------------------------
    let app = TestApp::spawn_with(HashMap::from([(
        "PORTAL_DATABASE_POOL_SIZE",
        "8".to_owned(),
    )]))
    .await;
    let t = app.clinic("bench").await;
    app.patient(&t, "Bea", "bea@bench.example").await;
    let host = app.host("bench");
    // The server's clock is the harness's manual clock: keep it at real time while we measure.
    let clock = app.clock.clone();
    let ticker = tokio::spawn(async move {
        loop {
            let lag = SystemClock.now() - clock.now();
            if lag > chrono::Duration::zero() {
                clock.advance(lag);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let b = app.sign_in(&host, "bea@bench.example", PASSWORD).await;
    let cookie = format!(
        "__Host-portal_session={}",
        b.session_token().expect("session")
    );
    let base = format!("http://{}", app.addr);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/me.lua");
    let env = vec![
        ("BENCH_COOKIE", cookie.clone()),
        ("BENCH_HOST", host.clone()),
    ];

    println!("== warm-up");
    wrk(&format!("{base}/api/v1/me"), 32, 3, &env, Some(script));
    println!("== ceiling: /healthz (no database)");
    let bare = wrk(&format!("{base}/healthz"), 32, seconds, &[], None);
    println!("== GET /api/v1/me, 32 connections");
    let me = wrk(
        &format!("{base}/api/v1/me"),
        32,
        seconds,
        &env,
        Some(script),
    );
    // Half the peak rate: 16 connections, each pausing so that together they send ~rps/2.
    let delay_ms = (16.0 * 1000.0 / (me.rps / 2.0)).max(1.0).round() as u64;
    println!(
        "== GET /api/v1/me at about half the peak ({delay_ms} ms between requests per connection)"
    );
    let mut paced_env = env.clone();
    paced_env.push(("BENCH_DELAY_MS", delay_ms.to_string()));
    let half = wrk(
        &format!("{base}/api/v1/me"),
        16,
        seconds,
        &paced_env,
        Some(script),
    );
    ticker.abort();
    drop(app);

    println!("== ceiling: pgbench -S on the same PostgreSQL");
    let pg_db = format!("portal_bench_pgbench_{}", std::process::id());
    let _ = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qc",
            &format!("CREATE DATABASE {pg_db}"),
        ])
        .status();
    let tps = pgbench(&pg_db, seconds);
    let _ = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qc",
            &format!("DROP DATABASE {pg_db}"),
        ])
        .status();

    // --- Emails per second, outbox → Redis → worker → SMTP --------------------------------------
    let sink = SmtpSink::start().await;
    let db = TestDb::create_with(HashMap::from([
        ("PORTAL_SMTP_URL", sink.url()),
        ("PORTAL_JOB_CONCURRENCY", "64".to_owned()),
        ("PORTAL_DATABASE_POOL_SIZE", "16".to_owned()),
    ]))
    .await;
    let t = db.create_tenant("postbox").await;
    let tdb = db.tenant_db().await;
    let mut tx = tdb.begin(&t).await.expect("begin");
    let now = SystemClock.now();
    let name = PersonName::parse("Bench Person", "name").expect("name");
    for i in 0..emails {
        let email = EmailAddress::parse(&format!("p{i}@postbox.example")).expect("email");
        accounts::invite_first_admin(&mut tx, &email, &name, now)
            .await
            .expect("invite");
    }
    let deps = portal::work::deps(&db.config, Arc::new(SystemClock), None)
        .await
        .expect("deps");
    let started = Instant::now();
    tx.commit().await.expect("commit");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(portal_workers::run(deps, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM control.job_deliveries WHERE status IN ('done', 'dead')",
        )
        .fetch_one(&db.admin)
        .await
        .expect("count");
        if done as usize >= emails {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.job_deliveries WHERE status = 'dead'")
            .fetch_one(&db.admin)
            .await
            .expect("count");
    let received = std::fs::read_dir(&sink.dir.0)
        .map(|d| d.count())
        .unwrap_or(0);
    let _ = stop_tx.send(true);
    let _ = worker.await;

    println!("\n=== Summary");
    println!(
        "ceiling /healthz (no DB):         {:>8.0} req/s  p99 {:.2} ms",
        bare.rps, bare.p99_ms
    );
    println!("ceiling pgbench -S (16 clients):  {:>8.0} tps", tps);
    println!(
        "GET /api/v1/me, 32 connections:   {:>8.0} req/s  p99 {:.2} ms",
        me.rps, me.p99_ms
    );
    println!(
        "GET /api/v1/me, ~half load:       {:>8.0} req/s  p99 {:.2} ms",
        half.rps, half.p99_ms
    );
    println!(
        "emails: {emails} in {:.2} s = {:.0}/s (outbox commit → all delivered; {received} received by the SMTP sink, {dead} dead)",
        elapsed.as_secs_f64(),
        emails as f64 / elapsed.as_secs_f64()
    );
}
