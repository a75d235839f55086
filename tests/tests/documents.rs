//! Documents end to end on the real server and job pipeline: a patient asks for a PDF and gets
//! it once a worker has printed it (its text read back with poppler); uploads are checked by
//! their content; nobody reaches another patient's or clinic's documents; every read and
//! write is audited; nothing is half-stored (a crash between a blob and its row is swept);
//! a store that is down fails uploads clearly and marks renders failed, ready to try again.

use std::collections::HashMap;

use portal_domain::clock::Clock;
use portal_domain::identity::Role;
use portal_tests::{PASSWORD, PNG, TestApp, pdftotext};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::json;

/// Gives the patient two vaccines, straight into the record.
async fn vaccinate(app: &TestApp, tenant: &portal_tenants::Tenant, patient: uuid::Uuid) {
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(tenant).await.unwrap();
    for (vaccine, day) in [
        ("Influenza, seasonal, injectable", "2025-10-02"),
        ("Tdap", "2020-05-01"),
    ] {
        sqlx::query(
            "INSERT INTO immunizations (id, patient_id, vaccine, given_on, updated_at, created_at)
             VALUES ($1, $2, $3, $4::date, now(), now())",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(patient)
        .bind(vaccine)
        .bind(day)
        .execute(tx.conn())
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Every file under the document store's directory, with its bytes.
fn stored_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.push((p, bytes));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn audit_count(app: &TestApp, schema_of: &portal_tenants::Tenant, action: &str) -> i64 {
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(schema_of).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn a_patient_gets_their_immunization_record_as_a_pdf_sealed_at_rest() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    app.patient(&sunrise, "Ben", "ben@example.com").await;
    vaccinate(&app, &sunrise, ana.as_uuid()).await;
    let token = app.api_token(&host, "ana@example.com").await;

    let (status, doc) = app
        .api(
            &host,
            &token,
            Method::POST,
            "/v1/documents",
            Some(json!({"kind": "immunization_record"})),
        )
        .await;
    assert_eq!(status, 202, "{doc}");
    assert_eq!(doc["status"], "queued");
    let id = doc["id"].as_str().unwrap().to_owned();

    assert_eq!(app.jobs_settled().await, 0, "no job may die");
    let (status, doc) = app
        .api(
            &host,
            &token,
            Method::GET,
            &format!("/v1/documents/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["status"], "ready", "{doc}");
    assert_eq!(doc["media_type"], "application/pdf");
    assert_eq!(doc["pages"], 1);

    let resp = app
        .client
        .get(format!("http://{}/api/v1/documents/{id}/content", app.addr))
        .header("host", &host)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        !disposition.contains("Ana"),
        "no name in the file name: {disposition}"
    );
    let pdf = resp.bytes().await.unwrap().to_vec();
    let text = pdftotext(&pdf);
    for expected in [
        "Immunization record",
        "Ana Tester",
        "27 March 1984",
        "Influenza, seasonal, injectable",
        "Tdap",
        doc["content_digest"].as_str().unwrap(),
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the PDF:\n{text}"
        );
    }

    // At rest: one sealed blob, with no trace of the PDF or of the patient in it.
    let files = stored_files(app.db.blob_dir.as_ref().unwrap());
    assert_eq!(files.len(), 1, "{files:?}");
    let (_, sealed) = &files[0];
    assert!(!contains(sealed, b"%PDF"));
    assert!(!contains(sealed, b"Ana"));
    assert!(!contains(sealed, &pdf[200..260]));

    // Another patient, and another clinic, are told it does not exist.
    let ben = app.api_token(&host, "ben@example.com").await;
    for path in [
        format!("/v1/documents/{id}"),
        format!("/v1/documents/{id}/content"),
    ] {
        let (status, body) = app.api(&host, &ben, Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (_, list) = app
        .api(&host, &ben, Method::GET, "/v1/documents", None)
        .await;
    assert_eq!(list, json!([]));
    let harbor = app.clinic("harbor").await;
    app.patient(&harbor, "Hal", "hal@example.com").await;
    let hhost = app.host("harbor");
    let hal = app.api_token(&hhost, "hal@example.com").await;
    let (status, _) = app
        .api(
            &hhost,
            &hal,
            Method::GET,
            &format!("/v1/documents/{id}/content"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Every step is in the clinic's audit trail.
    for action in [
        "document.request",
        "document.render",
        "document.view",
        "document.download",
    ] {
        assert!(
            audit_count(&app, &sunrise, action).await >= 1,
            "{action} not audited"
        );
    }
}

#[tokio::test]
async fn uploads_are_checked_by_content_seen_by_the_care_team_and_removed_only_from_view() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    app.staff(&sunrise, "doc@example.com", Role::Clinician)
        .await;
    app.staff(&sunrise, "billing@example.com", Role::Billing)
        .await;
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let blob_dir = app.db.blob_dir.clone().unwrap();

    // Refused files: named and declared as allowed types, but not what they say.
    let mut program = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
    program.resize(4096, 0);
    let refused: [(&str, Vec<u8>, &str, &str); 4] = [
        (
            "card.pdf",
            program,
            "application/pdf",
            "This file is a program",
        ),
        (
            "card.png",
            b"<!DOCTYPE html><html><body>hi</body></html>".to_vec(),
            "image/png",
            "This file is a web page",
        ),
        (
            "records.pdf",
            b"%PDF-1.7\n1 0 obj <<".to_vec(),
            "application/pdf",
            "damaged or incomplete",
        ),
        (
            "empty.png",
            Vec::new(),
            "image/png",
            "Choose a file to upload",
        ),
    ];
    for (name, bytes, declared, message) in refused {
        let form = Form::new()
            .text("category", "insurance_card")
            .text("note", "front")
            .part(
                "file",
                Part::bytes(bytes)
                    .file_name(name)
                    .mime_str(declared)
                    .unwrap(),
            );
        let resp = patient.post_multipart("/documents/upload", form).await;
        assert_eq!(resp.status(), 422, "{name}");
        let page = resp.text().await.unwrap();
        assert!(
            page.contains(message),
            "{name}: {message:?} not in the page"
        );
        assert!(page.contains("There is a problem"));
    }
    let mut big = b"%PDF-1.7\n".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b' ');
    big.extend_from_slice(b"%%EOF");
    let form = Form::new().text("category", "outside_records").part(
        "file",
        Part::bytes(big)
            .file_name("big.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    );
    let resp = patient.post_multipart("/documents/upload", form).await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("larger than 10 MB"));
    assert!(
        stored_files(&blob_dir).is_empty(),
        "a refused file left a blob"
    );

    // A real photo of the card.
    let form = Form::new()
        .text("category", "insurance_card")
        .text("note", "Front of my new card")
        .part(
            "file",
            Part::bytes(PNG.to_vec())
                .file_name("IMG_0001.PNG")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let resp = patient.post_multipart("/documents/upload", form).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/documents?done=uploaded");
    let (_, page) = patient.page("/documents").await;
    assert!(
        page.contains("Insurance card") && page.contains("Front of my new card"),
        "{page}"
    );
    let files = stored_files(&blob_dir);
    assert_eq!(files.len(), 1);
    assert!(
        !contains(&files[0].1, &PNG[12..40]),
        "the photo is stored in the clear"
    );

    // The clinician sees it and downloads the same bytes; billing staff cannot reach it.
    let mut doc = app.sign_in(&host, "doc@example.com", PASSWORD).await;
    let list = format!("/admin/patients/{ana}/documents");
    let (status, page) = doc.page(&list).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Insurance card") && page.contains("Uploaded by the patient"),
        "{page}"
    );
    let href = page
        .split(&format!("href=\"{list}/"))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let resp = doc.get(&format!("{list}/{href}/download")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PNG);
    let mut billing = app.sign_in(&host, "billing@example.com", PASSWORD).await;
    let (status, _) = billing.page(&list).await;
    assert_ne!(status, 200, "billing staff must not see clinical documents");

    // The patient removes it: gone from both lists, kept (with its blob) for the audit trail.
    let resp = patient
        .post_form(&format!("/documents/{href}/remove"), &[])
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = patient.page("/documents").await;
    assert!(!page.contains("Front of my new card"));
    let (_, page) = doc.page(&list).await;
    assert!(!page.contains("Front of my new card"));
    assert_eq!(stored_files(&blob_dir).len(), 1);
    assert_eq!(audit_count(&app, &sunrise, "document.upload").await, 1);
    assert_eq!(audit_count(&app, &sunrise, "document.remove").await, 1);
    // A removed document is not found, even by its own id.
    let (status, _) = patient.page(&format!("/documents/{href}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_blob_whose_row_never_committed_is_swept_and_a_committed_one_is_kept() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    app.patient(&sunrise, "Ana", "ana@example.com").await;
    let blob_dir = app.db.blob_dir.clone().unwrap();
    let vault = app.db.config.vault().await.unwrap();
    let db = app.db.tenant_db().await;

    // A writer that crashed after storing its blob, before its row committed.
    let orphan =
        portal_domain::documents::store::blob_name(portal_domain::ids::DocumentId::new()).unwrap();
    let key = vault
        .prepare(&db, &sunrise, &orphan, app.clock.now())
        .await
        .unwrap();
    vault
        .put(&key, sunrise.id(), &orphan, b"half of something")
        .await
        .unwrap();
    // And a real upload, committed.
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let form = Form::new()
        .text("category", "other")
        .part("file", Part::bytes(PNG.to_vec()).file_name("x.png"));
    assert_eq!(
        patient
            .post_multipart("/documents/upload", form)
            .await
            .status(),
        303
    );
    assert_eq!(stored_files(&blob_dir).len(), 2);

    // Before the grace period nothing is touched; after it the orphan alone is gone.
    app.jobs_settled().await;
    assert_eq!(stored_files(&blob_dir).len(), 2);
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(app.jobs_settled().await, 0);
    let left = stored_files(&blob_dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left[0].0.display().to_string().contains(orphan.as_str()));
    // (Two hours idle ended the session.)
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let (_, page) = patient.page("/documents").await;
    assert!(page.contains("Other document"));
    let href = page
        .split("href=\"/documents/doc_")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let resp = patient
        .get(&format!("/documents/doc_{href}/download"))
        .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PNG);

    // A claim that comes after the sweep fails: no row may name a deleted blob.
    let late =
        portal_domain::documents::store::blob_name(portal_domain::ids::DocumentId::new()).unwrap();
    let key = vault
        .prepare(&db, &sunrise, &late, app.clock.now())
        .await
        .unwrap();
    vault.put(&key, sunrise.id(), &late, b"late").await.unwrap();
    portal_domain::documents::vault::sweep(&db, &sunrise, vault.store(), late.as_str())
        .await
        .unwrap();
    let mut tx = db.begin(&sunrise).await.unwrap();
    let claimed = portal_domain::documents::vault::claim(&mut tx, &late).await;
    assert!(matches!(
        claimed,
        Err(portal_domain::documents::VaultError::Swept)
    ));
}

#[tokio::test]
async fn a_store_that_is_down_fails_uploads_clearly_and_marks_renders_failed_to_retry() {
    // Nothing listens on this port: the object store is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::spawn_with_workers(HashMap::from([
        ("PORTAL_BLOB_STORE", "s3".to_owned()),
        ("PORTAL_S3_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("PORTAL_S3_BUCKET", "documents".to_owned()),
        ("PORTAL_S3_ACCESS_KEY_ID", "test".to_owned()),
        ("PORTAL_S3_SECRET_ACCESS_KEY", "test".to_owned()),
    ]))
    .await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    app.patient(&sunrise, "Ana", "ana@example.com").await;
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;

    let form = Form::new()
        .text("category", "insurance_card")
        .part("file", Part::bytes(PNG.to_vec()).file_name("card.png"));
    let resp = patient.post_multipart("/documents/upload", form).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.text().await.unwrap().contains("Nothing was saved"));
    let (_, page) = patient.page("/documents").await;
    assert!(page.contains("No documents yet."));

    let resp = patient
        .post_form("/documents", &[("kind", "medication_list")])
        .await;
    assert_eq!(resp.status(), 303);
    let doc_page = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        app.jobs_settled().await,
        1,
        "the render job dies after its attempts"
    );
    let (_, page) = patient.page(&doc_page).await;
    assert!(page.contains("Could not be prepared"), "{page}");
    assert!(page.contains("We could not prepare this document"));
    assert!(page.contains("data-testid=\"document-retry\""));

    // Trying again runs a new render (which fails again while the store is down).
    let resp = patient.post_form(&format!("{doc_page}/retry"), &[]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(app.jobs_settled().await, 2, "a second render was attempted");
    let (_, page) = patient.page(&doc_page).await;
    assert!(page.contains("Could not be prepared"), "{page}");
}

#[tokio::test]
async fn a_clinician_writes_a_referral_letter_in_the_clinics_words_and_the_patient_gets_it() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    app.staff(&sunrise, "admin@example.com", Role::ClinicAdmin)
        .await;
    app.staff(&sunrise, "doc@example.com", Role::Clinician)
        .await;

    // The clinic's own words; a misspelt placeholder is refused, not printed.
    let mut admin = app.sign_in(&host, "admin@example.com", PASSWORD).await;
    let resp = admin
        .post_form(
            "/admin/letters",
            &[("template", "Dear {recipent}, please see {patient}.")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("{recipent} is not a placeholder we know")
    );
    let words = "Dear {recipient},\nSunrise asks you to see {patient} (born {born}) about {reason}.\n{details}\nWith thanks, {clinician}";
    let resp = admin
        .post_form("/admin/letters", &[("template", words)])
        .await;
    assert_eq!(resp.status(), 303);

    // The clinician's form says what is missing, then makes the letter.
    let mut doc = app.sign_in(&host, "doc@example.com", PASSWORD).await;
    let list = format!("/admin/patients/{ana}/documents");
    let resp = doc
        .post_form(
            &list,
            &[
                ("kind", "referral_letter"),
                ("recipient", ""),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Enter who the letter is to.")
            && page.contains("Enter the reason for the referral.")
    );
    let resp = doc
        .post_form(
            &list,
            &[
                ("kind", "referral_letter"),
                ("recipient", "Dr. Jane Ortho, Lakeside Orthopedics"),
                ("reason", "assessment of right knee pain"),
                ("details", "Pain for six weeks, worse on stairs."),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let doc_page = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(app.jobs_settled().await, 0);
    let resp = doc.get(&format!("{doc_page}/download")).await;
    assert_eq!(resp.status(), 200);
    // Lines may wrap anywhere in the PDF: compare with runs of white space as one space.
    let text = pdftotext(&resp.bytes().await.unwrap())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        "Referral letter",
        "Dear Dr. Jane Ortho, Lakeside Orthopedics,",
        "Sunrise asks you to see Ana Tester (born 27 March 1984) about assessment of right knee pain.",
        "Pain for six weeks, worse on stairs.",
        "With thanks, Test Staff",
        "Current conditions",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    // The patient sees it among their documents; they cannot make one themselves.
    let token = app.api_token(&host, "ana@example.com").await;
    let (_, list) = app
        .api(&host, &token, Method::GET, "/v1/documents", None)
        .await;
    assert_eq!(list[0]["kind"], "referral_letter");
    assert_eq!(list[0]["status"], "ready");
    let (status, body) = app
        .api(
            &host,
            &token,
            Method::POST,
            "/v1/documents",
            Some(json!({"kind": "referral_letter"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "unknown_kind");
}

/// Fetches a document's file through the API (bearer token).
async fn content(
    app: &TestApp,
    host: &str,
    token: &str,
    id: &str,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let resp = app
        .client
        .get(format!("http://{}/api/v1/documents/{id}/content", app.addr))
        .header("host", host)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    (headers, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn every_kind_prints_what_it_says_and_the_api_takes_uploads_and_removals() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    vaccinate(&app, &sunrise, ana.as_uuid()).await;
    let visit = uuid::Uuid::new_v4();
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&sunrise).await.unwrap();
    sqlx::query(
        "INSERT INTO encounters (id, patient_id, starts_at, kind, provider, diagnoses, summary,
                                 updated_at, created_at)
         VALUES ($1, $2, '2026-11-03 14:30+00', 'Annual check-up', 'Dr. Maya Reyes',
                 'Essential hypertension', 'Keep taking lisinopril every morning.', now(), now())",
    )
    .bind(visit)
    .bind(ana.as_uuid())
    .execute(tx.conn())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO medications (id, patient_id, code_system, name, dose, frequency, status,
                                  updated_at, created_at)
         VALUES ($1, $2, 'text', 'Lisinopril 10 mg tablet', '1 tablet', 'once a day', 'active',
                 now(), now())",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(ana.as_uuid())
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let token = app.api_token(&host, "ana@example.com").await;

    let wanted: [(serde_json::Value, &[&str]); 4] = [
        (
            json!({"kind": "immunization_record"}),
            &["Immunization record", "Tdap"],
        ),
        (
            json!({"kind": "medication_list"}),
            &[
                "Medication list",
                "Lisinopril 10 mg tablet",
                "1 tablet, once a day",
            ],
        ),
        (
            json!({"kind": "visit_summary", "visit_id": visit.to_string()}),
            &[
                "Visit summary",
                "Annual check-up",
                "Dr. Maya Reyes",
                "Keep taking lisinopril every morning.",
                "Lisinopril 10 mg tablet",
            ],
        ),
        (
            json!({"kind": "record_summary"}),
            &[
                "Health record summary",
                "Vaccines",
                "Tdap",
                "Medicines",
                "Lisinopril",
                "Visits",
                "Annual check-up",
            ],
        ),
    ];
    let mut ids = Vec::new();
    for (body, _) in &wanted {
        let (status, doc) = app
            .api(
                &host,
                &token,
                Method::POST,
                "/v1/documents",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 202, "{body}: {doc}");
        ids.push(doc["id"].as_str().unwrap().to_owned());
    }
    // A visit that is not hers (or no visit at all) is refused.
    let (status, body) = app
        .api(
            &host,
            &token,
            Method::POST,
            "/v1/documents",
            Some(json!({"kind": "visit_summary", "visit_id": uuid::Uuid::new_v4().to_string()})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("visit_not_found"))
    );
    assert_eq!(app.jobs_settled().await, 0);
    for ((_, expected), id) in wanted.iter().zip(&ids) {
        let (headers, pdf) = content(&app, &host, &token, id).await;
        assert_eq!(headers["cache-control"], "private, no-store");
        let text = pdftotext(&pdf)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for e in
            expected
                .iter()
                .chain(&["Ana Tester", "27 March 1984", "Clinic sunrise", "Page 1 of"])
        {
            assert!(text.contains(e), "{e:?} missing from {id}:\n{text}");
        }
    }

    // Uploads and removal through the API.
    let form = Form::new()
        .text("category", "outside_records")
        .text("note", "Letter from my old clinic")
        .part(
            "file",
            Part::bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec())
                .file_name("old.pdf"),
        );
    let upload = |form: Form| {
        app.client
            .post(format!("http://{}/api/v1/documents/uploads", app.addr))
            .header("host", &host)
            .header("authorization", format!("Bearer {token}"))
            .multipart(form)
            .send()
    };
    let resp = upload(form).await.unwrap();
    assert_eq!(resp.status(), 202);
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (doc["status"].as_str(), doc["media_type"].as_str()),
        (Some("ready"), Some("application/pdf"))
    );
    let id = doc["id"].as_str().unwrap().to_owned();
    let disguised = Form::new().text("category", "other").part(
        "file",
        Part::bytes(b"<html><script>alert(1)</script></html>".to_vec())
            .file_name("photo.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let resp = upload(disguised).await.unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid_file");
    // A generated document is not the patient's to remove; their upload is.
    let (status, _) = app
        .api(
            &host,
            &token,
            Method::DELETE,
            &format!("/v1/documents/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .api(
            &host,
            &token,
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, list) = app
        .api(&host, &token, Method::GET, "/v1/documents", None)
        .await;
    assert_eq!(
        list.as_array().unwrap().len(),
        4,
        "the upload is gone from the list"
    );
}
