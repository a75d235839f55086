//! Bills end to end on the real server and job pipeline: billing staff draft a statement line
//! by line, issue it after a check of what it charges, and take desk payments; the patient
//! sees it and is told without any amount or service in the message; payments can be neither
//! zero, negative nor more than is due; the ledger's balance is the sum of its entries, and
//! the database refuses anything that would make it otherwise; nobody reaches another
//! patient's or clinic's statements, and drafts stay with the clinic.

use std::collections::HashMap;

use portal_domain::clock::Clock;
use portal_domain::identity::Role;
use portal_tests::bills::{
    Desk, add_line, desk, issued_statement, ledger, pay, statement_of, today, version,
};
use portal_tests::{PASSWORD, TestApp};

#[tokio::test]
async fn billing_staff_issue_a_statement_and_the_patient_is_told_without_what_or_how_much() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let Desk {
        sunrise,
        host,
        ana,
        mut staff,
    } = desk(&app).await;

    // Billing starts on its work queue.
    let resp = staff.get("/").await;
    assert_eq!(
        resp.headers().get("location").unwrap().to_str().unwrap(),
        "/billing"
    );
    let resp = staff
        .post_form(&format!("/billing/patients/{ana}/statements"), &[])
        .await;
    assert_eq!(resp.status(), 303);
    let id = statement_of(&resp);
    let (_, queue) = staff.page("/billing").await;
    assert!(queue.contains("1 draft to finish"), "{queue}");

    // Every problem with a line is named by its field, and what was typed stays.
    let resp = add_line(&app, &mut staff, &id, (" ", "ABC", "-5", "1.234", "")).await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Enter what the service was"), "{page}");
    assert!(page.contains("Enter a CPT code"), "{page}");
    assert!(page.contains("Enter the amount in numbers"), "{page}");
    assert!(
        page.contains("at most 2 digits after the decimal point"),
        "{page}"
    );
    assert!(page.contains("value=\"ABC\""), "{page}");
    let resp = add_line(
        &app,
        &mut staff,
        &id,
        ("Office visit", "99213", "180", "170", "20"),
    )
    .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("cannot be more than the charge")
    );

    for (what, code, charge, ins, adj) in [
        (
            "Office visit, established patient",
            "99213",
            "180.00",
            "120",
            "20.50",
        ),
        ("Comprehensive metabolic panel", "80053", "85", "", ""),
    ] {
        let resp = add_line(&app, &mut staff, &id, (what, code, charge, ins, adj)).await;
        assert_eq!(resp.status(), 303);
    }
    // Nothing reaches the patient while it is a draft.
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    assert_eq!(patient.page(&format!("/bills/{id}")).await.0, 404);
    let (_, bills) = patient.page("/bills").await;
    assert!(bills.contains("Nothing to pay"), "{bills}");

    // Issuing asks first, saying exactly what it charges.
    let v = version(&mut staff, &id).await;
    let due = (app.clock.now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/issue"),
            &[("version", &v), ("due_on", &due)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let ask = resp.text().await.unwrap();
    assert!(ask.contains("for $124.50, due"), "{ask}");
    assert!(ask.contains("Ana Tester"), "{ask}");
    assert_eq!(
        ledger(&app, &sunrise).await,
        vec![(0, 0, 0)],
        "asking charges nothing"
    );
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/issue"),
            &[("version", &v), ("due_on", &due), ("confirmed", "1")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(ledger(&app, &sunrise).await, vec![(12450, 12450, 1)]);
    // An issued statement cannot be changed.
    let resp = add_line(&app, &mut staff, &id, ("Flu shot", "90686", "30", "", "")).await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Only a draft statement")
    );

    // The patient is told, with no amount, service or code in the email.
    let email = app.email_to("ana@example.com").await;
    assert!(
        email.subject.contains("A new statement"),
        "{}",
        email.subject
    );
    for secret in ["124.50", "$1", "Office visit", "99213", "metabolic", "Ana"] {
        assert!(
            !email.text.contains(secret) && !email.html.contains(secret),
            "the notice gives away {secret:?}"
        );
    }
    assert!(email.text.contains("/bills"), "{}", email.text);

    let (_, bills) = patient.page("/bills").await;
    assert!(bills.contains("$124.50"), "{bills}");
    assert!(bills.contains("1 statement to pay"), "{bills}");
    let (status, bill) = patient.page(&format!("/bills/{id}")).await;
    assert_eq!(status, 200);
    assert!(bill.contains("Office visit, established patient"), "{bill}");
    assert!(bill.contains("$39.50") && bill.contains("$85.00"), "{bill}");
    assert!(bill.contains("You pay"), "{bill}");
    assert_eq!(app.jobs_settled().await, 0);

    // Audited: the issue by billing staff, and the patient's view.
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&sunrise).await.unwrap();
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_role FROM audit_log WHERE patient_id = $1 ORDER BY at, id",
    )
    .bind(ana.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for (action, role) in [
        ("statement.create", Some("billing")),
        ("statement.issue", Some("billing")),
        ("statement.notice", None),
        ("statement.view", Some("patient")),
        ("statement.list", Some("patient")),
    ] {
        assert!(
            rows.iter()
                .any(|(a, r)| a == action && r.as_deref() == role),
            "no {action} by {role:?} in {rows:?}"
        );
    }
}

#[tokio::test]
async fn desk_payments_are_more_than_zero_and_never_more_than_is_due() {
    let app = TestApp::spawn().await;
    let Desk {
        sunrise,
        host,
        ana,
        mut staff,
    } = desk(&app).await;
    let id = issued_statement(
        &app,
        &mut staff,
        &ana.to_string(),
        &[("New patient visit", "99203", "100", "", "")],
    )
    .await;
    let day = today(&app);
    for (amount, method, reference, words) in [
        ("0", "cash", "", "more than zero"),
        ("-5", "cash", "", "in numbers"),
        ("", "cash", "", "Enter an amount"),
        ("150", "cash", "", "more than the $100.00 still due"),
        ("10.001", "cash", "", "at most 2 digits"),
        ("10", "", "", "Choose cash or cheque"),
        ("10", "card", "", "Choose cash or cheque"),
        ("10", "cheque", "", "Enter the cheque"),
    ] {
        let (status, page) = pay(
            &mut staff,
            &id,
            &[
                ("amount", amount),
                ("method", method),
                ("reference", reference),
                ("received_on", &day),
            ],
        )
        .await;
        assert_eq!(status, 422, "{amount} {method}");
        assert!(page.contains(words), "{amount} {method}: {page}");
        assert!(page.contains("There is a problem"), "{page}");
    }
    assert_eq!(ledger(&app, &sunrise).await, vec![(10000, 10000, 1)]);

    let (status, _) = pay(
        &mut staff,
        &id,
        &[("amount", "40"), ("method", "cash"), ("received_on", &day)],
    )
    .await;
    assert_eq!(status, 303);
    let (status, page) = pay(
        &mut staff,
        &id,
        &[
            ("amount", "60.01"),
            ("method", "cash"),
            ("received_on", &day),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("more than the $60.00 still due"), "{page}");
    let (status, _) = pay(
        &mut staff,
        &id,
        &[
            ("amount", "$60.00"),
            ("method", "cheque"),
            ("reference", "1042"),
            ("received_on", &day),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = staff.page(&format!("/billing/statements/{id}")).await;
    assert!(page.contains(">Paid<"), "{page}");
    assert!(!page.contains("Record a payment"), "nothing is due: {page}");
    let (status, page) = pay(
        &mut staff,
        &id,
        &[("amount", "1"), ("method", "cash"), ("received_on", &day)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("Nothing is due"), "{page}");
    assert_eq!(ledger(&app, &sunrise).await, vec![(0, 0, 3)]);

    // Voiding a paid statement leaves what was paid as a credit the patient sees.
    let v = version(&mut staff, &id).await;
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/void"),
            &[("version", &v), ("reason", "Billed to the wrong insurer")],
        )
        .await;
    assert_eq!(resp.status(), 200, "asks first");
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("stays on the account as a credit")
    );
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/void"),
            &[
                ("version", &v),
                ("reason", "Billed to the wrong insurer"),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(ledger(&app, &sunrise).await, vec![(-10000, -10000, 4)]);
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let (_, bills) = patient.page("/bills").await;
    assert!(
        bills.contains("Your credit") && bills.contains("-$100.00"),
        "{bills}"
    );
    let (status, page) = pay(
        &mut staff,
        &id,
        &[("amount", "1"), ("method", "cash"), ("received_on", &day)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("This statement was voided"), "{page}");
}

#[tokio::test]
async fn the_database_keeps_the_ledger_append_only_and_its_balance_the_sum_of_its_entries() {
    let app = TestApp::spawn().await;
    let Desk {
        sunrise,
        host: _,
        ana,
        mut staff,
    } = desk(&app).await;
    issued_statement(
        &app,
        &mut staff,
        &ana.to_string(),
        &[("Office visit", "99213", "75", "", "")],
    )
    .await;
    let db = app.db.tenant_db().await;
    // Each attempt runs as the clinic's own role, which has plain DML on its tables.
    for (what, sql) in [
        (
            "edit an entry",
            "UPDATE ledger_entries SET amount_minor = 1",
        ),
        ("delete an entry", "DELETE FROM ledger_entries"),
        (
            "move the balance",
            "UPDATE billing_accounts SET balance_minor = 0",
        ),
        (
            "add an entry in another currency",
            "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                         statement_id, balance_after_minor, created_at)
             SELECT gen_random_uuid(), account_id, 0, 'void', -7500, 'EUR', id, 0, now()
             FROM statements",
        ),
        (
            "charge a statement twice",
            "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                         statement_id, balance_after_minor, created_at)
             SELECT gen_random_uuid(), account_id, 0, 'charge', 7500, currency, id, 0, now()
             FROM statements",
        ),
        (
            "a negative charge",
            "INSERT INTO ledger_entries (id, account_id, seq, kind, amount_minor, currency,
                                         statement_id, balance_after_minor, created_at)
             SELECT gen_random_uuid(), account_id, 0, 'charge', -1, currency, NULL, 0, now()
             FROM statements",
        ),
    ] {
        let mut tx = db.begin(&sunrise).await.unwrap();
        let done = sqlx::query(sql).execute(tx.conn()).await;
        let committed = match done {
            Ok(_) => tx.commit().await,
            Err(e) => Err(e),
        };
        assert!(committed.is_err(), "the database let the clinic {what}");
    }
    assert_eq!(ledger(&app, &sunrise).await, vec![(7500, 7500, 1)]);
}

#[tokio::test]
async fn nobody_reaches_another_patients_or_another_clinics_statements() {
    let app = TestApp::spawn().await;
    let sunrise = app.clinic("sunrise").await;
    let harbor = app.clinic("harbor").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    app.patient(&sunrise, "Ben", "ben@example.com").await;
    app.staff(&sunrise, "billing@example.com", Role::Billing)
        .await;
    app.staff(&sunrise, "doc@example.com", Role::Clinician)
        .await;
    app.staff(&harbor, "billing@harbor.example", Role::Billing)
        .await;
    let mut staff = app.sign_in(&host, "billing@example.com", PASSWORD).await;
    let id = issued_statement(
        &app,
        &mut staff,
        &ana.to_string(),
        &[("Office visit", "99213", "75", "", "")],
    )
    .await;

    let mut ben = app.sign_in(&host, "ben@example.com", PASSWORD).await;
    let (status, page) = ben.page(&format!("/bills/{id}")).await;
    assert_eq!(status, 404);
    assert!(!page.contains("Ana") && !page.contains("Office visit"));
    let (_, bills) = ben.page("/bills").await;
    assert!(!bills.contains("Statement 1001"), "{bills}");
    assert_eq!(ben.page("/billing").await.0, 403);
    assert_eq!(ben.page(&format!("/billing/statements/{id}")).await.0, 403);

    let mut doc = app.sign_in(&host, "doc@example.com", PASSWORD).await;
    assert_eq!(doc.page(&format!("/billing/statements/{id}")).await.0, 403);
    assert_eq!(doc.page(&format!("/billing/patients/{ana}")).await.0, 403);

    let mut other = app
        .sign_in(&app.host("harbor"), "billing@harbor.example", PASSWORD)
        .await;
    for path in [
        format!("/billing/statements/{id}"),
        format!("/billing/patients/{ana}"),
    ] {
        let (status, page) = other.page(&path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!page.contains("Ana"));
    }
    let resp = other
        .post_form(
            &format!("/billing/statements/{id}/void"),
            &[("version", "2"), ("reason", "x"), ("confirmed", "1")],
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(ledger(&app, &sunrise).await, vec![(7500, 7500, 1)]);
}

#[tokio::test]
async fn a_change_made_against_an_older_page_is_refused_and_the_newer_one_shown() {
    let app = TestApp::spawn().await;
    let Desk {
        sunrise,
        host: _,
        ana,
        mut staff,
    } = desk(&app).await;
    let resp = staff
        .post_form(&format!("/billing/patients/{ana}/statements"), &[])
        .await;
    let id = statement_of(&resp);
    let old = version(&mut staff, &id).await;
    let resp = add_line(
        &app,
        &mut staff,
        &id,
        ("Office visit", "99213", "75", "", ""),
    )
    .await;
    assert_eq!(resp.status(), 303);
    // A second tab, still showing the empty draft, issues it.
    let due = (app.clock.now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/issue"),
            &[("version", &old), ("due_on", &due), ("confirmed", "1")],
        )
        .await;
    assert_eq!(resp.status(), 409);
    let page = resp.text().await.unwrap();
    assert!(page.contains("changed by someone else"), "{page}");
    assert!(
        page.contains("Office visit"),
        "the newer version is shown: {page}"
    );
    assert_eq!(ledger(&app, &sunrise).await, vec![(0, 0, 0)]);
}

#[tokio::test]
async fn the_summary_adds_up_what_was_billed_and_received_by_day_and_month() {
    let app = TestApp::spawn().await;
    let Desk {
        sunrise: _,
        host: _,
        ana,
        mut staff,
    } = desk(&app).await;
    let (_, page) = staff.page("/billing/summary").await;
    assert!(
        page.contains("Nothing was billed, received or refunded"),
        "{page}"
    );
    assert_eq!(page.matches("data-bar=\"billed\"").count(), 30, "{page}");
    assert!(
        page.contains("data-testid=\"total-billed\">$0.00<"),
        "{page}"
    );
    let id = issued_statement(
        &app,
        &mut staff,
        &ana.to_string(),
        &[("Office visit", "99213", "180", "60", "20")],
    )
    .await;
    let day = today(&app);
    let (status, _) = pay(
        &mut staff,
        &id,
        &[
            ("amount", "30.25"),
            ("method", "cash"),
            ("received_on", &day),
        ],
    )
    .await;
    assert_eq!(status, 303);
    for by in ["day", "month"] {
        let (status, page) = staff.page(&format!("/billing/summary?by={by}")).await;
        assert_eq!(status, 200);
        let bars = if by == "day" { 30 } else { 12 };
        assert_eq!(page.matches("data-bar=\"received\"").count(), bars);
        assert_eq!(
            page.matches("data-testid=\"summary-row\"").count(),
            1,
            "only the period with something in it: {page}"
        );
        assert!(
            page.contains("data-testid=\"total-billed\">$100.00<"),
            "{page}"
        );
        assert!(
            page.contains("data-testid=\"total-received\">$30.25<"),
            "{page}"
        );
        assert!(page.contains("data-testid=\"total-net\">$30.25<"), "{page}");
        // The newest period holds it all, in the table and as the chart's last bars.
        let first_row = &page[page.find("data-testid=\"summary-row\"").unwrap()..];
        let first_row = &first_row[..first_row.find("</tr>").unwrap()];
        assert!(
            first_row.contains("$100.00") && first_row.contains("$30.25"),
            "{first_row}"
        );
        assert_eq!(
            page.matches("data-bar=\"billed\" data-value=\"10000\"")
                .count(),
            1
        );
        assert_eq!(
            page.matches("data-bar=\"received\" data-value=\"3025\"")
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn the_patient_reads_their_bills_over_the_api_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    app.patient(&sunrise, "Ben", "ben@example.com").await;
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
    let (status, _) = pay(
        &mut staff,
        &id,
        &[("amount", "40"), ("method", "cash"), ("received_on", &day)],
    )
    .await;
    assert_eq!(status, 303);
    // A draft never shows.
    let resp = staff
        .post_form(&format!("/billing/patients/{ana}/statements"), &[])
        .await;
    let draft = statement_of(&resp);

    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let resp = patient.get("/api/v1/bills").await;
    assert_eq!(resp.status(), 200);
    let bills: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(bills["balance"]["minor"], 6000, "{bills}");
    assert_eq!(bills["balance"]["display"], "$60.00");
    assert_eq!(bills["statements"].as_array().unwrap().len(), 1, "{bills}");
    assert_eq!(bills["statements"][0]["id"], id.as_str());
    assert_eq!(bills["statements"][0]["status"], "issued");
    let resp = patient.get(&format!("/api/v1/bills/{id}")).await;
    assert_eq!(resp.status(), 200);
    let s: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(s["lines"][0]["code"], "99213", "{s}");
    assert_eq!(s["lines"][0]["patient"]["minor"], 10000);
    assert_eq!(s["payments"][0]["method"], "cash");
    assert_eq!(s["payments"][0]["amount"]["minor"], 4000);
    // The receipt is printed when first asked for: none yet, then one, the same one each time.
    assert!(s["payments"][0]["receipt_document_id"].is_null(), "{s}");
    let payment = s["payments"][0]["id"].as_str().unwrap().to_owned();
    let me: serde_json::Value = patient.get("/api/v1/me").await.json().await.unwrap();
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let ask = |for_payment: &str, token: &str| {
        app.client
            .post(format!(
                "http://{}/api/v1/bills/payments/{for_payment}/receipt",
                app.addr
            ))
            .header("x-csrf-token", token.to_owned())
    };
    assert_eq!(patient.send(ask(&payment, "forged")).await.status(), 403);
    let resp = patient.send(ask(&payment, &csrf)).await;
    assert_eq!(resp.status(), 202);
    let receipt: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(receipt["kind"], "receipt", "{receipt}");
    let again: serde_json::Value = patient
        .send(ask(&payment, &csrf))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], receipt["id"]);
    let s: serde_json::Value = patient
        .get(&format!("/api/v1/bills/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["payments"][0]["receipt_document_id"], receipt["id"]);
    assert!(s["payment_code"].is_string(), "still owed: {s}");
    for missing in [
        draft.as_str(),
        "stm_00000000000000000000000000000000",
        "nonsense",
    ] {
        let resp = patient.get(&format!("/api/v1/bills/{missing}")).await;
        assert_eq!(resp.status(), 404, "{missing}");
    }
    let mut other = app.sign_in(&host, "ben@example.com", PASSWORD).await;
    let resp = other.get(&format!("/api/v1/bills/{id}")).await;
    assert_eq!(
        resp.status(),
        404,
        "another patient's statement is missing to Ben"
    );
    let ben_me: serde_json::Value = other.get("/api/v1/me").await.json().await.unwrap();
    let ben_csrf = ben_me["csrf_token"].as_str().unwrap().to_owned();
    for missing in [payment.as_str(), "pay_nonsense"] {
        let resp = other.send(ask(missing, &ben_csrf)).await;
        assert_eq!(resp.status(), 404, "{missing}: not a payment of Ben's");
    }
    let ben: serde_json::Value = other.get("/api/v1/bills").await.json().await.unwrap();
    assert_eq!(ben["statements"].as_array().unwrap().len(), 0, "{ben}");
    // Billing staff are not patients: the patient API is not theirs (the role's refusal).
    assert_eq!(staff.get("/api/v1/bills").await.status(), 403);
}
