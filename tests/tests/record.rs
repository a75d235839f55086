//! The health record's foundation (issue 11, first part): problems and allergies coded as the
//! standards code them, only clinical staff reach them, every change versioned with no silent
//! overwrite, every earlier version kept (by the database, whatever the write path), and every
//! read and write audited.

use chrono::NaiveDate;
use portal_domain::audit::AuditContext;
use portal_domain::clock::Clock;
use portal_domain::identity::Role;
use portal_domain::identity::scope::SignedIn;
use portal_domain::record::allergies::{self, AllergyInput};
use portal_domain::record::chart;
use portal_domain::record::problems::{self, ProblemInput};
use portal_domain::record::{CodeSystem, RecordError};
use portal_tenants::Tenant;
use portal_tests::TestApp;

async fn who(app: &TestApp, tenant: &Tenant, host: &str, email: &str) -> SignedIn {
    let token = app.api_token(host, email).await;
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(tenant).await.unwrap();
    let me =
        portal_domain::identity::sessions::authenticate(&mut tx, &token, app.clock.now(), false)
            .await
            .unwrap()
            .unwrap();
    tx.commit().await.unwrap();
    me
}

fn diabetes(status: &str) -> ProblemInput<'_> {
    ProblemInput {
        system: CodeSystem::Icd10cm,
        code: "E11.9",
        text: "Type 2 diabetes mellitus without complications",
        onset: NaiveDate::from_ymd_opt(2019, 4, 1),
        abatement: None,
        clinical_status: status,
    }
}

#[tokio::test]
async fn edits_name_their_version_and_every_earlier_version_is_kept() {
    let app = TestApp::spawn().await;
    let t = app.clinic("charts").await;
    let host = app.host("charts");
    app.staff(&t, "doc@charts.example", Role::Clinician).await;
    app.staff(&t, "doc2@charts.example", Role::Clinician).await;
    app.staff(&t, "bill@charts.example", Role::Billing).await;
    app.staff(&t, "desk@charts.example", Role::FrontDesk).await;
    let ana = app.patient(&t, "Ana", "ana@charts.example").await;
    let ben = app.patient(&t, "Ben", "ben@charts.example").await;
    let doc = who(&app, &t, &host, "doc@charts.example").await;
    let doc2 = who(&app, &t, &host, "doc2@charts.example").await;

    // Billing and the front desk never get a clinical scope.
    for email in ["bill@charts.example", "desk@charts.example"] {
        assert!(
            who(&app, &t, &host, email).await.clinical().is_none(),
            "{email}"
        );
    }
    let clinical = doc.clinical().unwrap();
    let ctx = AuditContext::default();
    let now = app.clock.now();
    let today = now.date_naive();
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&t).await.unwrap();

    // Codes are checked for their system; a future onset is refused.
    let mut bad = diabetes("active");
    bad.code = "250.00";
    assert!(matches!(
        problems::add(&mut tx, &clinical, &ctx, ana, &bad, today, now).await,
        Err(RecordError::Invalid { field: "code", message }) if message.contains("not an ICD-10-CM code")
    ));
    let mut future = diabetes("active");
    future.onset = today.succ_opt();
    assert!(matches!(
        problems::add(&mut tx, &clinical, &ctx, ana, &future, today, now).await,
        Err(RecordError::Invalid { field: "onset", .. })
    ));

    let id = problems::add(
        &mut tx,
        &clinical,
        &ctx,
        ana,
        &diabetes("active"),
        today,
        now,
    )
    .await
    .unwrap();
    // Two clinicians open version 1; the first saves, the second is refused, not overwritten.
    let v2 = problems::update(
        &mut tx,
        &clinical,
        &ctx,
        ana,
        id,
        1,
        &diabetes("remission"),
        today,
        now,
    )
    .await
    .unwrap();
    assert_eq!(v2, 2);
    let clinical2 = doc2.clinical().unwrap();
    let stale = problems::update(
        &mut tx,
        &clinical2,
        &ctx,
        ana,
        id,
        1,
        &diabetes("resolved"),
        today,
        now,
    )
    .await;
    assert!(
        matches!(stale, Err(RecordError::Stale { current: 2 })),
        "{stale:?}"
    );
    let list = problems::of_patient(&mut tx, &clinical, &ctx, ana, now)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].clinical_status, "remission",
        "the refused edit changed nothing"
    );

    // History: version 1 and version 2, each with who made it.
    let history = problems::history(&mut tx, &clinical, &ctx, ana, id, now)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(history[0].data["clinical_status"], "active");
    assert_eq!(history[1].data["clinical_status"], "remission");
    assert!(
        history
            .iter()
            .all(|v| v.changed_by.as_deref() == Some("Test Staff"))
    );

    // Another patient's entry answers as missing, for edits and for history.
    assert!(matches!(
        problems::update(
            &mut tx,
            &clinical,
            &ctx,
            ben,
            id,
            2,
            &diabetes("resolved"),
            today,
            now
        )
        .await,
        Err(RecordError::NotFound)
    ));
    assert!(matches!(
        problems::history(&mut tx, &clinical, &ctx, ben, id, now).await,
        Err(RecordError::NotFound)
    ));

    // Allergies follow the same rules, with RxNorm or SNOMED CT substances.
    let penicillin = AllergyInput {
        system: CodeSystem::Rxnorm,
        code: "7980",
        substance: "Penicillin G",
        reaction: "Hives",
        severity: Some("moderate"),
        clinical_status: "active",
    };
    let wrong_system = AllergyInput {
        system: CodeSystem::Icd10cm,
        ..penicillin.clone()
    };
    assert!(matches!(
        allergies::add(&mut tx, &clinical, &ctx, ana, &wrong_system, now).await,
        Err(RecordError::Invalid { field: "code", message }) if message.contains("RxNorm or SNOMED CT")
    ));
    let allergy = allergies::add(&mut tx, &clinical, &ctx, ana, &penicillin, now)
        .await
        .unwrap();
    let severe = AllergyInput {
        severity: Some("severe"),
        ..penicillin.clone()
    };
    assert_eq!(
        allergies::update(&mut tx, &clinical, &ctx, ana, allergy, 1, &severe, now)
            .await
            .unwrap(),
        2
    );
    tx.commit().await.unwrap();

    // The patient reads their own record, never Ben's entries; both reads are audited.
    let ana_in = who(&app, &t, &host, "ana@charts.example").await;
    let ben_in = who(&app, &t, &host, "ben@charts.example").await;
    let mut tx = db.begin(&t).await.unwrap();
    let mine = problems::own(&mut tx, &ana_in.patient().unwrap(), &ctx, now)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    let theirs = allergies::own(&mut tx, &ben_in.patient().unwrap(), &ctx, now)
        .await
        .unwrap();
    assert!(theirs.is_empty(), "Ben sees nothing of Ana's");
    tx.commit().await.unwrap();

    let schema = t.schema_name().to_owned();
    let audit: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT action, count(*) FROM \"{schema}\".audit_log
         WHERE action LIKE 'record.%' GROUP BY action ORDER BY action"
    )))
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![
            ("record.create".to_owned(), 2),
            ("record.history".to_owned(), 1),
            ("record.update".to_owned(), 2),
            ("record.view".to_owned(), 3),
        ]
    );

    // The chart, which the pages and the API read, shows the same: Ana's problem, nothing of
    // hers to Ben, and one audit row per read naming whose chart it was (a read served from
    // the web's cache too).
    let mut tx = db.begin(&t).await.unwrap();
    let ana_scope = ana_in.patient().unwrap();
    let ben_scope = ben_in.patient().unwrap();
    // A cache of summaries, as the web keeps: the second read is served from it.
    let cache = portal_domain::record::cache::RecordCache::new(8);
    let hers = chart::own(
        &mut tx,
        &cache,
        &ana_scope,
        &ctx,
        chart::Extent::Summary,
        now,
    )
    .await
    .unwrap();
    assert_eq!(hers.problems.len(), 1);
    let hers = chart::own(
        &mut tx,
        &cache,
        &ana_scope,
        &ctx,
        chart::Extent::Summary,
        now,
    )
    .await
    .unwrap();
    assert_eq!(hers.problems.len(), 1);
    assert_eq!(hers.allergies.len(), 1);
    let his = chart::own(
        &mut tx,
        &cache,
        &ben_scope,
        &ctx,
        chart::Extent::Summary,
        now,
    )
    .await
    .unwrap();
    assert!(
        his.problems.is_empty() && his.allergies.is_empty(),
        "Ben's chart holds nothing of Ana's"
    );
    tx.commit().await.unwrap();
    let mut read_for: Vec<(uuid::Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT patient_id FROM \"{schema}\".audit_log
         WHERE action = 'record.view' AND resource_type = 'chart'"
    )))
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    read_for.sort();
    let mut expected = vec![
        (ana.as_uuid(),),
        (ana.as_uuid(),),
        (ben_scope.patient_id().as_uuid(),),
    ];
    expected.sort();
    assert_eq!(read_for, expected);
}

#[tokio::test]
async fn the_database_itself_keeps_every_version_and_refuses_deletes() {
    let app = TestApp::spawn().await;
    let t = app.clinic("keeps").await;
    let host = app.host("keeps");
    app.staff(&t, "doc@keeps.example", Role::Clinician).await;
    let ana = app.patient(&t, "Ana", "ana@keeps.example").await;
    let doc = who(&app, &t, &host, "doc@keeps.example").await;
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&t).await.unwrap();
    let now = app.clock.now();
    let id = problems::add(
        &mut tx,
        &doc.clinical().unwrap(),
        &AuditContext::default(),
        ana,
        &diabetes("active"),
        now.date_naive(),
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Even the clinic's own database role: an edit that skips a version, a delete, and a change
    // to the history are all refused.
    let schema = t.schema_name().to_owned();
    for sql in [
        format!("UPDATE \"{schema}\".conditions SET version = 5 WHERE id = '{id}'"),
        format!("DELETE FROM \"{schema}\".conditions WHERE id = '{id}'"),
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&app.db.admin)
            .await
            .expect_err(&sql);
        assert!(err.to_string().contains("record"), "{err}");
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".conditions SET text = 'Diabetes', version = version + 1 WHERE id = '{id}'"
    )))
    .execute(&app.db.admin)
    .await
    .unwrap();
    let kept: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".record_history WHERE row_id = '{id}' AND version = 1"
    )))
    .fetch_one(&app.db.admin)
    .await
    .unwrap();
    assert_eq!(
        kept, 1,
        "a direct edit still leaves the earlier version behind"
    );
    let err = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM \"{schema}\".record_history WHERE row_id = '{id}'"
    )))
    .execute(&app.db.admin)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("keeps every version"), "{err}");
    // Nor can history be forged by hand: only the versioning trigger writes it.
    let err = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".record_history (table_name, row_id, version, data, changed_at)
         VALUES ('conditions', '{id}', 2, '{{}}', now())"
    )))
    .execute(&app.db.admin)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("written only by"), "{err}");
}

#[tokio::test]
async fn a_clinician_adds_to_the_record_and_the_patient_reads_it() {
    let app = TestApp::spawn().await;
    let t = app.clinic("pages").await;
    let host = app.host("pages");
    app.staff(&t, "doc@pages.example", Role::Clinician).await;
    app.staff(&t, "bill@pages.example", Role::Billing).await;
    let ana = app.patient(&t, "Ana", "ana@pages.example").await;
    let mut doc = app
        .sign_in(&host, "doc@pages.example", portal_tests::PASSWORD)
        .await;
    let path = format!("/admin/patients/{ana}/record");
    let (st, page) = doc.page(&path).await;
    assert_eq!(st, 200);
    assert!(page.contains("No allergies recorded."));

    // A code in the wrong shape is refused on its field, keeping what was typed.
    let resp = doc
        .post_form(
            &format!("{path}/allergies"),
            &[
                ("substance", "Penicillin G"),
                ("system", "rxnorm"),
                ("code", "pen"),
                ("reaction", "Hives"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("is not an RxNorm code"), "{page}");
    assert!(
        page.contains(r#"id="allergy-code-error""#),
        "the error is on the code field"
    );
    assert!(page.contains(r#"value="Penicillin G""#));
    assert!(
        page.contains(r#"<option value="rxnorm" selected>"#),
        "the code system is kept"
    );
    let resp = doc
        .post_form(
            &format!("{path}/allergies"),
            &[
                ("substance", "Penicillin G"),
                ("system", "rxnorm"),
                ("code", "7980"),
                ("reaction", "Hives"),
                ("severity", "moderate"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);

    // A problem's start that is not a date is refused on its field; nothing is added.
    let resp = doc
        .post_form(
            &format!("{path}/problems"),
            &[
                ("text", "Asthma"),
                ("system", "text"),
                ("onset", "last spring"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"id="problem-onset-error""#), "{page}");
    assert!(
        page.contains("No problems recorded."),
        "nothing half-written"
    );

    // The patient sees it; billing cannot open the record at all.
    let mut ana_b = app
        .sign_in(&host, "ana@pages.example", portal_tests::PASSWORD)
        .await;
    let (st, mine) = ana_b.page("/record").await;
    assert_eq!(st, 200);
    assert!(
        mine.contains("Penicillin G") && mine.contains("Hives · moderate"),
        "{mine}"
    );
    let mut bill = app
        .sign_in(&host, "bill@pages.example", portal_tests::PASSWORD)
        .await;
    let (st, page) = bill.page(&path).await;
    assert_eq!(st, 403);
    assert!(!page.contains("Penicillin"));
}

#[tokio::test]
async fn a_change_made_against_an_older_version_is_refused_with_the_newer_one_shown() {
    let app = TestApp::spawn().await;
    let t = app.clinic("edits").await;
    let host = app.host("edits");
    app.staff(&t, "doc@edits.example", Role::Clinician).await;
    app.staff(&t, "doc2@edits.example", Role::ClinicAdmin).await;
    app.staff(&t, "bill@edits.example", Role::Billing).await;
    let ana = app.patient(&t, "Ana", "ana@edits.example").await;
    let mut doc = app
        .sign_in(&host, "doc@edits.example", portal_tests::PASSWORD)
        .await;
    let mut doc2 = app
        .sign_in(&host, "doc2@edits.example", portal_tests::PASSWORD)
        .await;
    let record = format!("/admin/patients/{ana}/record");
    let resp = doc
        .post_form(
            &format!("{record}/allergies"),
            &[
                ("substance", "Penicillin G"),
                ("system", "rxnorm"),
                ("code", "7980"),
                ("reaction", "Hives"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = doc.page(&record).await;
    let marker = format!("{record}/allergies/");
    let at = page.find(&marker).expect("a change link");
    let entry = page[at..page[at..].find('"').map(|e| at + e).unwrap()].to_owned();

    // Both open version 1; the first saves, the second is refused and shown the first's.
    let (st, form) = doc.page(&entry).await;
    assert_eq!(st, 200);
    assert!(form.contains(r#"name="version" value="1""#));
    let change = |reaction: &'static str| {
        vec![
            ("version", "1"),
            ("substance", "Penicillin G"),
            ("system", "rxnorm"),
            ("code", "7980"),
            ("reaction", reaction),
            ("severity", "severe"),
            ("status", "active"),
        ]
    };
    let resp = doc.post_form(&entry, &change("Hives and wheezing")).await;
    assert_eq!(resp.status(), 303);
    let resp = doc2.post_form(&entry, &change("Rash")).await;
    assert_eq!(resp.status(), 409);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("entry-newer") && page.contains("Hives and wheezing"),
        "{page}"
    );
    assert!(
        page.contains(r#"name="version" value="2""#),
        "the form is now made against version 2"
    );
    // History: both versions, newest first, with who made each.
    assert_eq!(page.matches(r#"data-testid="entry-version""#).count(), 2);
    assert!(page.contains("Version 2</strong> — Test Staff"));
    // The patient sees the saved change, not the refused one.
    let mut ana_b = app
        .sign_in(&host, "ana@edits.example", portal_tests::PASSWORD)
        .await;
    let (_, mine) = ana_b.page("/record").await;
    assert!(mine.contains("Hives and wheezing") && !mine.contains("Rash"));
    // Billing cannot open it; another patient's id answers like a missing one.
    let mut bill = app
        .sign_in(&host, "bill@edits.example", portal_tests::PASSWORD)
        .await;
    let (st, _) = bill.page(&entry).await;
    assert_eq!(st, 403);
    let ben = app.patient(&t, "Ben", "ben@edits.example").await;
    let theirs = entry.replace(&ana.to_string(), &ben.to_string());
    let (st, _) = doc.page(&theirs).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn clinicians_add_and_change_medications_and_immunizations_with_history() {
    let app = TestApp::spawn().await;
    let t = app.clinic("meds").await;
    let host = app.host("meds");
    app.staff(&t, "doc@meds.example", Role::Clinician).await;
    let ana = app.patient(&t, "Ana", "ana@meds.example").await;
    let mut doc = app
        .sign_in(&host, "doc@meds.example", portal_tests::PASSWORD)
        .await;
    let record = format!("/admin/patients/{ana}/record");
    // A code of the wrong shape and a date that is not one are refused on their fields.
    let resp = doc
        .post_form(
            &format!("{record}/medications"),
            &[
                ("name", "Lisinopril 10 MG Oral Tablet"),
                ("code", "lisinopril"),
                ("status", "active"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains(r#"id="med-code-error""#)
    );
    let resp = doc
        .post_form(
            &format!("{record}/immunizations"),
            &[
                ("vaccine", "Tdap"),
                ("given_on", "last May"),
                ("status", "completed"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains(r#"id="imm-given_on-error""#)
    );
    let resp = doc
        .post_form(
            &format!("{record}/medications"),
            &[
                ("name", "Lisinopril 10 MG Oral Tablet"),
                ("code", "314076"),
                ("dose", "1 tablet"),
                ("frequency", "1 time a day"),
                ("status", "active"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = doc
        .post_form(
            &format!("{record}/immunizations"),
            &[
                ("vaccine", "Tdap"),
                ("cvx", "115"),
                ("given_on", "2024-05-02"),
                ("status", "completed"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = doc.page(&record).await;
    let link = |kind: &str| {
        let marker = format!("{record}/{kind}/");
        let at = page.find(&marker).expect("a change link");
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    let med = link("medications");
    let imm = link("immunizations");
    // Stopping the medication is a new version; the first is kept and listed.
    let resp = doc
        .post_form(
            &med,
            &[
                ("version", "1"),
                ("name", "Lisinopril 10 MG Oral Tablet"),
                ("code", "314076"),
                ("dose", "1 tablet"),
                ("frequency", "1 time a day"),
                ("status", "stopped"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, form) = doc.page(&med).await;
    assert_eq!(form.matches(r#"data-testid="entry-version""#).count(), 2);
    assert!(form.contains(r#"<option value="stopped" selected>"#));
    // An immunization entered in error disappears from the patient's record.
    let resp = doc
        .post_form(
            &imm,
            &[
                ("version", "1"),
                ("vaccine", "Tdap"),
                ("cvx", "115"),
                ("given_on", "2024-05-02"),
                ("status", "entered-in-error"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let mut ana_b = app
        .sign_in(&host, "ana@meds.example", portal_tests::PASSWORD)
        .await;
    let (_, mine) = ana_b.page("/record/medications").await;
    assert!(
        mine.contains("Lisinopril") && mine.contains("Stopped"),
        "{mine}"
    );
    let (_, mine) = ana_b.page("/record/immunizations").await;
    assert!(!mine.contains("Tdap"), "entered in error: hidden");
}
