//! Identity end to end: clinic sign-up, invitations, sign-in, sessions, passwords, throttling,
//! CSRF and the audit trail — through the real server, database, Redis and job pipeline.

use std::collections::HashMap;

use portal_domain::identity::Role;
use portal_tests::{PASSWORD, TestApp};

fn body_has(body: &str, needle: &str) -> bool {
    body.contains(needle)
}

#[tokio::test]
async fn clinic_sign_up_invites_the_admin_who_must_then_set_up_two_step_sign_in() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let platform = app.db.config.base_domain.clone();
    let mut visitor = app.browser(&platform);

    // Live availability check, then the form.
    let free: serde_json::Value = visitor
        .get("/api/v1/signup/slug-availability?slug=maple")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(free["available"], true);
    let resp = visitor
        .post_form(
            "/signup",
            &[
                ("clinic_name", "Maple Street Clinic"),
                ("slug", "maple"),
                ("time_zone", "America/Chicago"),
                ("admin_name", "Morgan Maple"),
                ("admin_email", "Morgan@Maple.example"),
            ],
        )
        .await;
    // The web records the request; a worker (the only holder of the owner's credentials)
    // provisions the clinic while the page follows its progress.
    assert_eq!(resp.status(), 303);
    let progress = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(progress.starts_with("/signup/requests/"), "{progress}");
    let api = format!("/api/v1{progress}");
    let mut status = serde_json::Value::Null;
    for _ in 0..200 {
        status = visitor.get(&api).await.json().await.unwrap();
        if status["status"] != "in_progress" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "done", "{status}");
    let (st, page) = visitor.page(&progress).await;
    assert_eq!(st, 200);
    assert!(body_has(&page, "Check your email"), "{page}");
    assert!(
        !page.contains("morgan@maple.example"),
        "no personal details on the page"
    );
    let taken: serde_json::Value = visitor
        .get("/api/v1/signup/slug-availability?slug=maple")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(taken["available"], false);

    // The invitation is branded with the clinic's name and leads to its own subdomain.
    let email = app.email_to("morgan@maple.example").await;
    assert!(
        email.subject.contains("Maple Street Clinic"),
        "{}",
        email.subject
    );
    assert!(
        email.link().contains(&format!("maple.{platform}")),
        "{}",
        email.link()
    );
    let mut admin = app.browser(&app.host("maple"));
    let resp = admin.get(&email.link_path()).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/invite");
    let (status, form) = admin.page("/invite").await;
    assert_eq!(status, 200);
    assert!(form.contains("morgan@maple.example"));
    assert!(
        !form.contains("dob_day"),
        "staff are not asked for a date of birth"
    );
    let resp = admin
        .post_form("/invite", &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin");
    // A new clinic requires two-step sign-in of its administrators: the console waits until
    // it is set up (tests/tests/mfa.rs goes through the set-up).
    let resp = admin.get("/admin").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/account/security");
    let (status, page) = admin.page("/account/security").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("data-testid=\"must-enrol\"") && page.contains("Maple"),
        "{page}"
    );
    assert_eq!(app.jobs_settled().await, 0);
}

#[tokio::test]
async fn sign_up_errors_are_specific_and_keep_what_was_typed() {
    let app = TestApp::spawn().await;
    app.clinic("taken").await;
    let mut visitor = app.browser(&app.db.config.base_domain.clone());
    let resp = visitor
        .post_form(
            "/signup",
            &[
                ("clinic_name", "Second Clinic"),
                ("slug", "taken"),
                ("time_zone", "Mars/Olympus"),
                ("admin_name", "Sam"),
                ("admin_email", "not-an-email"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Time zone:"), "{page}");
    assert!(page.contains("Your email:"), "{page}");
    assert!(
        page.contains("value=\"Second Clinic\""),
        "kept the clinic name"
    );
    let resp = visitor
        .post_form(
            "/signup",
            &[
                ("clinic_name", "Second Clinic"),
                ("slug", "taken"),
                ("time_zone", "Europe/Paris"),
                ("admin_name", "Sam"),
                ("admin_email", "sam@second.example"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("already taken"));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM control.tenants")
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
    assert_eq!(count, 1, "nothing half-made");
}

#[tokio::test]
async fn a_patient_invitation_checks_date_of_birth_and_works_once() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("oak").await;
    app.staff(&t, "desk@oak.example", Role::FrontDesk).await;
    let host = app.host("oak");
    let mut desk = app.sign_in(&host, "desk@oak.example", PASSWORD).await;
    let resp = desk
        .post_form(
            "/admin/patients/new",
            &[
                ("given_name", "Rosa"),
                ("family_name", "Diaz"),
                ("dob_day", "17"),
                ("dob_month", "5"),
                ("dob_year", "1990"),
                ("email", "rosa@patients.example"),
                ("phone", "(555) 123-4567"),
                ("invite", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());

    let email = app.email_to("rosa@patients.example").await;
    // No health information, not even the patient's name, in the email.
    assert!(!email.raw.contains("Rosa") && !email.raw.contains("1990"));
    let mut rosa = app.browser(&host);
    rosa.get(&email.link_path()).await;
    let (_, form) = rosa.page("/invite").await;
    assert!(
        form.contains(r#"id="dob_day""#),
        "date of birth in three boxes"
    );

    let resp = rosa
        .post_form(
            "/invite",
            &[
                ("dob_day", "18"),
                ("dob_month", "5"),
                ("dob_year", "1990"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("does not match our records")
    );
    let resp = rosa
        .post_form(
            "/invite",
            &[
                ("date_of_birth", "1990-05-17"),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("at least 12 characters"), "{page}");
    assert!(
        page.contains(r#"name="dob_year" inputmode="numeric" maxlength="4" value="1990""#)
            && page.contains(r#"name="dob_day" inputmode="numeric" maxlength="2" value="17""#),
        "kept the date of birth: {page}"
    );

    let resp = rosa
        .post_form(
            "/invite",
            &[
                ("date_of_birth", "1990-05-17"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/");
    let (_, dash) = rosa.page("/").await;
    assert!(dash.contains("Hello, Rosa"), "{dash}");

    // Used once: a second browser opening the same link gets a clear page.
    let mut again = app.browser(&host);
    again.get(&email.link_path()).await;
    let resp = again.get("/invite").await;
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("already been used"));
    // Tampered with.
    let mut forged = app.browser(&host);
    // Always a different last character (replacing it with a fixed one was sometimes no change).
    let mut path = email.link_path();
    let last = path.pop().expect("a token");
    path.push(if last == 'A' { 'B' } else { 'A' });
    forged.get(&path).await;
    let resp = forged.get("/invite").await;
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("not valid"));
}

#[tokio::test]
async fn an_invitation_expires_after_seven_days() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("elm").await;
    app.staff(&t, "admin@elm.example", Role::ClinicAdmin).await;
    let host = app.host("elm");
    let mut admin = app.sign_in(&host, "admin@elm.example", PASSWORD).await;
    let resp = admin
        .post_form(
            "/admin/staff",
            &[
                ("name", "Nia Nurse"),
                ("email", "nia@elm.example"),
                ("role", "clinician"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let email = app.email_to("nia@elm.example").await;
    app.clock
        .advance(chrono::Duration::days(7) + chrono::Duration::minutes(1));
    let mut nia = app.browser(&host);
    nia.get(&email.link_path()).await;
    let resp = nia.get("/invite").await;
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn a_session_is_worthless_on_another_clinic_and_times_out() {
    let app = TestApp::spawn().await;
    let a = app.clinic("alpha").await;
    let b = app.clinic("beta").await;
    app.patient(&a, "Pat", "pat@a.example").await;
    app.staff(&a, "doc@a.example", Role::Clinician).await;
    app.patient(&b, "Pat", "pat@a.example").await; // same email at another clinic

    let mut pat = app
        .sign_in(&app.host("alpha"), "pat@a.example", PASSWORD)
        .await;
    let me: serde_json::Value = pat.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["role"], "patient");
    let token = pat.session_token().unwrap();

    // Replayed on clinic B's host (cookie or bearer): unknown there.
    let mut on_b = app.browser(&app.host("beta"));
    on_b.jar
        .insert("__Host-portal_session".into(), token.clone());
    assert_eq!(on_b.get("/api/v1/me").await.status(), 401);
    let resp = app
        .client
        .get(format!("http://{}/api/v1/me", app.addr))
        .header("host", app.host("beta"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Patients: 30 minutes idle; activity keeps the session alive.
    app.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(pat.get("/api/v1/me").await.status(), 200);
    app.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(pat.get("/api/v1/me").await.status(), 200);
    app.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(pat.get("/api/v1/me").await.status(), 401);

    // Staff: 15 minutes idle.
    let mut doc = app
        .sign_in(&app.host("alpha"), "doc@a.example", PASSWORD)
        .await;
    app.clock.advance(chrono::Duration::minutes(14));
    assert_eq!(doc.get("/api/v1/me").await.status(), 200);
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(doc.get("/api/v1/me").await.status(), 401);

    // Absolute: 12 hours, however active.
    let mut pat = app
        .sign_in(&app.host("alpha"), "pat@a.example", PASSWORD)
        .await;
    for _ in 0..25 {
        app.clock.advance(chrono::Duration::minutes(29));
        pat.get("/api/v1/me").await;
    }
    assert_eq!(pat.get("/api/v1/me").await.status(), 401, "past 12 hours");
}

#[tokio::test]
async fn sign_out_and_password_change_revoke_sessions() {
    let app = TestApp::spawn().await;
    let t = app.clinic("cedar").await;
    app.patient(&t, "Lee", "lee@cedar.example").await;
    let host = app.host("cedar");
    let mut phone = app.sign_in(&host, "lee@cedar.example", PASSWORD).await;
    let mut laptop = app.sign_in(&host, "lee@cedar.example", PASSWORD).await;
    assert_ne!(
        phone.session_token(),
        laptop.session_token(),
        "new token at each sign-in"
    );

    let new_pw = "quiet lantern meadow 42";
    let resp = laptop
        .post_form(
            "/account/password",
            &[
                ("current_password", "wrong wrong wrong"),
                ("password", new_pw),
                ("confirm", new_pw),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("current password is not correct")
    );
    let resp = laptop
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", new_pw),
                ("confirm", new_pw),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        laptop.get("/api/v1/me").await.status(),
        200,
        "this session stays"
    );
    assert_eq!(phone.get("/api/v1/me").await.status(), 401, "others end");

    let resp = laptop.post_form("/logout", &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(laptop.session_token().is_none(), "cookie cleared");
    // The old token itself is revoked server-side, not just forgotten by the browser.
    let old = phone.session_token().unwrap();
    let mut replay = app.browser(&host);
    replay.jar.insert("__Host-portal_session".into(), old);
    assert_eq!(replay.get("/api/v1/me").await.status(), 401);
    app.sign_in(&host, "lee@cedar.example", new_pw).await;
}

#[tokio::test]
async fn api_sign_in_sets_a_hardened_cookie_and_sign_out_needs_the_csrf_token() {
    let app = TestApp::spawn().await;
    let t = app.clinic("birch").await;
    app.patient(&t, "Kim", "kim@birch.example").await;
    let host = app.host("birch");
    let mut b = app.browser(&host);
    let req = app
        .client
        .post(format!("http://{}/api/v1/sessions", app.addr))
        .json(&serde_json::json!({"email": "kim@birch.example", "password": PASSWORD}));
    let resp = b.send(req).await;
    assert_eq!(resp.status(), 201);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "__Host-portal_session=",
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Domain="), "host-only");
    let me: serde_json::Value = resp.json().await.unwrap();
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let token_value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(token_value.len() >= 43, "at least 256 bits, base64");

    let del = |with: Option<&str>| {
        let mut r = app
            .client
            .delete(format!("http://{}/api/v1/sessions/current", app.addr));
        if let Some(c) = with {
            r = r.header("x-csrf-token", c);
        }
        r
    };
    assert_eq!(b.send(del(None)).await.status(), 403);
    assert_eq!(b.send(del(Some("forged"))).await.status(), 403);
    assert_eq!(b.send(del(Some(&csrf))).await.status(), 204);
    assert_eq!(b.get("/api/v1/me").await.status(), 401);
}

#[tokio::test]
async fn cross_site_and_tokenless_form_posts_are_refused() {
    let app = TestApp::spawn().await;
    let t = app.clinic("pine").await;
    app.patient(&t, "Ira", "ira@pine.example").await;
    let host = app.host("pine");
    let mut b = app.browser(&host);
    b.csrf().await;
    // No token in the form.
    let req = app
        .client
        .post(format!("http://{}/login", app.addr))
        .form(&[("email", "ira@pine.example"), ("password", PASSWORD)]);
    assert_eq!(b.send(req).await.status(), 403);
    // A page on another site posting here.
    let csrf = b.csrf().await;
    let req = app
        .client
        .post(format!("http://{}/login", app.addr))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ira@pine.example"),
            ("password", PASSWORD),
        ]);
    assert_eq!(b.send(req).await.status(), 403);
    let req = app
        .client
        .post(format!("http://{}/login", app.addr))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ira@pine.example"),
            ("password", PASSWORD),
        ]);
    assert_eq!(b.send(req).await.status(), 403);
    // A sibling clinic's subdomain is the same *site* but another origin: refused too.
    let req = app
        .client
        .post(format!("http://{}/login", app.addr))
        .header("sec-fetch-site", "same-site")
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ira@pine.example"),
            ("password", PASSWORD),
        ]);
    assert_eq!(b.send(req).await.status(), 403);
    assert!(b.session_token().is_none());
    // What a browser sends for its own form (Origin: null under no-referrer) is accepted.
    let req = app
        .client
        .post(format!("http://{}/login", app.addr))
        .header("sec-fetch-site", "same-origin")
        .header("origin", "null")
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ira@pine.example"),
            ("password", PASSWORD),
        ]);
    assert_eq!(b.send(req).await.status(), 303);
}

#[tokio::test]
async fn wrong_password_and_unknown_account_look_the_same_and_are_throttled() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("fir").await;
    app.patient(&t, "Jo", "jo@fir.example").await;
    let host = app.host("fir");
    let mut b = app.browser(&host);
    let unknown = b
        .post_form(
            "/login",
            &[
                ("email", "nobody@fir.example"),
                ("password", "whatever it is"),
            ],
        )
        .await;
    let wrong = b
        .post_form(
            "/login",
            &[("email", "jo@fir.example"), ("password", "whatever it is")],
        )
        .await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.status(), 401);
    let (u, w) = (unknown.text().await.unwrap(), wrong.text().await.unwrap());
    assert_eq!(
        u.replace("nobody@fir.example", "X"),
        w.replace("jo@fir.example", "X"),
        "same page for both"
    );

    // After the free attempts, the account is throttled with growing waits...
    for _ in 0..4 {
        b.post_form(
            "/login",
            &[
                ("email", "jo@fir.example"),
                ("password", "guess guess guess"),
            ],
        )
        .await;
    }
    let resp = b
        .post_form(
            "/login",
            &[("email", "jo@fir.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(resp.status(), 429, "even the right password waits");
    assert!(resp.text().await.unwrap().contains("reset your password"));
    // ...unknown accounts alike (no way to tell which emails exist)...
    for _ in 0..5 {
        b.post_form(
            "/login",
            &[
                ("email", "ghost@fir.example"),
                ("password", "guess guess guess"),
            ],
        )
        .await;
    }
    let resp = b
        .post_form(
            "/login",
            &[
                ("email", "ghost@fir.example"),
                ("password", "guess guess guess"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 429);

    // ...but the owner can always reset by email, which clears the throttle.
    let resp = b
        .post_form("/password/forgot", &[("email", "jo@fir.example")])
        .await;
    assert_eq!(resp.status(), 200);
    let reset = app.email_to("jo@fir.example").await;
    assert!(reset.subject.contains("Reset"));
    let mut jo = app.browser(&host);
    jo.get(&reset.link_path()).await;
    let new_pw = "amber kettle horizon";
    let resp = jo
        .post_form(
            "/password/reset",
            &[("password", new_pw), ("confirm", new_pw)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.sign_in(&host, "jo@fir.example", new_pw).await;

    // The same "check your email" page for an address with no account, and no email sent.
    let resp = b
        .post_form("/password/forgot", &[("email", "nobody@fir.example")])
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("If nobody@fir.example belongs to an account")
    );
    assert_eq!(app.jobs_settled().await, 0);
    assert!(
        portal_tests::read_emails(&app.mail_dir)
            .iter()
            .all(|e| e.to != "nobody@fir.example")
    );
}

#[tokio::test]
async fn a_reset_link_lasts_thirty_minutes_and_signs_out_everywhere() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("yew").await;
    app.patient(&t, "Max", "max@yew.example").await;
    let host = app.host("yew");
    let mut other = app.sign_in(&host, "max@yew.example", PASSWORD).await;
    let mut b = app.browser(&host);
    b.post_form("/password/forgot", &[("email", "max@yew.example")])
        .await;
    let first = app.email_to("max@yew.example").await;
    app.clock.advance(chrono::Duration::minutes(31));
    let mut late = app.browser(&host);
    late.get(&first.link_path()).await;
    let resp = late.get("/password/reset").await;
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("expired"));

    b.post_form("/password/forgot", &[("email", "max@yew.example")])
        .await;
    let second = app
        .email_in(&app.mail_dir.clone(), "max@yew.example", 1)
        .await;
    let mut max = app.browser(&host);
    max.get(&second.link_path()).await;
    let pw = "copper river sunrise";
    let resp = max
        .post_form(
            "/password/reset",
            &[("password", pw), ("confirm", "copper river sunset")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("not the same"));
    let resp = max
        .post_form("/password/reset", &[("password", pw), ("confirm", pw)])
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        other.get("/api/v1/me").await.status(),
        401,
        "reset signs out everywhere"
    );
    let resp = max
        .post_form("/password/reset", &[("password", pw), ("confirm", pw)])
        .await;
    assert_eq!(resp.status(), 410, "single use");
}

#[tokio::test]
async fn patient_reads_are_audited_and_patients_see_who_looked() {
    let app = TestApp::spawn().await;
    let t = app.clinic("ash").await;
    let pid = app.patient(&t, "Uma", "uma@ash.example").await;
    app.patient(&t, "Vic", "vic@ash.example").await;
    app.staff(&t, "doc@ash.example", Role::Clinician).await;
    app.staff(&t, "boss@ash.example", Role::ClinicAdmin).await;
    let host = app.host("ash");

    let mut doc = app.sign_in(&host, "doc@ash.example", PASSWORD).await;
    let (status, page) = doc.page(&format!("/admin/patients/{pid}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Uma Tester"));
    // Another clinic's id, a made-up id and garbage all answer like a missing one.
    assert_eq!(
        doc.page(&format!(
            "/admin/patients/{}",
            portal_domain::ids::PatientId::new()
        ))
        .await
        .0,
        404
    );
    assert_eq!(doc.page("/admin/patients/not-an-id").await.0, 404);
    // Not an admin: no audit trail (a page that says it is not part of the role).
    assert_eq!(doc.page("/admin/audit").await.0, 403);

    let mut uma = app.sign_in(&host, "uma@ash.example", PASSWORD).await;
    let (_, log) = uma.page("/account/access").await;
    assert!(
        log.contains("Test Staff") && log.contains("Viewed the patient record"),
        "{log}"
    );
    assert!(!log.contains("127.0.0.1"), "the clinic keeps the addresses");
    // A patient cannot open the staff console.
    assert_eq!(uma.page(&format!("/admin/patients/{pid}")).await.0, 403);

    let mut boss = app.sign_in(&host, "boss@ash.example", PASSWORD).await;
    let (status, trail) = boss.page(&format!("/admin/audit?patient={pid}")).await;
    assert_eq!(status, 200);
    assert!(
        trail.contains("Viewed the patient record") && trail.contains("127.0.0.1"),
        "{trail}"
    );
    assert!(trail.contains("Signed in"));

    // Append-only, even for the clinic's own role.
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(&t).await.unwrap();
    let err = sqlx::query("UPDATE audit_log SET action = 'nothing'")
        .execute(tx.conn())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    drop(tx);
    let mut tx = db.begin(&t).await.unwrap();
    assert!(
        sqlx::query("DELETE FROM audit_log")
            .execute(tx.conn())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn self_sign_up_is_off_until_the_clinic_turns_it_on() {
    let app = TestApp::spawn_with_workers(HashMap::new()).await;
    let t = app.clinic("lime").await;
    app.staff(&t, "boss@lime.example", Role::ClinicAdmin).await;
    let host = app.host("lime");
    let mut visitor = app.browser(&host);
    assert_eq!(visitor.page("/register").await.0, 404);
    let mut boss = app.sign_in(&host, "boss@lime.example", PASSWORD).await;
    assert_eq!(
        boss.post_form("/admin/settings", &[("self_signup", "1")])
            .await
            .status(),
        303
    );
    assert_eq!(visitor.page("/register").await.0, 200);
    let resp = visitor
        .post_form(
            "/register",
            &[
                ("given_name", "Nora"),
                ("family_name", "Ng"),
                ("dob_day", "31"),
                ("dob_month", "1"),
                ("dob_year", "2001"),
                ("email", "nora@self.example"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let email = app.email_to("nora@self.example").await;
    visitor.get(&email.link_path()).await;
    let resp = visitor
        .post_form(
            "/invite",
            &[
                ("date_of_birth", "2001-01-31"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert!(visitor.page("/").await.1.contains("Hello, Nora"));
}

#[tokio::test]
async fn the_branding_editor_checks_contrast_and_logo_and_applies_at_once() {
    let app = TestApp::spawn().await;
    let t = app.clinic("teal").await;
    app.staff(&t, "boss@teal.example", Role::ClinicAdmin).await;
    app.staff(&t, "doc@teal.example", Role::Clinician).await;
    let host = app.host("teal");
    let mut doc = app.sign_in(&host, "doc@teal.example", PASSWORD).await;
    assert_eq!(doc.page("/admin/branding").await.0, 403, "admins only");
    let mut boss = app.sign_in(&host, "boss@teal.example", PASSWORD).await;
    let csrf = boss.csrf().await;
    let form = |primary: &str, logo: Option<(&str, Vec<u8>)>| {
        let mut f = reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("name", "Teal Health")
            .text("sender_name", "Teal Health")
            .text("primary_color", primary.to_owned())
            .text("accent_color", "#0f766e");
        if let Some((ct, bytes)) = logo {
            f = f.part(
                "logo",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name("logo")
                    .mime_str(ct)
                    .unwrap(),
            );
        }
        app.client
            .post(format!("http://{}/admin/branding", app.addr))
            .multipart(f)
    };
    let resp = boss.send(form("#fde68a", None)).await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("contrast") && page.contains("4.5:1"),
        "{page}"
    );
    let resp = boss
        .send(form("#0b3d91", Some(("text/plain", b"hello".to_vec()))))
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("Logo"));
    // The declared type is ignored: HTML with script, declared as a PNG, is refused.
    let resp = boss
        .send(form(
            "#0b3d91",
            Some((
                "image/png",
                b"<html><script>alert(1)</script></html>".to_vec(),
            )),
        ))
        .await;
    assert_eq!(resp.status(), 422);
    let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8" fill="#0b3d91"/></svg>"##;
    let resp = boss
        .send(form("#0b3d91", Some(("image/svg+xml", svg.to_vec()))))
        .await;
    assert_eq!(resp.status(), 200);
    let css = app.get(&host, "/branding.css").await.text().await.unwrap();
    assert!(css.contains("#0b3d91"), "{css}");
    let logo = app.get(&host, "/branding/logo").await;
    assert_eq!(logo.headers()["content-type"], "image/svg+xml");
    // The logo keeps its own sandboxing policy (the global headers used to overwrite it).
    let csp = logo.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("sandbox"), "{csp}");
    let (_, home) = boss.page("/admin").await;
    assert!(home.contains("Teal Health"));
    // The change is in the clinic's audit trail.
    let (_, trail) = boss.page("/admin/audit").await;
    assert!(
        trail.contains("Changed the clinic&#39;s branding"),
        "{trail}"
    );
}

#[tokio::test]
async fn console_and_register_forms_name_the_bad_field_and_keep_input() {
    let app = TestApp::spawn().await;
    let t = app.clinic("kiwi").await;
    app.staff(&t, "boss@kiwi.example", Role::ClinicAdmin).await;
    let host = app.host("kiwi");
    let mut boss = app.sign_in(&host, "boss@kiwi.example", PASSWORD).await;
    let patient = |dob: &'static str, email: &'static str, phone: &'static str| {
        let ymd: Vec<&'static str> = dob.split('-').collect();
        vec![
            ("given_name", "Ola"),
            ("family_name", "Berg"),
            ("dob_year", ymd[0]),
            ("dob_month", ymd[1]),
            ("dob_day", ymd[2]),
            ("email", email),
            ("phone", phone),
        ]
    };
    for (fields, expected) in [
        (patient("2999-01-01", "", ""), "cannot be in the future"),
        (patient("1970-01-01", "ola@", ""), "The part after the @"),
        (
            patient("1970-01-01", "", "call me"),
            "may only contain digits",
        ),
    ] {
        let resp = boss.post_form("/admin/patients/new", &fields).await;
        assert_eq!(resp.status(), 422);
        let page = resp.text().await.unwrap();
        assert!(page.contains(expected), "{expected}: {page}");
        assert!(page.contains("value=\"Berg\""), "kept the input");
    }
    let mut invite = patient("1970-01-01", "", "");
    invite.push(("invite", "1"));
    let resp = boss.post_form("/admin/patients/new", &invite).await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("Add an email address"));

    let resp = boss
        .post_form(
            "/admin/staff",
            &[
                ("name", "Eve"),
                ("email", "eve@kiwi.example"),
                ("role", "patient"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Choose one of the staff roles")
    );
    let resp = boss
        .post_form(
            "/admin/staff",
            &[
                ("name", "Boss Two"),
                ("email", "boss@kiwi.example"),
                ("role", "front_desk"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("already exists"));

    // Nothing half-written: no patient from any refused form.
    let (_, patients) = boss.page("/admin/patients").await;
    assert!(patients.contains("No patients"), "{patients}");

    boss.post_form("/admin/settings", &[("self_signup", "1")])
        .await;
    let mut visitor = app.browser(&host);
    let resp = visitor
        .post_form(
            "/register",
            &[
                ("given_name", "Ola"),
                ("family_name", "Berg"),
                ("dob_day", "1"),
                ("dob_month", "1"),
                ("dob_year", "1970"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Enter an email address"), "{page}");
    assert!(page.contains("value=\"Ola\""));
}
