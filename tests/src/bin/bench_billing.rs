//! Billing benchmark (a benchmark, not a test). Two figures, in one run:
//! 1. Stripe webhook events processed per second: 10,000 `payment_intent.succeeded` events of
//!    real objects in the Stripe stand-in, each delivered twice in a shuffled order (fixed
//!    seed) to `POST /webhooks/stripe` with the real signature scheme, 16 at a time; counted
//!    from the first delivery until every event is applied (verified, stored, applied by the
//!    clinic's drain job, its payment settled in the ledger). Then, how long until every
//!    "payment received" email is sent (to files; over SMTP to the test sink with
//!    `BENCH_SMTP=1`). Receipt PDFs are printed only when opened: ten are opened one after
//!    another, to time printing on demand. The final ledger is compared, account by account,
//!    with a reference model of what it must hold.
//! 2. The reconciliation page's latency at 100,000 card payments, p99 at 4 connections, beside
//!    `GET /api/v1/me` at 4 connections in the same run (wrk).
//!
//! Run with `infra/bench billing`; method and figures go in docs/BENCHMARKS.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal_domain::clock::{Clock, SystemClock};
use portal_domain::identity::Role;
use portal_tests::bench::wrk;
use portal_tests::cards::{World, onboard};
use portal_tests::stripe_fake::{SECRET_KEY, StripeFake, WEBHOOK_SECRET, signature};
use portal_tests::{PASSWORD, SmtpSink, TestApp};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small fixed-seed generator (xorshift64*), so the shuffle is the same every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// A connection of the database owner in the clinic's schema (bench set-up only).
async fn owner_in(app: &TestApp, schema: &str) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    let mut conn = app.db.admin.acquire().await.expect("conn");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path TO \"{schema}\""
    )))
    .execute(&mut *conn)
    .await
    .expect("search_path");
    conn
}

async fn run(
    conn: &mut sqlx::PgConnection,
    q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) {
    q.execute(conn).await.expect("set-up statement");
}

#[tokio::main]
async fn main() {
    let events_wanted: usize = env_or("BENCH_EVENTS", 10_000);
    let patients: usize = env_or("BENCH_PATIENTS", 100);
    let payments_total: usize = env_or("BENCH_PAYMENTS", 100_000);
    let seconds: u32 = env_or("BENCH_SECONDS", 15);

    // BENCH_SMTP=1: emails go over SMTP to the test sink (aiosmtpd) instead of to files.
    let sink = if env_or("BENCH_SMTP", 0u8) == 1 {
        Some(SmtpSink::start().await)
    } else {
        None
    };
    let stripe = StripeFake::start();
    let mut settings = HashMap::from([
        ("PORTAL_STRIPE_SECRET_KEY", SECRET_KEY.to_owned()),
        ("PORTAL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("PORTAL_STRIPE_BASE_URL", stripe.url()),
        (
            "PORTAL_JOB_CONCURRENCY",
            env_or("BENCH_CONCURRENCY", 16usize).to_string(),
        ),
        ("PORTAL_JOB_MAX_ATTEMPTS", "8".to_owned()),
        // The shipped default (the test harness's 8 is for many test servers at once).
        (
            "PORTAL_DATABASE_POOL_SIZE",
            env_or("BENCH_POOL", 16usize).to_string(),
        ),
    ]);
    if let Some(sink) = &sink {
        settings.insert("PORTAL_SMTP_URL", sink.url());
    }
    let app = TestApp::spawn_with(settings).await;
    // The server's clock is the harness's manual clock: keep it at real time (signatures are
    // checked against it).
    let clock = app.clock.clone();
    clock.set(SystemClock.now());
    let ticker = tokio::spawn(async move {
        loop {
            let lag = SystemClock.now() - clock.now();
            if lag > chrono::Duration::zero() {
                clock.advance(lag);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let tenant = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&tenant, "Ana", "ana@example.com").await;
    app.staff(&tenant, "billing@example.com", Role::Billing)
        .await;
    app.staff(&tenant, "admin@example.com", Role::ClinicAdmin)
        .await;
    let w = World {
        app,
        stripe,
        tenant,
        host,
        ana,
    };
    onboard(&w).await;
    let account = w.stripe.objects("account").await[0]["id"]
        .as_str()
        .expect("account id")
        .to_owned();
    let schema = w.tenant.schema_name().to_owned();

    let mut db = owner_in(&w.app, &schema).await;
    println!(
        "== set-up: {patients} patients, {events_wanted} issued statements with a pending card payment each"
    );
    let pids: Vec<uuid::Uuid> = (0..patients).map(|_| uuid::Uuid::now_v7()).collect();
    // Each with an email address, so every payment's "payment received" email is really sent
    // (to the harness's mail directory: lettre's file transport).
    run(
        &mut db,
        sqlx::query(
            "INSERT INTO patients (id, given_name, family_name, date_of_birth, email, created_at)
          SELECT id, 'Pat', 'Bench' || n, '1984-03-27', 'pat' || n || '@bench.example', now()
          FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)",
        )
        .bind(&pids),
    )
    .await;
    run(
        &mut db,
        sqlx::query(
            "INSERT INTO billing_accounts (id, patient_id, currency, created_at)
          SELECT gen_random_uuid(), id, 'USD', now() FROM unnest($1::uuid[]) AS t(id)",
        )
        .bind(&pids),
    )
    .await;
    // Statement i: patient i % P, charge 50.00 + (37 i mod 200.00); its card payment leaves
    // 0–40.00 of it due.
    let charge = |i: usize| 5_000 + (i as i64 * 3_700) % 20_000;
    let paid = |i: usize| charge(i) - (i as i64 % 5) * 1_000;
    let sids: Vec<uuid::Uuid> = (0..events_wanted).map(|_| uuid::Uuid::now_v7()).collect();
    let payids: Vec<uuid::Uuid> = (0..events_wanted).map(|_| uuid::Uuid::now_v7()).collect();
    let owners: Vec<uuid::Uuid> = (0..events_wanted).map(|i| pids[i % patients]).collect();
    let charges: Vec<i64> = (0..events_wanted).map(charge).collect();
    let amounts: Vec<i64> = (0..events_wanted).map(paid).collect();
    run(&mut db, sqlx::query("INSERT INTO statements (id, account_id, patient_id, status, currency, due_on, issued_minor, issued_at, created_at)
          SELECT s.id, a.id, s.patient, 'issued', 'USD', current_date + 30, s.charge, now(), now()
          FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS s(id, patient, charge)
          JOIN billing_accounts a ON a.patient_id = s.patient").bind(&sids).bind(&owners).bind(&charges)).await;
    run(&mut db, sqlx::query("INSERT INTO statement_lines (id, statement_id, position, service_date, description, code, charge_minor)
          SELECT gen_random_uuid(), id, 1, current_date - 1, 'Office visit', '99213', issued_minor FROM statements")).await;
    run(&mut db, sqlx::query("INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency, statement_id, balance_after_minor, created_at)
          SELECT gen_random_uuid(), account_id, 0, 'charge', issued_minor, 'USD', id, 0, now() FROM statements ORDER BY id")).await;
    run(&mut db, sqlx::query("INSERT INTO payments (id, account_id, statement_id, method, status, amount_minor, currency, payer, created_at)
          SELECT p.id, s.account_id, s.id, 'card', 'pending', p.amount, 'USD', 'patient', now()
          FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS p(id, statement, amount)
          JOIN statements s ON s.id = p.statement").bind(&payids).bind(&sids).bind(&amounts)).await;

    println!(
        "== set-up: {events_wanted} PaymentIntents made on the clinic's account in the Stripe stand-in"
    );
    let client = reqwest::Client::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut made = tokio::task::JoinSet::new();
    for (i, pay) in payids.iter().enumerate() {
        let (client, sem, url, account) =
            (client.clone(), sem.clone(), w.stripe.url(), account.clone());
        let form = vec![
            ("amount", amounts[i].to_string()),
            ("currency", "usd".to_owned()),
            ("payment_method", "pm_card_visa".to_owned()),
            ("confirm", "true".to_owned()),
            (
                "metadata[payment]",
                portal_domain::ids::PaymentId::from_uuid(*pay).to_string(),
            ),
            ("metadata[clinic]", w.tenant.id().to_string()),
        ];
        made.spawn(async move {
            let _permit = sem.acquire().await.expect("permit");
            let resp = client
                .post(format!("{url}/v1/payment_intents"))
                .bearer_auth(SECRET_KEY)
                .header("Stripe-Account", account)
                .form(&form)
                .send()
                .await
                .expect("stand-in");
            assert!(resp.status().is_success(), "{}", resp.status());
        });
    }
    while made.join_next().await.is_some() {}
    let events = w.stripe.read("/_fake/events").await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bodies: Vec<Arc<Vec<u8>>> = events
        .iter()
        .filter(|e| e["type"] == "payment_intent.succeeded")
        .map(|e| Arc::new(e["body"].as_str().expect("body").as_bytes().to_vec()))
        .collect();
    assert_eq!(bodies.len(), events_wanted);
    let mut deliveries: Vec<Arc<Vec<u8>>> = bodies.iter().chain(bodies.iter()).cloned().collect();
    Seeded(0x5EED_1234_ABCD_0001).shuffle(&mut deliveries);

    println!(
        "== {} deliveries ({} events, each twice, shuffled), 16 at a time",
        deliveries.len(),
        bodies.len()
    );
    let deps = portal::work::deps(
        &w.app.db.config,
        w.app.clock.clone(),
        Some(w.app.addr.port()),
    )
    .await
    .expect("worker deps");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(portal_workers::run(deps, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let start = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(deliveries));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, queue, clock) = (client.clone(), queue.clone(), w.app.clock.clone());
        let url = format!("http://{}/webhooks/stripe", w.app.addr);
        let platform = w.app.db.config.base_domain.clone();
        senders.spawn(async move {
            loop {
                let Some(body) = queue.lock().expect("queue").pop() else {
                    return;
                };
                let resp = client
                    .post(&url)
                    .header("host", &platform)
                    .header("content-type", "application/json; charset=utf-8")
                    .header(
                        "stripe-signature",
                        signature(&body, clock.now().timestamp(), WEBHOOK_SECRET),
                    )
                    .body(body.to_vec())
                    .send()
                    .await
                    .expect("webhook");
                assert!(
                    resp.status().is_success(),
                    "webhook answered {}",
                    resp.status()
                );
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let received = start.elapsed();
    // Done when every event is applied (its payment settled in the same transaction). Each
    // batch of payments also queued one job that emails their patients: that work goes on in
    // the same workers meanwhile, as it would in production, and is not waited for here.
    // Looked at every 100 ms, in one statement: the look is load on the same PostgreSQL, and
    // at every 10 ms with two statements it was a tenth of what the server was doing.
    loop {
        let (unapplied, events, failed): (i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FILTER (WHERE applied_at IS NULL), count(*),
                    count(*) FILTER (WHERE failure IS NOT NULL)
             FROM \"{schema}\".stripe_events"
            )))
            .fetch_one(&w.app.db.admin)
            .await
            .expect("count");
        assert_eq!(failed, 0, "no event may fail");
        if unapplied == 0 && events as usize == events_wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let applied = start.elapsed();
    let (pending, dead): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM \"{schema}\".payments WHERE status = 'pending'),
                (SELECT count(*) FROM control.job_deliveries WHERE status = 'dead')"
    )))
    .fetch_one(&w.app.db.admin)
    .await
    .expect("count");
    assert_eq!(
        (pending, dead),
        (0, 0),
        "every payment settled, no job dead"
    );
    println!(
        "all {} deliveries answered (2xx) in {:.2} s ({:.0} deliveries/s); all {events_wanted} events applied after {:.2} s: {:.0} events/s",
        2 * events_wanted,
        received.as_secs_f64(),
        (2 * events_wanted) as f64 / received.as_secs_f64(),
        applied.as_secs_f64(),
        events_wanted as f64 / applied.as_secs_f64(),
    );
    // The emails follow: every payment's "payment received" email sent (at most ten minutes;
    // a longer wait is reported as not done).
    let until = Instant::now() + Duration::from_secs(600);
    let receipts_done = loop {
        let told: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{schema}\".payments WHERE receipt_noticed_at IS NOT NULL"
        )))
        .fetch_one(&w.app.db.admin)
        .await
        .expect("count");
        if told as usize >= events_wanted {
            break Some(start.elapsed());
        }
        if Instant::now() > until {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    match receipts_done {
        Some(t) => println!(
            "every payment-received email sent after {:.2} s",
            t.as_secs_f64()
        ),
        None => println!("receipt emails: not all sent within ten minutes"),
    }
    let jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM control.job_deliveries WHERE kind = 'payment.receipts'",
    )
    .fetch_one(&w.app.db.admin)
    .await
    .expect("count");
    let mail_dir = sink.as_ref().map_or(&w.app.mail_dir, |s| &s.dir.0);
    let emails = std::fs::read_dir(mail_dir)
        .map(|d| d.filter_map(Result::ok).count())
        .unwrap_or(0);
    println!("  {emails} emails (one an address a job) from {jobs} receipt-email jobs");
    // Receipts are printed when opened: billing staff open ten, one after another, each
    // timed from the click until its PDF is ready (the workers otherwise idle).
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let mut waits = Vec::new();
    for pay in payids.iter().take(10) {
        let opened = Instant::now();
        let pay = portal_domain::ids::PaymentId::from_uuid(*pay);
        let resp = staff
            .post_form(&format!("/billing/payments/{pay}/receipt"), &[])
            .await;
        assert_eq!(resp.status(), 303, "receipt opened");
        let to = portal_tests::cards::location(&resp);
        let doc = to
            .rsplit('/')
            .next()
            .and_then(portal_domain::ids::DocumentId::parse)
            .expect("document id")
            .as_uuid();
        loop {
            let status: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT status FROM \"{schema}\".documents WHERE id = $1"
            )))
            .bind(doc)
            .fetch_one(&w.app.db.admin)
            .await
            .expect("status");
            assert_ne!(status, "failed", "a receipt failed to print");
            if status == "ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        waits.push(opened.elapsed());
    }
    waits.sort();
    println!(
        "a receipt opened is ready (PDF printed) after {:.0} ms median, {:.0} ms at most (10 opened)",
        waits[waits.len() / 2].as_secs_f64() * 1000.0,
        waits[waits.len() - 1].as_secs_f64() * 1000.0,
    );
    let _ = stop_tx.send(true);
    let _ = worker.await;

    // The reference model: per patient, the charges of their statements less their payments,
    // and two entries per statement.
    let mut model: HashMap<uuid::Uuid, (i64, i64)> = HashMap::new();
    for i in 0..events_wanted {
        let m = model.entry(pids[i % patients]).or_default();
        m.0 += charges[i] - amounts[i];
        m.1 += 2;
    }
    let rows: Vec<(uuid::Uuid, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT a.patient_id, a.balance_minor, a.entries, coalesce(sum(e.amount_minor), 0)::bigint, count(e.id)
         FROM \"{schema}\".billing_accounts a LEFT JOIN \"{schema}\".ledger_entries e ON e.account_id = a.id
         WHERE a.patient_id = ANY($1) GROUP BY a.id"
    )))
    .bind(&pids)
    .fetch_all(&w.app.db.admin)
    .await
    .expect("ledger");
    assert_eq!(rows.len(), patients);
    for (patient, balance, entries, sum, count) in &rows {
        let (want_balance, want_entries) = model[patient];
        assert_eq!(
            (*balance, *sum),
            (want_balance, want_balance),
            "balance of {patient}"
        );
        assert_eq!(
            (*entries, *count),
            (want_entries, want_entries),
            "entries of {patient}"
        );
    }
    println!(
        "the ledger equals the reference model: {patients} accounts, {} entries, every balance exact",
        2 * events_wanted
    );

    let more = payments_total.saturating_sub(events_wanted);
    println!(
        "== reconciliation at {payments_total} card payments: {more} more, settled and mirrored"
    );
    run(&mut db, sqlx::query("INSERT INTO payments (id, account_id, statement_id, method, status, amount_minor, currency, payer, stripe_payment_intent, created_at, succeeded_at)
          SELECT gen_random_uuid(), s.account_id, s.id, 'card', 'succeeded', 100 + n % 900, 'USD', 'patient',
                 'pi_bench' || n, now() - (n || ' minutes')::interval, now() - (n || ' minutes')::interval
          FROM generate_series(1, $1) AS n
          CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids, array_agg(account_id ORDER BY id) AS accounts FROM statements) a
          CROSS JOIN LATERAL (SELECT a.ids[1 + n % $2] AS id, a.accounts[1 + n % $2] AS account_id) s").bind(more as i64).bind(events_wanted as i64)).await;
    run(&mut db, sqlx::query("INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency, statement_id, payment_id, balance_after_minor, created_at)
          SELECT gen_random_uuid(), account_id, 0, 'payment', -amount_minor, 'USD', statement_id, id, 0, succeeded_at
          FROM payments p WHERE stripe_payment_intent LIKE 'pi_bench%' ORDER BY id")).await;
    // Stripe's side: every one mirrored as it is, but 25 that differ and 25 Stripe has alone.
    run(&mut db, sqlx::query("INSERT INTO stripe_payments (id, status, amount_minor, received_minor, currency, payment_id, created, seen_at)
          SELECT stripe_payment_intent, 'succeeded', amount_minor,
                 amount_minor + CASE WHEN right(stripe_payment_intent, 4) = '0000' THEN 1 ELSE 0 END,
                 'USD', id, succeeded_at, now()
          FROM payments WHERE stripe_payment_intent LIKE 'pi_bench%'
          UNION ALL
          SELECT 'pi_only' || n, 'succeeded', 5000, 5000, 'USD', NULL, now(), now()
          FROM generate_series(1, 25) AS n")).await;
    run(
        &mut db,
        sqlx::query("UPDATE payment_settings SET reconciled_at = now()"),
    )
    .await;
    let tables = [
        "payments",
        "stripe_payments",
        "ledger_entries",
        "statements",
        "billing_accounts",
        "patients",
        "refunds",
        "disputes",
        "payouts",
    ];
    for t in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "VACUUM ANALYZE \"{schema}\".{t}"
        )))
        .execute(&w.app.db.admin)
        .await
        .expect("vacuum");
    }
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".payments WHERE method = 'card'"
    )))
    .fetch_one(&w.app.db.admin)
    .await
    .expect("count");
    println!("{count} card payments");
    // BENCH_HOLD_SECONDS: time to look at the database (EXPLAIN) before the load runs.
    let hold: u64 = env_or("BENCH_HOLD_SECONDS", 0);
    if hold > 0 {
        println!(
            "holding {hold} s: database {}, schema {schema}",
            w.app.db.name
        );
        tokio::time::sleep(Duration::from_secs(hold)).await;
    }

    let staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let patient = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let cookie = |b: &portal_tests::Browser| {
        format!(
            "__Host-portal_session={}",
            b.session_token().expect("session")
        )
    };
    let base = format!("http://{}", w.app.addr);
    let bench = concat!(env!("CARGO_MANIFEST_DIR"), "/bench");
    let page_env = vec![
        ("BENCH_COOKIE", cookie(&staff)),
        ("BENCH_HOST", w.host.clone()),
        ("BENCH_PATH", "/billing/reconciliation".to_owned()),
    ];
    let me_env = vec![
        ("BENCH_COOKIE", cookie(&patient)),
        ("BENCH_HOST", w.host.clone()),
    ];
    println!("== warm-up");
    wrk(
        &format!("{base}/billing/reconciliation"),
        4,
        3,
        &page_env,
        Some(&format!("{bench}/page.lua")),
    );
    wrk(
        &format!("{base}/api/v1/me"),
        4,
        3,
        &me_env,
        Some(&format!("{bench}/me.lua")),
    );
    println!("== GET /billing/reconciliation, 4 connections");
    let rec = wrk(
        &format!("{base}/billing/reconciliation"),
        4,
        seconds,
        &page_env,
        Some(&format!("{bench}/page.lua")),
    );
    println!("== GET /api/v1/me, 4 connections");
    let me = wrk(
        &format!("{base}/api/v1/me"),
        4,
        seconds,
        &me_env,
        Some(&format!("{bench}/me.lua")),
    );
    println!(
        "reconciliation at {count} payments: {:.0} req/s, p99 {:.1} ms; /api/v1/me: {:.0} req/s, p99 {:.2} ms",
        rec.rps, rec.p99_ms, me.rps, me.p99_ms
    );
    ticker.abort();
}
