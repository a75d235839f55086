//! Card payments end to end against the local Stripe fake (`infra/stripe_fake.py`): a clinic
//! admin connects the clinic's Stripe account through onboarding; a patient pays part of a
//! statement through Checkout and someone without an account pays the rest with the
//! statement's code; webhooks are verified, kept once and applied in batches by the clinic's
//! drain job, so events delivered twice and out of order pay nothing twice, and an event that
//! cannot be applied is set aside without holding up the others;
//! Stripe answering 5xx after doing the work is retried with the same key (one Checkout page,
//! not two); Stripe down leaves nothing charged and says so.

use portal_domain::clock::Clock;
use portal_tests::cards::*;
use portal_tests::stripe_fake::{WEBHOOK_SECRET, signature};
use portal_tests::{Browser, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn a_patient_pays_part_by_card_and_someone_without_an_account_pays_the_rest_by_code() {
    let w = world().await;
    onboard(&w).await;
    let id = statement(&w, &w.ana, "100.00").await;

    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(bill.contains("Pay online"), "{bill}");
    // More than is due, nothing, or not a number: refused before anything is recorded.
    for (amount, words) in [
        ("100.01", "more than the $100.00 still due"),
        ("0", "more than zero"),
        ("-5", "in numbers"),
    ] {
        let resp = ana
            .post_form(&format!("/bills/{id}/pay"), &[("amount", amount)])
            .await;
        assert_eq!(resp.status(), 422, "{amount}");
        assert!(resp.text().await.unwrap().contains(words), "{amount}");
    }
    let resp = patient_checkout(&mut ana, &id, "40").await;
    assert_eq!(resp.status(), 303);
    let checkout = location(&resp);
    assert!(checkout.starts_with(&w.stripe.url()), "{checkout}");
    // A declined card charges nothing and stays on Stripe's page.
    let resp = pay_on_stripe(&checkout, "4000 0000 0000 0002").await;
    assert_eq!(resp.status(), 402);
    let resp = pay_on_stripe(&checkout, "4242 4242 4242 4242").await;
    assert_eq!(resp.status(), 303);
    let back = path_of(&location(&resp));
    assert!(
        back.starts_with(&format!("/bills/{id}/paid?payment=pay_")),
        "{back}"
    );
    let ana_back = back.clone();
    let (status, page) = ana.page(&back).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("has received your payment of $40.00"),
        "{page}"
    );
    settled(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (6000, 6000, 2));
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(bill.contains("Part paid"), "{bill}");
    let marker = "data-testid=\"guest-code\">";
    let code_at = bill.find(marker).unwrap() + marker.len();
    let code = bill[code_at..code_at + 14].to_owned();

    // Someone without an account: the code shows the amount due and the clinic, nothing else.
    let mut guest = w.app.browser(&w.host);
    let resp = guest.post_form("/pay", &[("code", "K7QF-M2X9-PA4D")]).await;
    assert_eq!(resp.status(), 404);
    let resp = guest
        .post_form("/pay", &[("code", &code.to_lowercase())])
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("$60.00"), "{page}");
    for private in ["Ana", "Tester", "Office visit", "99213"] {
        assert!(!page.contains(private), "the guest page shows {private}");
    }
    let resp = guest
        .post_form("/pay/checkout", &[("code", &code), ("amount", "60.01")])
        .await;
    assert_eq!(resp.status(), 422);
    let resp = guest
        .post_form("/pay/checkout", &[("code", &code), ("amount", "60")])
        .await;
    assert_eq!(resp.status(), 303);
    let resp = pay_on_stripe(&location(&resp), "5555555555554444").await;
    let back = path_of(&location(&resp));
    assert!(back.starts_with("/pay/done?payment=pay_"), "{back}");
    let (_, page) = guest.page(&back).await;
    assert!(
        page.contains("has received your payment of $60.00"),
        "{page}"
    );
    assert!(!page.contains("Ana"));
    // Only the browser that paid sees how it ended; a patient's own payment never shows here.
    assert_eq!(w.app.browser(&w.host).page(&back).await.0, 404);
    let ana_payment = ana_back.split("payment=").nth(1).unwrap().to_owned();
    assert_eq!(
        guest
            .page(&format!("/pay/done?payment={ana_payment}"))
            .await
            .0,
        404
    );
    settled(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (0, 0, 3));
    let resp = guest.post_form("/pay", &[("code", &code)]).await;
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("This statement is paid")
    );
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(
        bill.contains(">Paid<") && !bill.contains("Pay online"),
        "{bill}"
    );
    assert!(!bill.contains("/refund"), "patients get no refund link");

    // Billing staff see both payments and refund part of the guest's; more than is left of it
    // is refused, and the refund goes back onto the account once.
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let refunds = refund_links(&mut staff, &id).await;
    assert_eq!(refunds.len(), 2, "two card payments");
    let guests = &refunds[1];
    let resp = staff.post_form(guests, &[("amount", "60.01")]).await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("more than the $60.00 that can be refunded")
    );
    let resp = staff
        .post_form(guests, &[("amount", "15"), ("reason", "Duplicate lab fee")])
        .await;
    assert_eq!(resp.status(), 200, "asks first");
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Refund $15.00 to Ana Tester")
    );
    // The confirmation names its refund: sent twice (a double click), it refunds once.
    let confirmed = [
        ("amount", "15"),
        ("reason", "Duplicate lab fee"),
        ("refund", "rfd_01a22e4d35b8700090aef91396976de1"),
        ("confirmed", "1"),
    ];
    for _ in 0..2 {
        let resp = staff.post_form(guests, &confirmed).await;
        assert_eq!(resp.status(), 303);
        let to = location(&resp);
        assert!(to.ends_with("?done=refunded"), "{to}");
    }
    settled(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (1500, 1500, 4));
    let (_, page) = staff.page(guests).await;
    assert!(page.contains("$45.00"), "what is left: {page}");
    assert_eq!(w.stripe.objects("refund").await.len(), 1);

    // Ben cannot pay (or see) Ana's statement.
    let mut ben = w.app.sign_in(&w.host, "ben@example.com", PASSWORD).await;
    assert_eq!(ben.page(&format!("/bills/{id}/pay")).await.0, 404);
    let resp = ben
        .post_form(
            &format!("/bills/{id}/pay"),
            &[("amount", "1"), ("confirmed", "1")],
        )
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn webhooks_are_verified_and_kept_once() {
    let w = world().await;
    onboard(&w).await;
    let platform = w.app.db.config.base_domain.clone();
    let events = w.stripe.read("/_fake/events").await;
    let event = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "account.updated")
        .cloned()
        .expect("onboarding sent account.updated");
    let body = event["body"].as_str().unwrap().to_owned();
    let post = |body: String, signature: String| {
        let app = &w.app;
        let platform = platform.clone();
        async move {
            app.client
                .post(format!("http://{}/webhooks/stripe", app.addr))
                .header("host", platform)
                .header("stripe-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let now = w.app.clock.now().timestamp();
    let sign = |body: &str, t: i64, secret: &str| signature(body.as_bytes(), t, secret);
    // Unsigned, wrongly signed, tampered, too old: refused.
    assert_eq!(post(body.clone(), String::new()).await, 400);
    assert_eq!(
        post(body.clone(), sign(&body, now, "whsec_wrong")).await,
        400
    );
    let tampered = body.replace("account.updated", "payout.paid");
    assert_eq!(post(tampered, sign(&body, now, WEBHOOK_SECRET)).await, 400);
    assert_eq!(
        post(body.clone(), sign(&body, now - 301, WEBHOOK_SECRET)).await,
        400
    );
    // A rotated secret: the header carries the old and the new signature.
    let both = format!(
        "{},v1=00{}",
        sign(&body, now, WEBHOOK_SECRET),
        "ab".repeat(31)
    );
    assert_eq!(post(body.clone(), both).await, 200);
    // The same event again (Stripe retries): kept once.
    assert_eq!(
        post(body.clone(), sign(&body, now, WEBHOOK_SECRET)).await,
        200
    );
    settled(&w).await;
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE id = $1")
        .bind(event["id"].as_str().unwrap())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(kept, 1);
    // On a clinic's site, the endpoint is not there.
    let status = w
        .app
        .client
        .post(format!("http://{}/webhooks/stripe", w.app.addr))
        .header("host", &w.host)
        .header("stripe-signature", sign(&body, now, WEBHOOK_SECRET))
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

/// Deliveries that arrive while a clinic's commit runs are kept together in its next one, each
/// once; an event the database refuses fails its own delivery, not the others of its batch.
#[tokio::test]
async fn a_burst_of_deliveries_shares_commits_and_one_refused_event_fails_alone() {
    let w = world().await;
    onboard(&w).await;
    settled(&w).await;
    let events = w.stripe.read("/_fake/events").await;
    let account = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| {
            let body: serde_json::Value = serde_json::from_str(e["body"].as_str()?).ok()?;
            body["account"].as_str().map(str::to_owned)
        })
        .expect("onboarding sent a Connect event");
    let now = w.app.clock.now().timestamp();
    let post = |id: &str, customer: &str| {
        let body = json!({
            "id": id, "object": "event", "type": "customer.updated", "account": account,
            "created": now, "data": {"object": {"id": customer, "object": "customer"}},
        })
        .to_string();
        let request = w
            .app
            .client
            .post(format!("http://{}/webhooks/stripe", w.app.addr))
            .header("host", &w.app.db.config.base_domain)
            .header(
                "stripe-signature",
                signature(body.as_bytes(), now, WEBHOOK_SECRET),
            )
            .body(body);
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    };
    let db = w.app.db.tenant_db().await;
    // Holds the clinic's inbox lock as the drain's last look does, until the first delivery's
    // commit waits for it; the deliveries sent meanwhile wait for that commit.
    let hold = |lock: &'static str| {
        let (db, tenant) = (db.clone(), w.tenant.clone());
        async move {
            let mut tx = db.begin(&tenant).await.unwrap();
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtextextended($1 || current_schema(), 0))",
            )
            .bind(lock)
            .execute(tx.conn())
            .await
            .unwrap();
            tx
        }
    };
    let commit_waits = || async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks
                 WHERE locktype = 'advisory' AND NOT granted
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&w.app.db.admin)
            .await
            .unwrap();
            if n >= 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let stored = |pattern: &'static str| {
        let db = db.clone();
        let tenant = w.tenant.clone();
        async move {
            let mut tx = db.begin(&tenant).await.unwrap();
            let counts: (i64, i64) = sqlx::query_as(
                "SELECT count(*), count(DISTINCT xmin::text) FROM stripe_events WHERE id LIKE $1",
            )
            .bind(pattern)
            .fetch_one(tx.conn())
            .await
            .unwrap();
            tx.commit().await.unwrap();
            counts
        }
    };

    // The drain lock held as a running drain holds it: a drain queued meanwhile ends at once,
    // so no event is applied (which would rewrite its row) until the commits are counted.
    let no_drain = hold("stripe_drain ").await;

    // Twenty events, one of them delivered twice, behind one waiting commit.
    let held = hold("stripe_inbox ").await;
    let first = post("evt_burst_first", "cus_burst");
    commit_waits().await;
    let mut burst: Vec<_> = (0..20)
        .map(|n| post(&format!("evt_burst_{n:02}"), "cus_burst"))
        .collect();
    burst.push(post("evt_burst_07", "cus_burst"));
    // Time for the deliveries to reach the server; one that comes later still gets kept, in
    // a later commit.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    // Nothing is answered before it is stored.
    assert!(!first.is_finished() && !burst.iter().any(|d| d.is_finished()));
    held.commit().await.unwrap();
    assert_eq!(first.await.unwrap(), 200);
    for delivery in burst {
        assert_eq!(delivery.await.unwrap(), 200);
    }
    let (kept, commits) = stored("evt_burst_%").await;
    assert_eq!(kept, 21, "each event once");
    assert!(
        commits < 21,
        "21 events in {commits} commits: the burst shares them"
    );

    // An object id PostgreSQL cannot store (a NUL character) in the next burst: its delivery
    // fails and Stripe will send it again; the rest of its batch is kept.
    let held = hold("stripe_inbox ").await;
    let first = post("evt_again_first", "cus_burst");
    commit_waits().await;
    let burst: Vec<_> = (0..10)
        .map(|n| post(&format!("evt_again_{n:02}"), "cus_burst"))
        .collect();
    let refused = post("evt_again_nul", "cus_\u{0}burst");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!refused.is_finished());
    held.commit().await.unwrap();
    assert_eq!(first.await.unwrap(), 200);
    for delivery in burst {
        assert_eq!(delivery.await.unwrap(), 200);
    }
    assert_eq!(refused.await.unwrap(), 500);
    assert_eq!(
        stored("evt_again_%").await,
        (11, 11),
        "all but the refused one, the refused batch's events each in a commit of its own"
    );

    // Every event kept is applied by the next drain (a real drain holding the lock would
    // queue it as it ends; the hourly sweep would too).
    no_drain.commit().await.unwrap();
    let mut tx = db.begin(&w.tenant).await.unwrap();
    portal_domain::jobs::enqueue(&mut tx, &portal_domain::jobs::Job::StripeInbox {})
        .await
        .unwrap();
    tx.commit().await.unwrap();
    settled(&w).await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE applied_at IS NULL")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(waiting, 0, "every event kept is applied");
}

#[tokio::test]
async fn events_delivered_twice_and_out_of_order_pay_each_payment_once() {
    let w = world().await;
    onboard(&w).await;
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    w.stripe.control("/_fake/webhooks/hold", json!({})).await;
    let mut ids = Vec::new();
    for charge in ["30", "45.50", "80"] {
        let id = statement(&w, &w.ana, charge).await;
        let resp = patient_checkout(&mut ana, &id, "25").await;
        let resp = pay_on_stripe(&location(&resp), "4242424242424242").await;
        assert_eq!(resp.status(), 303);
        // The patient closes the tab: only Stripe's events will settle it.
        ids.push(id);
    }
    assert_eq!(
        ledger(&w, &w.ana).await.2,
        3,
        "three charges, nothing paid yet"
    );
    let released = w
        .stripe
        .control(
            "/_fake/webhooks/release",
            json!({"shuffle": true, "twice": true, "seed": 7}),
        )
        .await;
    assert!(released["released"].as_i64().unwrap() >= 12, "{released}");
    settled(&w).await;
    // 30 + 45.50 + 80 charged, 3 × 25 paid, each once.
    assert_eq!(ledger(&w, &w.ana).await, (8050, 8050, 6));
    for id in &ids {
        let (_, bill) = ana.page(&format!("/bills/{id}")).await;
        assert!(bill.contains("$25.00"), "{bill}");
        assert_eq!(
            bill.matches("data-testid=\"receipt-link\"").count(),
            1,
            "the payment's receipt to open: {bill}"
        );
    }
    // Ana is told once for each set of payments settled together (one email a job), however
    // often their events came.
    let told = portal_tests::read_emails(&w.app.mail_dir)
        .into_iter()
        .filter(|e| e.to == "ana@example.com" && e.subject.contains("Payment received"))
        .count();
    let jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM control.job_deliveries WHERE kind = 'payment.receipts'",
    )
    .fetch_one(&w.app.db.admin)
    .await
    .unwrap();
    assert!((1..=3).contains(&told), "{told} emails");
    assert_eq!(told as i64, jobs, "one email a job");
}

#[tokio::test]
async fn stripe_failing_after_doing_the_work_makes_one_page_and_stripe_down_charges_nothing() {
    let w = world().await;
    onboard(&w).await;
    let id = statement(&w, &w.ana, "50").await;
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    w.stripe
        .control(
            "/_fake/faults",
            json!({"method": "POST", "path": "/v1/checkout/sessions", "mode": "error_after", "count": 1}),
        )
        .await;
    let resp = patient_checkout(&mut ana, &id, "50").await;
    assert_eq!(
        resp.status(),
        303,
        "the retry with the same key got the page"
    );
    let sessions = w.stripe.objects("checkout_session").await;
    assert_eq!(
        sessions.len(),
        1,
        "one Checkout page, not two: {sessions:?}"
    );
    let requests = w.stripe.read("/_fake/requests").await;
    let creates: Vec<_> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/checkout/sessions")
        .cloned()
        .collect();
    assert_eq!(creates.len(), 2, "{creates:?}");
    assert_eq!(creates[0]["idempotency_key"], creates[1]["idempotency_key"]);
    let resp = pay_on_stripe(&location(&resp), "4242424242424242").await;
    assert_eq!(resp.status(), 303);
    settled(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (0, 0, 2));

    // A refund whose answer is lost after Stripe made it: retried with the same key, one refund.
    w.stripe
        .control(
            "/_fake/faults",
            json!({"method": "POST", "path": "/v1/refunds", "mode": "error_after", "count": 1}),
        )
        .await;
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let link = refund_links(&mut staff, &id).await.remove(0);
    let resp = staff
        .post_form(&link, &[("amount", "10"), ("confirmed", "1")])
        .await;
    assert_eq!(resp.status(), 303);
    settled(&w).await;
    assert_eq!(w.stripe.objects("refund").await.len(), 1);
    assert_eq!(ledger(&w, &w.ana).await, (1000, 1000, 3));

    // Stripe down for every attempt: nothing charged, and the patient is told so.
    let id = statement(&w, &w.ana, "20").await;
    w.stripe
        .control(
            "/_fake/faults",
            json!({"method": "POST", "path": "/v1/checkout/sessions", "mode": "error_before", "count": 10}),
        )
        .await;
    let resp = patient_checkout(&mut ana, &id, "20").await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("nothing was charged"), "{page}");
    w.stripe.clear_faults().await;
    assert_eq!(ledger(&w, &w.ana).await, (3000, 3000, 4));
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = 'pending'")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        pending, 0,
        "the payment that never reached Stripe is closed"
    );
}

#[tokio::test]
async fn money_arriving_for_a_statement_voided_meanwhile_becomes_a_credit() {
    let w = world().await;
    onboard(&w).await;
    let id = statement(&w, &w.ana, "70").await;
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let resp = patient_checkout(&mut ana, &id, "70").await;
    let checkout = location(&resp);
    // Billing voids the statement while the patient is on Stripe's page.
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let (_, page) = staff.page(&format!("/billing/statements/{id}")).await;
    let at = page.find("name=\"version\" value=\"").unwrap() + 22;
    let version = page[at..at + page[at..].find('"').unwrap()].to_owned();
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/void"),
            &[
                ("version", &version),
                ("reason", "Billed in error"),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = pay_on_stripe(&checkout, "4242424242424242").await;
    assert_eq!(resp.status(), 303);
    settled(&w).await;
    // Charge 70, void −70, payment −70: the money taken is a credit, not lost.
    assert_eq!(ledger(&w, &w.ana).await, (-7000, -7000, 3));
    let (_, bills) = ana.page("/bills").await;
    assert!(bills.contains("Your credit"), "{bills}");
}

#[tokio::test]
async fn reconciliation_recovers_a_lost_webhook_lists_what_does_not_match_and_payouts_add_up() {
    let w = world().await;
    onboard(&w).await;
    let id = statement(&w, &w.ana, "50").await;
    let account = w.stripe.objects("account").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Stripe's events for this payment are lost, and the patient closes the tab on Stripe's
    // page: nothing tells the portal it was paid.
    w.stripe.control("/_fake/webhooks/hold", json!({})).await;
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let resp = patient_checkout(&mut ana, &id, "50").await;
    let resp = pay_on_stripe(&location(&resp), "4242424242424242").await;
    assert_eq!(resp.status(), 303);
    // Someone charges a card on the clinic's account outside the portal.
    let stray = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", w.stripe.url()))
        .bearer_auth(portal_tests::stripe_fake::SECRET_KEY)
        .header("stripe-account", &account)
        .form(&[
            ("amount", "1234"),
            ("currency", "usd"),
            ("payment_method", "pm_card_visa"),
            ("confirm", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        stray.status().is_success(),
        "{}",
        stray.text().await.unwrap()
    );
    assert_eq!(ledger(&w, &w.ana).await, (5000, 5000, 1));

    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let (_, page) = staff.page("/billing/reconciliation").await;
    assert!(page.contains(">never<"), "{page}");
    let resp = staff.post_form("/billing/reconciliation/check", &[]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(w.app.jobs_settled().await, 0);
    assert_eq!(
        ledger(&w, &w.ana).await,
        (0, 0, 2),
        "the lost payment is settled"
    );
    let (_, page) = staff.page("/billing/reconciliation").await;
    assert_eq!(page.matches("data-testid=\"item\"").count(), 1, "{page}");
    assert!(page.contains("Stripe payment with no statement"), "{page}");
    assert!(page.contains("$12.34"), "{page}");

    // The events arrive late after all: nothing is paid twice. Then Stripe pays out.
    w.stripe
        .control("/_fake/webhooks/release", json!({"twice": true}))
        .await;
    settled(&w).await;
    w.stripe
        .control("/_fake/payouts", json!({"account": account}))
        .await;
    settled(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (0, 0, 2));
    let (_, page) = staff.page("/billing/payouts").await;
    assert!(page.contains("Adds up"), "{page}");
    assert!(
        page.contains("Ana Tester"),
        "the payment is matched to its patient: {page}"
    );
    assert_eq!(
        page.matches("data-testid=\"payout-line\"").count(),
        2,
        "{page}"
    );
    let (_, page) = staff.page("/billing/reconciliation").await;
    assert_eq!(page.matches("data-testid=\"item\"").count(), 1, "{page}");

    // The books: every payment as CSV, with its statement, patient and payout.
    let resp = staff.get("/billing/payments.csv").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "a header and Ana's payment: {csv}");
    assert!(
        rows[0].starts_with("date,statement,patient,method"),
        "{csv}"
    );
    assert!(
        rows[1].contains(",Ana Tester,card,patient,succeeded,USD,50.00,0.00,"),
        "{csv}"
    );
    assert!(
        rows[1].ends_with(&format!(",{}", payout_of(&w).await)),
        "{csv}"
    );

    // On screen: the newest payments with their statements.
    let (_, page) = staff.page("/billing/payments").await;
    assert_eq!(
        page.matches("data-testid=\"payment-row\"").count(),
        1,
        "{page}"
    );
    assert!(
        page.contains("Ana Tester")
            && page.contains("The patient, online")
            && page.contains("$50.00"),
        "{page}"
    );

    // And the payouts: one row per transaction inside, the payment's matched to its patient.
    let resp = staff.get("/billing/payouts.csv").await;
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "a header and the payout's two lines: {csv}");
    let payout = payout_of(&w).await;
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.starts_with(&format!("{payout},"))),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains(",yes,charge,USD,50.00,") && r.ends_with(",Ana Tester")),
        "{csv}"
    );
}

/// The one payout the stand-in made.
async fn payout_of(w: &World) -> String {
    w.stripe.objects("payout").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The PaymentIntent of the patient's card payment on statement `id`.
async fn intent_of(w: &World, id: &str) -> String {
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    let pi: String = sqlx::query_scalar(
        "SELECT stripe_payment_intent FROM payments
         WHERE statement_id = $1 AND status = 'succeeded'",
    )
    .bind(
        portal_domain::ids::StatementId::parse(id)
            .expect("a statement id")
            .as_uuid(),
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    pi
}

/// A statement of `charge` paid in full by card by Ana, settled; its id and PaymentIntent.
async fn paid_by_card(w: &World, ana: &mut Browser, charge: &str) -> (String, String) {
    let id = statement(w, &w.ana, charge).await;
    let resp = patient_checkout(ana, &id, charge).await;
    let resp = pay_on_stripe(&location(&resp), "4242424242424242").await;
    assert_eq!(resp.status(), 303);
    settled(w).await;
    let pi = intent_of(w, &id).await;
    (id, pi)
}

#[tokio::test]
async fn disputes_are_listed_and_one_lost_or_accepted_puts_the_amount_back_on_the_account_once() {
    let w = world().await;
    onboard(&w).await;
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let (lost, lost_pi) = paid_by_card(&w, &mut ana, "60").await;
    let (won, won_pi) = paid_by_card(&w, &mut ana, "25").await;
    let (accepted, accepted_pi) = paid_by_card(&w, &mut ana, "40").await;
    assert_eq!(ledger(&w, &w.ana).await, (0, 0, 6), "three paid in full");
    let (_, page) = staff.page("/billing/disputes").await;
    assert!(page.contains("No disputes"), "{page}");

    let mut ids = Vec::new();
    for pi in [&lost_pi, &won_pi, &accepted_pi] {
        let d = w
            .stripe
            .control(
                "/_fake/disputes",
                json!({"payment_intent": pi, "reason": "fraudulent"}),
            )
            .await;
        ids.push(d["id"].as_str().unwrap().to_owned());
    }
    settled(&w).await;
    let (_, page) = staff.page("/billing/disputes").await;
    assert_eq!(page.matches("data-testid=\"dispute\"").count(), 3, "{page}");
    assert_eq!(page.matches("Needs an answer").count(), 3, "{page}");
    assert!(
        page.contains("Ana Tester") && page.contains("$60.00"),
        "{page}"
    );
    assert!(
        page.contains("did not pay"),
        "the bank's reason in words: {page}"
    );
    let (_, rec) = staff.page("/billing/reconciliation").await;
    assert_eq!(
        rec.matches("Disputed by the cardholder").count(),
        3,
        "{rec}"
    );
    assert_eq!(
        ledger(&w, &w.ana).await,
        (0, 0, 6),
        "open disputes owe nothing yet"
    );
    for id in [&lost, &won, &accepted] {
        assert!(
            refund_links(&mut staff, id).await.is_empty(),
            "money in dispute is not refunded by the clinic"
        );
    }

    // The bank decides: the events arrive twice and out of order.
    w.stripe.control("/_fake/webhooks/hold", json!({})).await;
    w.stripe
        .control(
            &format!("/_fake/disputes/{}/decide", ids[0]),
            json!({"status": "lost"}),
        )
        .await;
    w.stripe
        .control(
            &format!("/_fake/disputes/{}/decide", ids[1]),
            json!({"status": "won"}),
        )
        .await;
    w.stripe
        .control(
            "/_fake/webhooks/release",
            json!({"shuffle": true, "twice": true, "seed": 11}),
        )
        .await;
    settled(&w).await;
    assert_eq!(
        ledger(&w, &w.ana).await,
        (6000, 6000, 7),
        "the lost $60 is owed again, once; the won one changes nothing"
    );
    let (_, bill) = ana.page(&format!("/bills/{lost}")).await;
    assert!(bill.contains("taken back by the card"), "{bill}");
    assert!(bill.contains("$60.00"), "{bill}");
    let (_, bill) = ana.page(&format!("/bills/{won}")).await;
    assert!(!bill.contains("taken back"), "{bill}");
    assert_eq!(
        refund_links(&mut staff, &won).await.len(),
        1,
        "a dispute won leaves the payment the clinic's to refund"
    );
    assert!(refund_links(&mut staff, &lost).await.is_empty());

    // Billing staff accept the third after a check; Stripe's own event for it changes
    // nothing more.
    let resp = staff
        .post_form(&format!("/billing/disputes/{}/accept", ids[2]), &[])
        .await;
    assert_eq!(resp.status(), 200, "asks first");
    assert!(resp.text().await.unwrap().contains("s dispute of $40.00?"));
    let resp = staff
        .post_form(
            &format!("/billing/disputes/{}/accept", ids[2]),
            &[("confirmed", "1")],
        )
        .await;
    assert_eq!(location(&resp), "/billing/disputes?done=accepted");
    settled(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (10000, 10000, 8));
    let (_, page) = staff.page("/billing/disputes").await;
    assert_eq!(
        page.matches("Lost: the money went back").count(),
        2,
        "{page}"
    );
    assert_eq!(page.matches("Won: the money stays").count(), 1, "{page}");
    assert!(!page.contains("data-testid=\"accept-dispute\""), "{page}");
    let (_, rec) = staff.page("/billing/reconciliation").await;
    assert!(!rec.contains("Disputed by the cardholder"), "{rec}");
    // Accepting again does nothing (it is closed); a made-up id neither.
    for id in [ids[2].as_str(), "dp_made_up"] {
        let resp = staff
            .post_form(
                &format!("/billing/disputes/{id}/accept"),
                &[("confirmed", "1")],
            )
            .await;
        assert_eq!(location(&resp), "/billing/disputes");
    }
    assert_eq!(ledger(&w, &w.ana).await, (10000, 10000, 8));
    let (_, bill) = ana.page(&format!("/bills/{accepted}")).await;
    assert!(bill.contains("$40.00 taken back by the card"), "{bill}");
}

#[tokio::test]
async fn an_event_stripe_will_not_show_is_set_aside_and_the_others_are_applied() {
    let w = world().await;
    onboard(&w).await;
    let account = w.stripe.objects("account").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Signed by Stripe's secret, for the clinic's account, naming a refund Stripe has never
    // made: reading it back is refused (404).
    let now = w.app.clock.now().timestamp();
    let body = json!({
        "id": "evt_unknown_refund", "object": "event", "type": "refund.updated",
        "account": account, "created": now, "livemode": false, "pending_webhooks": 1,
        "data": {"object": {"id": "re_never_made", "object": "refund"}}
    })
    .to_string();
    let signature = signature(body.as_bytes(), now, WEBHOOK_SECRET);
    let status = w
        .app
        .client
        .post(format!("http://{}/webhooks/stripe", w.app.addr))
        .header("host", w.app.db.config.base_domain.clone())
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // A payment after it is settled by its own events all the same.
    let id = statement(&w, &w.ana, "60").await;
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let resp = patient_checkout(&mut ana, &id, "60").await;
    let resp = pay_on_stripe(&location(&resp), "4242424242424242").await;
    assert_eq!(resp.status(), 303);
    settled(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (0, 0, 2), "charged and paid");
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    let (failure, applied): (Option<String>, bool) = sqlx::query_as(
        "SELECT failure, applied_at IS NOT NULL FROM stripe_events WHERE id = 'evt_unknown_refund'",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM stripe_events WHERE applied_at IS NULL AND failure IS NULL",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    // The payment's PaymentIntent events carried the intent, kept to apply as it came.
    let (carried, without): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE snapshot->>'status' = 'succeeded'),
                count(*) FILTER (WHERE snapshot IS NULL)
         FROM stripe_events WHERE object_type = 'payment_intent'",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((carried, without), (1, 0));
    assert!(!applied);
    assert!(
        failure
            .as_deref()
            .is_some_and(|f| f.starts_with("stripe refused: 404")),
        "{failure:?}"
    );
    assert_eq!(waiting, 0, "every other event was applied");
}

/// A dispute Stripe sends before the event of the payment it is about: the payments of the
/// batch are settled together (`settle_many`) and the dispute still ends up on its payment,
/// whichever of the two the drain met first.
#[tokio::test]
async fn a_dispute_sent_before_its_payments_event_still_lands_on_the_payment() {
    let w = world().await;
    onboard(&w).await;
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    w.stripe.control("/_fake/webhooks/hold", json!({})).await;
    let mut ids = Vec::new();
    for charge in ["70", "20"] {
        let id = statement(&w, &w.ana, charge).await;
        let resp = patient_checkout(&mut ana, &id, charge).await;
        let resp = pay_on_stripe(&location(&resp), "4242424242424242").await;
        assert_eq!(resp.status(), 303);
        ids.push(id);
    }
    // The $70 payment's intent, from Stripe (the portal has not heard of it yet).
    let intents = w.stripe.objects("payment_intent").await;
    let disputed = intents
        .iter()
        .find(|i| i["amount"] == 7000)
        .and_then(|i| i["id"].as_str())
        .expect("the $70 intent")
        .to_owned();
    w.stripe
        .control(
            "/_fake/disputes",
            json!({"payment_intent": disputed, "reason": "fraudulent"}),
        )
        .await;
    assert_eq!(
        ledger(&w, &w.ana).await,
        (9000, 9000, 2),
        "nothing applied yet"
    );
    w.stripe
        .control(
            "/_fake/webhooks/release",
            json!({"shuffle": true, "twice": true, "seed": 3}),
        )
        .await;
    settled(&w).await;
    assert_eq!(
        ledger(&w, &w.ana).await,
        (0, 0, 4),
        "both paid in full, once; an open dispute owes nothing yet"
    );
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let (_, page) = staff.page("/billing/disputes").await;
    assert_eq!(page.matches("data-testid=\"dispute\"").count(), 1, "{page}");
    assert!(
        page.contains("Ana Tester") && page.contains("$70.00"),
        "the dispute is on Ana's $70 payment: {page}"
    );
    let (_, bill) = ana.page(&format!("/bills/{}", ids[1])).await;
    assert!(!bill.contains("taken back"), "{bill}");
}
