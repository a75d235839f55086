//! Insurance end to end: the patient adds their coverage with photos of their card chosen from
//! their own uploads, billing staff see it (and the photos) and mark it verified, the patient's
//! edit after that needs verifying again, every version is kept with who and when, an edit
//! against an older version is refused with the newer shown, bad input is refused field by
//! field, and nobody else's card photo or coverage can be reached.

use std::collections::HashMap;

use portal_domain::identity::Role;
use portal_tests::{Browser, PASSWORD, PNG, TestApp};
use reqwest::multipart::{Form, Part};

/// Uploads a card photo as the patient; returns its document id.
async fn upload_card(b: &mut Browser) -> String {
    let form = Form::new()
        .text("category", "insurance_card")
        .text("note", "Rash on my arm again, for my doctor")
        .part(
            "file",
            Part::bytes(PNG.to_vec())
                .file_name("card.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let resp = b.post_multipart("/documents/upload", form).await;
    assert_eq!(resp.status(), 303);
    // The newest document is listed first; "upload" is the upload page's link.
    let (_, page) = b.page("/documents").await;
    page.split("href=\"/documents/")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .find(|id| !id.starts_with("upload") && !id.contains('/') && !id.contains('?'))
        .expect("the uploaded photo on the documents page")
}

fn coverage<'a>(front: &'a str, member: &'a str, version: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("payer", "Blue Cross Blue Shield"),
        ("plan", "PPO Gold"),
        ("member_id", member),
        ("group_number", "GRP-7"),
        ("subscriber", "Ana Tester"),
        ("relationship", "self"),
        ("front", front),
        ("back", ""),
        ("version", version),
    ]
}

#[tokio::test]
async fn the_patient_gives_their_insurance_and_billing_staff_verify_it() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    let ben = app.patient(&sunrise, "Ben", "ben@example.com").await;
    app.staff(&sunrise, "billing@example.com", Role::Billing)
        .await;
    let mut patient = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let mut other = app.sign_in(&host, "ben@example.com", PASSWORD).await;
    let mut staff = app.sign_in(&host, "billing@example.com", PASSWORD).await;

    let (status, page) = patient.page("/bills/insurance").await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("None given.").count(), 2, "{page}");
    let photo = upload_card(&mut patient).await;
    let bens_photo = upload_card(&mut other).await;

    // Refused field by field, nothing saved.
    for (field, value, words) in [
        ("payer", "", "Enter the insurance company"),
        ("member_id", "", "Enter the member ID"),
        ("relationship", "cousin", "Choose who the insured person is"),
        (
            "front",
            bens_photo.as_str(),
            "Choose one of your card photos",
        ),
        ("group_number", "G\nX", "one line"),
    ] {
        let mut form = coverage(&photo, "XJH123456789", "");
        for f in form.iter_mut() {
            if f.0 == field {
                f.1 = value;
            }
        }
        let resp = patient.post_form("/bills/insurance/primary", &form).await;
        assert_eq!(resp.status(), 422, "{field}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(words), "{field}: {text}");
        assert!(
            text.contains(&format!("href=\"#{field}\""))
                && text.contains(&format!("id=\"{field}\"")),
            "the summary links to the field: {text}"
        );
    }
    let (_, page) = patient.page("/bills/insurance").await;
    assert_eq!(page.matches("None given.").count(), 2, "nothing half-saved");

    let resp = patient
        .post_form(
            "/bills/insurance/primary",
            &coverage(&photo, "XJH123456789", ""),
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = patient.page("/bills/insurance?done=saved").await;
    assert!(page.contains("Blue Cross Blue Shield") && page.contains("XJH123456789"));
    assert!(page.contains("data-testid=\"verified\">Not yet<"), "{page}");

    // Billing staff see it with the card photo, and verify it.
    let (_, account) = staff.page(&format!("/billing/patients/{ana}")).await;
    assert!(account.contains("XJH123456789"), "{account}");
    let front = format!("/billing/patients/{ana}/documents/{photo}");
    assert!(account.contains(&front), "{account}");
    assert_eq!(staff.get(&format!("{front}/download")).await.status(), 200);
    let (_, card_page) = staff.page(&front).await;
    assert!(
        !card_page.contains("for my doctor"),
        "the patient's note to their care team stays with them: {card_page}"
    );
    let resp = staff
        .get(&format!(
            "/billing/patients/{ana}/documents/{bens_photo}/download"
        ))
        .await;
    assert_eq!(resp.status(), 404, "Ben's photo is not Ana's");
    assert_eq!(
        staff
            .get(&format!("/billing/patients/{ben}/documents/{photo}"))
            .await
            .status(),
        404
    );
    let at = account.find("/insurance/").unwrap();
    let coverage_id = account[at + "/insurance/".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let verify = format!("/billing/patients/{ana}/insurance/{coverage_id}/verify");
    // Another patient's path to it answers like a missing one.
    let resp = staff
        .post_form(
            &format!("/billing/patients/{ben}/insurance/{coverage_id}/verify"),
            &[("version", "1")],
        )
        .await;
    assert_eq!(resp.status(), 404);
    let resp = staff.post_form(&verify, &[("version", "1")]).await;
    assert_eq!(resp.status(), 303);
    // Pressed twice: the second is the same verification, not "changed by the patient".
    let resp = staff.post_form(&verify, &[("version", "1")]).await;
    assert_eq!(
        resp.headers()["location"],
        format!("/billing/patients/{ana}?done=verified#insurance").as_str()
    );
    let (_, page) = patient.page("/bills/insurance").await;
    assert!(page.contains("data-testid=\"verified\">Yes<"), "{page}");

    // The patient's form still says version 1: their edit is refused, the newer shown.
    let resp = patient
        .post_form("/bills/insurance/primary", &coverage(&photo, "NEW999", "1"))
        .await;
    assert_eq!(resp.status(), 409);
    let text = resp.text().await.unwrap();
    assert!(text.contains("changed since you opened"), "{text}");
    assert!(
        text.contains("XJH123456789") && !text.contains("NEW999"),
        "{text}"
    );
    // Edited against the current version: saved, and it needs verifying again.
    let resp = patient
        .post_form("/bills/insurance/primary", &coverage(&photo, "NEW999", "2"))
        .await;
    assert_eq!(resp.status(), 303);
    let (_, account) = staff.page(&format!("/billing/patients/{ana}")).await;
    assert!(account.contains("NEW999"), "{account}");
    assert!(
        account.contains("data-testid=\"coverage-verified\">Not yet<"),
        "{account}"
    );
    // Staff acting on the page they had (version 2) are told it changed.
    let resp = staff.post_form(&verify, &[("version", "2")]).await;
    assert_eq!(
        resp.headers()["location"],
        format!("/billing/patients/{ana}?done=changed#insurance").as_str()
    );
    // Every version is kept, with who and when.
    for said in [
        "Added by ana@example.com",
        "Verified by billing@example.com",
        "Changed by ana@example.com",
        "Version 1: Blue Cross Blue Shield, member XJH123456789",
        "Version 3: Blue Cross Blue Shield, member NEW999",
    ] {
        assert!(account.contains(said), "{said}: {account}");
    }
    // Ben sees none of it.
    let (_, page) = other.page("/bills/insurance").await;
    assert!(!page.contains("Blue Cross") && page.matches("None given.").count() == 2);
}

#[tokio::test]
async fn two_first_saves_at_once_keep_one_and_tell_the_other() {
    let app = TestApp::spawn().await;
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    app.patient(&sunrise, "Ana", "ana@example.com").await;
    let mut one = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let mut two = app.sign_in(&host, "ana@example.com", PASSWORD).await;
    let first = coverage("", "AAA111", "");
    let second = coverage("", "BBB222", "");
    let (a, b) = tokio::join!(
        one.post_form("/bills/insurance/primary", &first),
        two.post_form("/bills/insurance/primary", &second),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [303, 409], "one saved, the other told");
    let (_, page) = one.page("/bills/insurance").await;
    assert!(
        page.contains("AAA111") != page.contains("BBB222"),
        "exactly one was kept: {page}"
    );
}
