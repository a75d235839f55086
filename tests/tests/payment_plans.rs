//! Payment plans and autopay against the local Stripe fake: billing staff split a statement
//! into monthly instalments; the patient pays the first by card and saves it; on each later
//! due date the worker charges the saved card once (however often it runs); a declined card
//! is marked, the patient told by an email with no amount, and it is not tried again; Stripe
//! taking a charge but its answer never arriving is sent again under the same key and taken
//! once; the patient turns automatic payments off; voiding the statement ends the plan.

use chrono::{Duration, NaiveDate};
use portal_domain::clock::Clock;
use portal_domain::jobs::{self, Job};
use portal_tests::cards::*;
use portal_tests::{Browser, PASSWORD, read_emails};
use serde_json::json;

fn clinic_today(w: &World) -> NaiveDate {
    w.app
        .clock
        .now()
        .with_timezone(&portal_domain::scheduling::clinic_tz(&w.tenant))
        .date_naive()
}

/// Billing staff set up a plan of `count` instalments from `first`; returns the answer.
async fn set_up_plan(staff: &mut Browser, id: &str, count: &str, first: &str) -> reqwest::Response {
    staff
        .post_form(
            &format!("/billing/statements/{id}/plan"),
            &[("count", count), ("first_due", first)],
        )
        .await
}

/// Ana pays the plan's next instalment by card and saves the card for the rest.
async fn pay_instalment_and_save_card(w: &World, ana: &mut Browser, id: &str) {
    let (status, form) = ana.page(&format!("/bills/{id}/pay?instalment=1")).await;
    assert_eq!(status, 200);
    assert!(
        form.contains("value=\"30.00\""),
        "the instalment's amount: {form}"
    );
    assert!(
        form.contains("name=\"autopay\" value=\"1\" data-testid=\"autopay\">"),
        "offered, not ticked for her: {form}"
    );
    let resp = ana
        .post_form(
            &format!("/bills/{id}/pay"),
            &[("amount", "30.00"), ("autopay", "1")],
        )
        .await;
    let ask = resp.text().await.unwrap();
    assert!(
        ask.contains("it is charged each following instalment on its due date"),
        "{ask}"
    );
    let resp = ana
        .post_form(
            &format!("/bills/{id}/pay"),
            &[("amount", "30.00"), ("autopay", "1"), ("confirmed", "1")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = outside()
        .post(location(&resp))
        .form(&[("card", "4242424242424242")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    settled(w).await;
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(bill.contains("data-testid=\"autopay-on\""), "{bill}");
}

/// Runs the autopay job for the clinic (as the hourly sweep queues it) and waits for it.
async fn run_autopay(w: &World) {
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    jobs::enqueue(&mut tx, &Job::Autopay {}).await.unwrap();
    tx.commit().await.unwrap();
    settled(w).await;
}

/// The instalment tags on Ana's statement page, in order (signed in afresh: the test's clock
/// moves by months, past any session).
async fn instalment_tags(w: &World, id: &str) -> Vec<String> {
    let mut b = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let (_, page) = b.page(&format!("/bills/{id}")).await;
    page.match_indices("<span class=\"tag tag-")
        .map(|(at, _)| {
            let rest = &page[at..];
            let text = &rest[rest.find('>').unwrap() + 1..];
            text[..text.find('<').unwrap()].to_owned()
        })
        .filter(|t| !t.is_empty())
        .skip(1) // the statement's own status tag
        .collect()
}

fn intents_made(objects: &[serde_json::Value]) -> usize {
    objects.len()
}

#[tokio::test]
async fn autopay_takes_each_instalment_once_on_its_date_and_a_declined_card_is_told_not_retried() {
    let w = world().await;
    onboard(&w).await;
    let id = statement(&w, &w.ana, "90.00").await;
    let today = clinic_today(&w);
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;

    // Bad input is refused with words on the form, and nothing is set up.
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    for (count, first, words) in [
        (
            "1",
            day(today + Duration::days(5)),
            "Choose between 2 and 24 instalments.",
        ),
        (
            "25",
            day(today + Duration::days(5)),
            "Choose between 2 and 24 instalments.",
        ),
        (
            "3",
            day(today - Duration::days(1)),
            "cannot be due in the past",
        ),
        ("3", "next week".to_owned(), "such as 2027-01-15"),
        (
            "200",
            day(today + Duration::days(5)),
            "Choose between 2 and 24",
        ),
    ] {
        let resp = set_up_plan(&mut staff, &id, count, &first).await;
        assert_eq!(resp.status(), 422, "{count} {first}");
        assert!(
            resp.text().await.unwrap().contains(words),
            "{count} {first}"
        );
    }
    let first = today + Duration::days(5);
    let resp = set_up_plan(&mut staff, &id, "3", &day(first)).await;
    assert_eq!(resp.status(), 303);
    let (_, page) = staff
        .page(&format!("/billing/statements/{id}?done=plan"))
        .await;
    assert!(page.contains("Payment plan: 3 instalments"), "{page}");
    assert_eq!(page.matches("data-testid=\"instalment\"").count(), 3);
    let resp = set_up_plan(&mut staff, &id, "2", &day(first)).await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("already has a payment plan")
    );

    // Ana pays the first instalment early and saves her card.
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(bill.contains("Pay instalment 1 ($30.00"), "{bill}");
    pay_instalment_and_save_card(&w, &mut ana, &id).await;
    assert_eq!(
        instalment_tags(&w, &id).await,
        ["Paid", "Upcoming", "Upcoming"]
    );
    assert_eq!(intents_made(&w.stripe.objects("payment_intent").await), 1);

    // Nothing is charged before the second date, however often the worker runs.
    w.app.clock.set(w.app.clock.now() + Duration::days(30));
    w.stripe.set_clock(w.app.clock.now().timestamp()).await;
    run_autopay(&w).await;
    assert_eq!(intents_made(&w.stripe.objects("payment_intent").await), 1);

    // On the second date: charged once, with a receipt, whatever runs twice.
    let second = first.checked_add_months(chrono::Months::new(1)).unwrap();
    let at = |d: NaiveDate| {
        d.and_hms_opt(17, 0, 0).unwrap().and_utc() // noon in New York
    };
    w.app.clock.set(at(second));
    w.stripe.set_clock(w.app.clock.now().timestamp()).await;
    run_autopay(&w).await;
    run_autopay(&w).await;
    assert_eq!(intents_made(&w.stripe.objects("payment_intent").await), 2);
    assert_eq!(ledger(&w, &w.ana).await, (3000, 3000, 3));
    assert_eq!(instalment_tags(&w, &id).await, ["Paid", "Paid", "Upcoming"]);
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let (_, page) = staff.page(&format!("/billing/statements/{id}")).await;
    assert!(page.contains("Card (automatic)"), "{page}");

    // The card starts failing; on the third date the charge is declined, marked, told once,
    // and not tried again.
    let card = w.stripe.objects("payment_intent").await[1]["payment_method"]
        .as_str()
        .unwrap()
        .to_owned();
    w.stripe
        .control(
            "/_fake/payment_methods",
            json!({"payment_method": card, "card": "4000000000009995"}),
        )
        .await;
    let third = first.checked_add_months(chrono::Months::new(2)).unwrap();
    w.app.clock.set(at(third));
    w.stripe.set_clock(w.app.clock.now().timestamp()).await;
    run_autopay(&w).await;
    run_autopay(&w).await;
    assert_eq!(ledger(&w, &w.ana).await, (3000, 3000, 3), "nothing taken");
    let declined = w.stripe.objects("payment_intent").await;
    assert_eq!(
        declined.len(),
        3,
        "one try of the declined card: {declined:?}"
    );
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(bill.contains("data-testid=\"autopay-declined\""), "{bill}");
    assert!(bill.contains("insufficient funds"), "{bill}");
    assert_eq!(
        instalment_tags(&w, &id).await,
        ["Paid", "Paid", "Due today"]
    );
    let notices: Vec<_> = read_emails(&w.app.mail_dir)
        .into_iter()
        .filter(|e| e.to == "ana@example.com" && e.subject.contains("did not go through"))
        .collect();
    assert_eq!(notices.len(), 1, "told once");
    assert!(
        !notices[0].text.contains('$'),
        "no amount: {}",
        notices[0].text
    );
    assert!(!notices[0].text.contains("Office visit"), "no service");

    // A day later it is overdue; she turns automatic payments off (after a check).
    w.app.clock.set(at(third) + Duration::days(1));
    assert_eq!(instalment_tags(&w, &id).await, ["Paid", "Paid", "Overdue"]);
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    let resp = ana
        .post_form(&format!("/bills/{id}/autopay/off"), &[])
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Turn off automatic payments?")
    );
    let resp = ana
        .post_form(&format!("/bills/{id}/autopay/off"), &[("confirmed", "1")])
        .await;
    assert_eq!(location(&resp), format!("/bills/{id}?done=autopay_off"));
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(bill.contains("data-testid=\"autopay-off\""), "{bill}");
    // Reading the payment that saved the card again (a repeated event, the hourly
    // reconciliation) does not turn automatic payments back on.
    let first_intent = &w.stripe.objects("payment_intent").await[0];
    let again = portal_stripe::PaymentState {
        id: first_intent["id"].as_str().unwrap().to_owned(),
        status: "succeeded".to_owned(),
        amount: 3000,
        amount_received: 3000,
        currency: "USD".to_owned(),
        metadata: serde_json::from_value(first_intent["metadata"].clone()).unwrap(),
        latest_charge: None,
        created: 0,
        customer: first_intent["customer"].as_str().map(str::to_owned),
        payment_method: first_intent["payment_method"].as_str().map(str::to_owned),
    };
    assert!(again.customer.is_some() && again.payment_method.is_some());
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    portal_domain::billing::card::apply_payment_intent(
        &mut tx,
        &portal_domain::audit::AuditContext::default(),
        &again,
        w.app.clock.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (_, bill) = ana.page(&format!("/bills/{id}")).await;
    assert!(
        bill.contains("data-testid=\"autopay-off\""),
        "stays off: {bill}"
    );

    // Ben cannot see or change Ana's plan.
    let mut ben = w.app.sign_in(&w.host, "ben@example.com", PASSWORD).await;
    let resp = ben
        .post_form(&format!("/bills/{id}/autopay/off"), &[("confirmed", "1")])
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(ben.get(&format!("/bills/{id}")).await.status(), 404);

    // Voiding the statement ends the plan.
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
    let (_, page) = staff.page(&format!("/billing/statements/{id}")).await;
    assert!(!page.contains("data-testid=\"plan\""), "{page}");
}

#[tokio::test]
async fn an_autopay_charge_whose_answer_is_lost_is_sent_again_with_its_key_and_taken_once() {
    let w = world().await;
    onboard(&w).await;
    let id = statement(&w, &w.ana, "90.00").await;
    let first = clinic_today(&w) + Duration::days(1);
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let resp = set_up_plan(&mut staff, &id, "3", &first.format("%Y-%m-%d").to_string()).await;
    assert_eq!(resp.status(), 303);
    let mut ana = w.app.sign_in(&w.host, "ana@example.com", PASSWORD).await;
    pay_instalment_and_save_card(&w, &mut ana, &id).await;

    // Stripe makes the charge but every answer of the worker's first run is lost (the
    // worker might as well have been killed), and no webhook comes meanwhile: the payment
    // stays pending, and the job's next run sends the same request under the same key.
    w.stripe.control("/_fake/webhooks/hold", json!({})).await;
    w.stripe
        .control(
            "/_fake/faults",
            json!({"method": "POST", "path": "/v1/payment_intents", "mode": "error_after", "count": 3}),
        )
        .await;
    let second = first.checked_add_months(chrono::Months::new(1)).unwrap();
    w.app
        .clock
        .set(second.and_hms_opt(17, 0, 0).unwrap().and_utc());
    w.stripe.set_clock(w.app.clock.now().timestamp()).await;
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    jobs::enqueue(&mut tx, &Job::Autopay {}).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(w.app.jobs_settled().await, 0, "the job's retry succeeded");
    assert_eq!(
        ledger(&w, &w.ana).await,
        (3000, 3000, 3),
        "settled by the retry"
    );
    // The webhooks held meanwhile (delivered twice, shuffled) change nothing.
    w.stripe
        .control(
            "/_fake/webhooks/release",
            json!({"twice": true, "shuffle": true, "seed": 7}),
        )
        .await;
    settled(&w).await;
    let requests = w.stripe.read("/_fake/requests").await;
    let keys: Vec<_> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/payment_intents")
        .map(|r| r["idempotency_key"].clone())
        .collect();
    assert_eq!(
        keys.len(),
        4,
        "three lost answers and the job's retry: {keys:?}"
    );
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(
        w.stripe.objects("payment_intent").await.len(),
        2,
        "one charge made"
    );
    assert_eq!(ledger(&w, &w.ana).await, (3000, 3000, 3), "and taken once");
    assert_eq!(instalment_tags(&w, &id).await, ["Paid", "Paid", "Upcoming"]);
}
