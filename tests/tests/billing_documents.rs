//! Statements and receipts on paper, end to end on the real server, job pipeline and typst:
//! a payment taken at the desk sends the patient a "payment received" email with no amount in
//! it and offers its receipt beside the payment, printed when first opened; the patient prints
//! their statement with the code for paying it; billing staff print any issued statement to
//! post and reach a patient's statements and receipts, never the patient's other documents or
//! another patient's. A batch of receipt emails refused halfway tells each patient once. Two
//! people opening a receipt for the first time at once get the same one.

use std::collections::HashMap;

use portal_domain::identity::Role;
use portal_domain::ids::PaymentId;
use portal_tests::bills::{issued_statement, pay, today};
use portal_tests::{Browser, PASSWORD, SmtpSink, TestApp, pdftotext, read_emails};

/// The path a POST redirected to.
fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The first `href` on `page` that starts with `prefix`.
fn href(page: &str, prefix: &str) -> Option<String> {
    let at = page.find(&format!("href=\"{prefix}"))? + "href=\"".len();
    let rest = &page[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The first form `action` on `page` that starts with `prefix`.
fn action(page: &str, prefix: &str) -> Option<String> {
    let at = page.find(&format!("action=\"{prefix}"))? + "action=\"".len();
    let rest = &page[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The document at `path` once the workers have printed it: its page says it is ready, and
/// its download is a PDF, returned as text.
async fn printed(app: &TestApp, b: &mut Browser, path: &str) -> String {
    assert_eq!(app.jobs_settled().await, 0, "no job died");
    let (status, page) = b.page(path).await;
    assert_eq!(status, 200, "{path}: {page}");
    assert!(page.contains("data-status=\"ready\""), "{page}");
    let resp = b.get(&format!("{path}/download")).await;
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!disposition.contains("Ana"), "{disposition}");
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    pdftotext(&bytes)
}

#[tokio::test]
async fn a_desk_payment_brings_a_receipt_and_statements_print_with_their_code() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    let ben = app.patient(&sunrise, "Ben", "ben@example.com").await;
    app.staff(&sunrise, "billing@example.com", Role::Billing)
        .await;
    let mut staff = app.sign_in(&host, "billing@example.com", PASSWORD).await;
    let id = issued_statement(
        &app,
        &mut staff,
        &ana.to_string(),
        &[("Office visit", "99213", "180", "60", "20")],
    )
    .await;
    let day = today(&app);
    let (status, page) = pay(
        &mut staff,
        &id,
        &[
            ("amount", "40"),
            ("method", "cheque"),
            ("reference", "1042"),
            ("received_on", &day),
        ],
    )
    .await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(app.jobs_settled().await, 0);

    // The email says a payment arrived and where the receipt is, never what or how much.
    let emails: Vec<_> = read_emails(&app.mail_dir)
        .into_iter()
        .filter(|e| e.to == "ana@example.com" && e.subject.contains("Payment received"))
        .collect();
    assert_eq!(emails.len(), 1, "one receipt email");
    let email = &emails[0];
    for secret in ["40", "$", "Office visit", "99213", "1042", "cheque"] {
        assert!(
            !email.text.contains(secret) && !email.html.contains(secret),
            "{secret:?} in the email: {}",
            email.text
        );
    }
    assert!(email.link().ends_with("/bills"), "{}", email.link());

    // The receipt sits beside the payment on the patient's statement, not printed until it
    // is opened: nothing waits in the documents.
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let (_, docs) = patient.page("/documents").await;
    assert!(!docs.contains("Payment receipt"), "{docs}");
    let (_, bill) = patient.page(&format!("/bills/{id}")).await;
    let open = action(&bill, "/bills/payments/").expect("a receipt button beside the payment");
    assert!(open.ends_with("/receipt"), "{open}");
    let resp = patient.post_form(&open, &[]).await;
    assert_eq!(resp.status(), 303);
    let receipt = location(&resp);
    assert!(receipt.starts_with("/documents/"), "{receipt}");
    let text = printed(&app, &mut patient, &receipt).await;
    // Opened again, it is the same receipt, now linked beside the payment.
    let resp = patient.post_form(&open, &[]).await;
    assert_eq!(location(&resp), receipt);
    let (_, bill) = patient.page(&format!("/bills/{id}")).await;
    assert_eq!(
        href(&bill, "/documents/").as_deref(),
        Some(receipt.as_str())
    );
    // Another patient's payment answers like a missing one.
    let mut ben_browser = app.sign_in(&host, "ben@example.com", PASSWORD).await;
    let resp = ben_browser.post_form(&open, &[]).await;
    assert_eq!(resp.status(), 404);
    for expected in [
        "Payment receipt",
        "Ana",
        "$40.00",
        "Cheque (1042)",
        "1001",
        "$60.00 is still due on statement 1001",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }

    // The patient prints the statement: services, totals, what is due and how to pay.
    let resp = patient.post_form(&format!("/bills/{id}/pdf"), &[]).await;
    assert_eq!(resp.status(), 303);
    let doc = location(&resp);
    assert!(doc.starts_with("/documents/"), "{doc}");
    let text = printed(&app, &mut patient, &doc).await;
    let (_, staff_page) = staff.page(&format!("/billing/statements/{id}")).await;
    let code_at = staff_page.find("data-testid=\"guest-code\">").unwrap() + 25;
    let code = &staff_page[code_at..code_at + 14];
    for expected in [
        "Statement 1001",
        "Office visit",
        "99213",
        "$180.00",
        "$60.00",
        "$20.00",
        "$40.00",
        "Amount due",
        code,
        "/pay",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }

    // Another patient's statement answers like a missing one.
    let mut other = app.sign_in(&host, "ben@example.com", PASSWORD).await;
    let resp = other.post_form(&format!("/bills/{id}/pdf"), &[]).await;
    assert_eq!(resp.status(), 404);

    // Billing staff print it to post, and see the receipt from the statement's page.
    let resp = staff
        .post_form(&format!("/billing/statements/{id}/pdf"), &[])
        .await;
    assert_eq!(resp.status(), 303);
    let staff_doc = location(&resp);
    assert!(
        staff_doc.starts_with(&format!("/billing/patients/{ana}/documents/")),
        "{staff_doc}"
    );
    let text = printed(&app, &mut staff, &staff_doc).await;
    assert!(
        text.contains("Statement 1001") && text.contains(code),
        "{text}"
    );
    let (_, staff_page) = staff.page(&format!("/billing/statements/{id}")).await;
    let staff_receipt = href(&staff_page, &format!("/billing/patients/{ana}/documents/"))
        .expect("the receipt linked for billing staff");
    // Staff opening it reach the same receipt the patient opened.
    let payment = open.trim_start_matches("/bills/payments/");
    let resp = staff
        .post_form(&format!("/billing/payments/{payment}"), &[])
        .await;
    assert_eq!(location(&resp), staff_receipt);
    assert!(
        staff_receipt.ends_with(receipt.trim_start_matches("/documents")),
        "{staff_receipt} {receipt}"
    );
    assert!(
        printed(&app, &mut staff, &staff_receipt)
            .await
            .contains("$40.00")
    );

    // Never the patient's other documents, nor through another patient's path.
    let resp = patient
        .post_form("/documents", &[("kind", "medication_list")])
        .await;
    assert_eq!(resp.status(), 303);
    let medicines = location(&resp);
    let medicines_id = medicines.rsplit('/').next().unwrap();
    app.jobs_settled().await;
    for path in [
        format!("/billing/patients/{ana}/documents/{medicines_id}"),
        format!("/billing/patients/{ana}/documents/{medicines_id}/download"),
        format!(
            "/billing/patients/{ben}{}",
            &staff_doc[format!("/billing/patients/{ana}").len()..]
        ),
    ] {
        let (status, _) = staff.page(&path).await;
        assert_eq!(status, 404, "{path}");
    }
    let resp = staff
        .post_form(
            &format!("/billing/patients/{ana}/documents/{medicines_id}/retry"),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 404);

    // A statement's PDF cannot be asked for as a record document, by page or API.
    let resp = patient
        .post_form("/documents", &[("kind", "statement")])
        .await;
    assert_ne!(resp.status(), 303);
}

/// "Payment received" emails to `to` in the sink.
fn told(sink: &SmtpSink, to: &str) -> usize {
    read_emails(&sink.dir.0)
        .into_iter()
        .filter(|e| e.to == to && e.subject.contains("Payment received"))
        .count()
}

#[tokio::test]
async fn a_batch_of_receipt_emails_refused_halfway_tells_each_patient_once() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_workers(HashMap::from([("PORTAL_SMTP_URL", sink.url())])).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let who = ["ana@example.com", "ben@example.com", "chloe@example.com"];
    let mut patients = Vec::new();
    for (name, email) in ["Ana", "Ben", "Chloe"].into_iter().zip(who) {
        patients.push(app.patient(&sunrise, name, email).await);
    }
    app.staff(&sunrise, "billing@example.com", Role::Billing)
        .await;
    let mut staff = app.sign_in(&host, "billing@example.com", PASSWORD).await;
    let day = today(&app);
    // Ana pays two statements; Ben and Chloe one each.
    for p in [&patients[0], &patients[0], &patients[1], &patients[2]] {
        let id = issued_statement(
            &app,
            &mut staff,
            &p.to_string(),
            &[("Office visit", "99213", "100", "0", "0")],
        )
        .await;
        let (status, page) = pay(
            &mut staff,
            &id,
            &[("amount", "40"), ("method", "cash"), ("received_on", &day)],
        )
        .await;
        assert_eq!(status, 303, "{page}");
    }
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(
        who.map(|to| told(&sink, to)),
        [2, 1, 1],
        "a desk payment, an email"
    );

    // The clinic's Stripe drain settles many payments at once and tells them all with one job,
    // one email an address. Such a job for these four (told again: their marks cleared), with
    // the mail server taking one message and then refusing for now: Ana is told once of both,
    // the others fail, and every retry tells only those not told yet.
    let db = app.db.tenant_db().await;
    // Every payment's mark cleared and one job queued for all of them, as a drain's batch.
    let again = async || {
        let mut tx = db.begin(&sunrise).await.unwrap();
        let ids: Vec<uuid::Uuid> =
            sqlx::query_scalar("UPDATE payments SET receipt_noticed_at = NULL RETURNING id")
                .fetch_all(tx.conn())
                .await
                .unwrap();
        assert_eq!(ids.len(), 4);
        portal_domain::jobs::enqueue(
            &mut tx,
            &portal_domain::jobs::Job::PaymentReceipts {
                payment_ids: ids.into_iter().map(PaymentId::from_uuid).collect(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    };
    std::fs::write(sink.dir.0.join(".accept"), "1").unwrap();
    again().await;
    assert_eq!(app.jobs_settled().await, 1, "the job is dead, none lost");
    assert_eq!(who.map(|to| told(&sink, to)), [3, 1, 1]);

    // The mail server takes mail again; the job is retried: the other two are told, Ana is
    // not told again.
    std::fs::remove_file(sink.dir.0.join(".accept")).unwrap();
    let n = portal_workers::dead::retry(&app.db.admin, None)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(who.map(|to| told(&sink, to)), [3, 2, 2]);

    // The server refusing everything for good (its login, our sender) is not taken as each
    // address refused: nobody is marked told, the job is dead, and a retry tells everyone.
    std::fs::write(sink.dir.0.join(".reject"), "").unwrap();
    again().await;
    assert_eq!(app.jobs_settled().await, 1, "the job is dead, none lost");
    assert_eq!(who.map(|to| told(&sink, to)), [3, 2, 2]);
    std::fs::remove_file(sink.dir.0.join(".reject")).unwrap();
    portal_workers::dead::retry(&app.db.admin, None)
        .await
        .unwrap();
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(who.map(|to| told(&sink, to)), [4, 3, 3]);

    // One address refused for good ("no such mailbox") does not hold up the others: the job
    // is done, everyone else is told, and each payment is marked so nothing is sent again.
    std::fs::write(sink.dir.0.join(".refuse"), "ben@example.com\n").unwrap();
    again().await;
    assert_eq!(app.jobs_settled().await, 0);
    assert_eq!(who.map(|to| told(&sink, to)), [5, 3, 4]);
    let mut tx = db.begin(&sunrise).await.unwrap();
    let untold: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE receipt_noticed_at IS NULL")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(untold, 0);

    // Billing staff may be the first to open a receipt: it is made then, as the patient's.
    let chloe = patients[2];
    let paid: uuid::Uuid = sqlx::query_scalar(
        "SELECT p.id FROM payments p JOIN billing_accounts a ON a.id = p.account_id
         WHERE a.patient_id = $1",
    )
    .bind(chloe.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let paid = PaymentId::from_uuid(paid);
    let resp = staff
        .post_form(&format!("/billing/payments/{paid}/receipt"), &[])
        .await;
    assert_eq!(resp.status(), 303);
    let doc = location(&resp);
    assert!(
        doc.starts_with(&format!("/billing/patients/{chloe}/documents/")),
        "{doc}"
    );
    assert!(printed(&app, &mut staff, &doc).await.contains("$40.00"));
    // Another clinic's billing staff find no such payment.
    let harbor = app.clinic("harbor").await;
    app.staff(&harbor, "billing@harbor.example", Role::Billing)
        .await;
    let mut other = app
        .sign_in(&app.host("harbor"), "billing@harbor.example", PASSWORD)
        .await;
    let resp = other
        .post_form(&format!("/billing/payments/{paid}/receipt"), &[])
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn two_people_opening_a_receipt_first_at_once_get_the_same_one_even_at_the_limit() {
    // No workers: what is asked for stays on its way.
    let app = TestApp::spawn_with(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    app.staff(&sunrise, "billing@example.com", Role::Billing)
        .await;
    let mut staff = app.sign_in(&host, "billing@example.com", PASSWORD).await;
    let id = issued_statement(
        &app,
        &mut staff,
        &ana.to_string(),
        &[("Office visit", "99213", "100", "0", "0")],
    )
    .await;
    let day = today(&app);
    let (status, page) = pay(
        &mut staff,
        &id,
        &[("amount", "40"), ("method", "cash"), ("received_on", &day)],
    )
    .await;
    assert_eq!(status, 303, "{page}");
    // Ana has four statement PDFs on their way: room for one more.
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    for _ in 0..4 {
        let resp = patient.post_form(&format!("/bills/{id}/pdf"), &[]).await;
        assert_eq!(resp.status(), 303);
    }
    let (_, bill) = patient.page(&format!("/bills/{id}")).await;
    let own = action(&bill, "/bills/payments/").expect("a receipt button");
    let theirs = own.replacen("/bills/", "/billing/", 1);

    // Both ask while Ana's documents are held (as by a request of hers in flight), so they
    // wait on the same lock and then go one after the other.
    let db = app.db.tenant_db().await;
    let mut held = db.begin(&sunrise).await.unwrap();
    sqlx::query("SELECT id FROM patients WHERE id = $1 FOR UPDATE")
        .bind(ana.as_uuid())
        .execute(held.conn())
        .await
        .unwrap();
    let release = async {
        for _ in 0..500 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE '%FROM patients WHERE id = $1 FOR UPDATE%'",
            )
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
            if waiting == 2 {
                return held.commit().await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the two requests never waited together");
    };
    let (mine, staffs, ()) = tokio::join!(
        patient.post_form(&own, &[]),
        staff.post_form(&theirs, &[]),
        release
    );
    assert_eq!(
        (mine.status().as_u16(), staffs.status().as_u16()),
        (303, 303),
        "neither refused"
    );
    let doc = |r: &reqwest::Response| location(r).rsplit('/').next().unwrap().to_owned();
    assert_eq!(doc(&mine), doc(&staffs), "one receipt");
}
