//! Tenancy benchmark (a benchmark, not a test): provisioning time, tenant-page throughput at
//! 1 clinic and spread over 10,000, and a no-op `portal migrate` over 10,000 clinics.
//! Run with `infra/bench`; method and figures go in docs/BENCHMARKS.md.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use portal_tests::{TestDb, new_tenant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs wrk against the server, spreading requests over `tenants` clinics; returns req/s.
fn wrk(port: u16, tenants: usize, seconds: u32) -> f64 {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/spread.lua");
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "-s", script])
        .arg(format!("http://127.0.0.1:{port}/"))
        .env("BENCH_TENANTS", tenants.to_string())
        .env("BENCH_BASE_DOMAIN", "portal.test")
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("wrk over {tenants} clinic(s), {seconds} s:\n{text}");
    assert!(
        !text.contains("Non-2xx"),
        "the benchmark saw error responses"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wrk printed Requests/sec")
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seconds: u32 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let warmup: u32 = std::env::var("BENCH_WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90);
    let db = TestDb::create_with(HashMap::from([(
        "PORTAL_DATABASE_POOL_SIZE",
        "8".to_owned(),
    )]))
    .await;
    let p = db.provisioner();

    // (a) Provisioning: 200 clinics one after another, each timed end to end (registry row,
    // role, schema, migrations, grants, commit).
    let mut times = Vec::new();
    for i in 0..200 {
        let started = Instant::now();
        p.create(new_tenant(&format!("bench-{i:05}"), "America/New_York"))
            .await
            .expect("provision");
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "(a) provisioning over 200 clinics: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(percentile(&times, 1.0))
    );

    // The rest of the clinics, two provisioners at a time (not part of figure (a)).
    let started = Instant::now();
    let rest: Vec<usize> = (200..total).collect();
    for chunk in rest.chunks(2) {
        let futs = chunk
            .iter()
            .map(|i| p.create(new_tenant(&format!("bench-{i:05}"), "UTC")));
        for r in futures::future::join_all(futs).await {
            r.expect("provision");
        }
    }
    println!(
        "provisioned {} more clinics in {:.1} s",
        rest.len(),
        started.elapsed().as_secs_f64()
    );

    // (c) `portal migrate` with nothing pending, over every clinic: the whole command's work
    // (control migrations, app-role grants, pending check), three runs.
    for run in 1..=3 {
        let started = Instant::now();
        let report = portal::migrate::run(&db.config, 4).await.expect("migrate");
        assert!(report.migrated.is_empty() && report.failed.is_empty());
        println!(
            "(c) no-op migrate over {} clinics, run {run}: {:.2} s",
            report.up_to_date,
            started.elapsed().as_secs_f64()
        );
    }

    // (b) Throughput of a clinic page that reads one row from the clinic's schema.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = portal::serve::start(
        &db.config,
        std::sync::Arc::new(portal_domain::clock::SystemClock),
        async move {
            let _ = rx.await;
        },
    )
    .await
    .expect("start server");
    let port = running.addr.port();
    wrk(port, 1, 3); // warm-up
    let one = wrk(port, 1, seconds);
    // Spread over every clinic: first right after a short warm-up (most clinics' tables are
    // still cold in each PostgreSQL backend's catalog cache), then after a long one (steady
    // state, as in a long-running deployment whose pooled connections have met every clinic).
    wrk(port, total, 5);
    let cold = wrk(port, total, seconds);
    wrk(port, total, warmup);
    let warm = wrk(port, total, seconds);
    println!(
        "(b) tenant page: {one:.0} req/s at 1 clinic; over {total} clinics {cold:.0} req/s \
         after a 5 s warm-up ({:.0}%), {warm:.0} req/s after {warmup} s more ({:.0}%)",
        cold / one * 100.0,
        warm / one * 100.0
    );
    let _ = tx.send(());
}
