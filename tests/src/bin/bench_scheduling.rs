//! Scheduling benchmark (a benchmark, not a test): open-slot search and booking requests per
//! second at a clinic with 20 providers and 6 months of availability, beside `pgbench` TPC-B
//! on the same PostgreSQL in the same run. Run with `infra/bench scheduling`; method and
//! figures go in docs/BENCHMARKS.md.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use chrono::{Duration as Days, NaiveTime};
use portal_domain::clock::{Clock, SystemClock};
use portal_domain::identity::Role;
use portal_domain::scheduling::setup::{SeedPlan, VisitTypeInput, seed_if_empty};
use portal_tests::{TestApp, new_tenant};

fn wrk(url: &str, seconds: u32, env: &[(&str, String)], script: &str) -> f64 {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c16",
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
            script,
            url,
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert!(
        !text.contains("Non-2xx"),
        "the benchmark saw error responses"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Requests/sec")
}

fn psql(sql: &str) {
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-qc", sql])
        .status();
}

fn pgbench_tpcb(db: &str, seconds: u32) -> f64 {
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
        .args(["-c", "16", "-j", "2", "-T", &seconds.to_string(), db])
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
    let app = TestApp::spawn_with(HashMap::from([(
        "PORTAL_DATABASE_POOL_SIZE",
        "8".to_owned(),
    )]))
    .await;
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
    // A UTC clinic, so 6 months of slots keep one UTC grid across daylight-saving dates.
    let tenant = app
        .db
        .provisioner()
        .create(new_tenant("bench", "UTC"))
        .await
        .expect("clinic");
    let names: Vec<String> = (1..=20).map(|i| format!("Dr. Bench {i:02}")).collect();
    let plan = SeedPlan {
        locations: vec![("Main", "1 Bench Street")],
        visit_types: vec![VisitTypeInput {
            name: "Check-up",
            duration_minutes: "30",
            self_bookable: true,
            audience: "any",
            modality: "in_person",
            video_base_url: "",
        }],
        providers: names
            .iter()
            .map(|n| (n.as_str(), vec!["Check-up"]))
            .collect(),
        hours: names
            .iter()
            .map(|n| {
                (
                    n.as_str(),
                    "Main",
                    vec![1, 2, 3, 4, 5, 6, 7],
                    "08:00",
                    "18:00",
                )
            })
            .collect(),
    };
    let tdb = app.db.tenant_db().await;
    let mut tx = tdb.begin(&tenant).await.expect("begin");
    seed_if_empty(&mut tx, &plan, SystemClock.now())
        .await
        .expect("seed");
    tx.commit().await.expect("commit");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{}\".booking_rules SET horizon_days = 183",
        tenant.schema_name()
    )))
    .execute(&app.db.admin)
    .await
    .expect("horizon");
    app.staff(&tenant, "desk@bench.example", Role::FrontDesk)
        .await;
    let patient = app.patient(&tenant, "Pat", "pat@bench.example").await;
    let host = app.host("bench");
    let staff = app.api_token(&host, "desk@bench.example").await;
    let pat = app.api_token(&host, "pat@bench.example").await;
    let (_, opts) = app
        .api(
            &host,
            &staff,
            reqwest::Method::GET,
            "/v1/booking-options",
            None,
        )
        .await;
    let vt = opts["visit_types"][0]["id"]
        .as_str()
        .expect("vt")
        .to_owned();
    let location = opts["locations"][0]["id"].as_str().expect("loc").to_owned();
    let providers: Vec<String> = opts["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(providers.len(), 20);
    let base = format!("http://{}", app.addr);
    let tomorrow = (SystemClock.now().date_naive() + Days::days(1))
        .and_time(NaiveTime::from_hms_opt(8, 0, 0).expect("time"))
        .and_utc();

    let get = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/get.lua");
    let book = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/book.lua");
    let slots_path = format!(
        "/api/v1/slots?visit_type_id={vt}&days=7&from={}",
        tomorrow.date_naive()
    );
    let slot_env = vec![
        ("BENCH_AUTH", format!("Bearer {pat}")),
        ("BENCH_HOST", host.clone()),
        ("BENCH_PATH", slots_path),
    ];
    println!("== warm-up");
    wrk(&base, 3, &slot_env, get);
    println!("== slot search: a patient's week of open check-ups with any of 20 providers");
    let slots_rps = wrk(&base, seconds, &slot_env, get);
    let book_env = vec![
        ("BENCH_AUTH", format!("Bearer {staff}")),
        ("BENCH_HOST", host.clone()),
        ("BENCH_PROVIDERS", providers.join(",")),
        ("BENCH_LOCATION", location),
        ("BENCH_VISIT_TYPE", vt),
        ("BENCH_PATIENT", patient.to_string()),
        ("BENCH_BASE_EPOCH", tomorrow.timestamp().to_string()),
    ];
    println!("== booking: every request a different free slot");
    let book_rps = wrk(
        &format!("{base}/api/v1/appointments"),
        seconds,
        &book_env,
        book,
    );
    let booked: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".appointments",
        tenant.schema_name()
    )))
    .fetch_one(&app.db.admin)
    .await
    .expect("count");
    ticker.abort();
    drop(app);

    println!("== pgbench TPC-B on the same PostgreSQL");
    let pg_db = format!("portal_bench_tpcb_{}", std::process::id());
    psql(&format!("CREATE DATABASE {pg_db}"));
    let tps = pgbench_tpcb(&pg_db, seconds);
    psql(&format!("DROP DATABASE {pg_db}"));

    println!("\n=== Summary");
    println!("slot search (7 days, 20 providers): {slots_rps:>8.0} req/s");
    println!("booking (POST, {booked} booked):     {book_rps:>8.0} req/s");
    println!("pgbench TPC-B (16 clients):         {tps:>8.0} tps");
    println!(
        "booking / TPC-B: {:.0}% (target ≥ 50%)",
        100.0 * book_rps / tps
    );
}
