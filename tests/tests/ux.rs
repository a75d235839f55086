//! The portal as people use it (issue 10): changes that ask first and say exactly what will
//! happen, the clinic's phone number wherever patients are told to call, the patient's home,
//! patient search, role start pages, set-up that can be edited and refuses removal while in
//! use, a readable audit trail (filters, pages, CSV), a grouped access report, and branded
//! error pages.

use portal_domain::identity::Role;
use portal_tests::scheduling::Sched;
use portal_tests::{Browser, PASSWORD, TestApp};

async fn count(app: &TestApp, s: &Sched, sql: &str) -> i64 {
    let schema = s.tenant.schema_name().to_owned();
    let q = sql.replace("{schema}", &format!("\"{schema}\""));
    sqlx::query_scalar(sqlx::AssertSqlSafe(q))
        .fetch_one(&app.db.admin)
        .await
        .unwrap()
}

/// Books a check-up with Dr A through the patient pages; returns the visit's id.
async fn book(who: &mut Browser, s: &Sched, local: &str) -> String {
    let start = s.at(local);
    let resp = who
        .post_form(
            "/appointments",
            &[
                ("visit_type", &s.checkup),
                ("provider", &s.dr_a),
                ("location", &s.location),
                ("start", &start),
                ("reason", "sore knee"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    location
        .trim_start_matches("/appointments/")
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn cancelling_and_moving_ask_first_and_say_exactly_what_will_happen() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("asks").await;
    app.patient(&s.tenant, "Ana", "ana@asks.example").await;
    app.patient(&s.tenant, "Ben", "ben@asks.example").await;
    let mut ana = app.sign_in(&s.host, "ana@asks.example", PASSWORD).await;
    let id = book(&mut ana, &s, "2026-11-03T09:30").await;

    // Opening the cancel page changes nothing; it names the visit in full.
    let (st, ask) = ana.page(&format!("/appointments/{id}/cancel")).await;
    assert_eq!(st, 200);
    assert!(
        ask.contains("Cancel your check-up with Dr A on Tue 3 Nov 2026, 9:30 AM EST?"),
        "{ask}"
    );
    assert!(ask.contains("Yes, cancel this visit"));
    let (_, detail) = ana.page(&format!("/appointments/{id}")).await;
    assert!(detail.contains(r#"data-testid="appointment-status">Booked"#));

    // Another patient's visit answers as missing, without a name.
    let mut ben = app.sign_in(&s.host, "ben@asks.example", PASSWORD).await;
    let (st, page) = ben.page(&format!("/appointments/{id}/cancel")).await;
    assert_eq!(st, 404);
    assert!(!page.contains("Ana") && !page.contains("check-up with"));

    // Moving: the chosen time is checked on its own page before anything moves.
    let new_start = s.at("2026-11-05T10:00");
    let (st, ask) = ana
        .page(&format!(
            "/appointments/{id}/reschedule/confirm?provider={}&location={}&start={}",
            s.dr_a,
            s.location,
            new_start.replace('+', "%2B")
        ))
        .await;
    assert_eq!(st, 200);
    assert!(
        ask.contains(
            "Move your check-up with Dr A from Tue 3 Nov 2026, 9:30 AM EST to Thu 5 Nov 2026, 10:00 AM EST?"
        ),
        "{ask}"
    );
    let (_, detail) = ana.page(&format!("/appointments/{id}")).await;
    assert!(
        detail.contains("Tue 3 Nov 2026, 9:30 AM EST"),
        "not moved yet"
    );

    // Staff see the same care: cancel asks, naming the patient.
    let (st, ask) = s
        .admin
        .page(&format!("/staff/appointments/{id}/cancel"))
        .await;
    assert_eq!(st, 200);
    assert!(
        ask.contains("Cancel Ana Tester’s check-up with Dr A on Tue 3 Nov 2026, 9:30 AM EST?"),
        "{ask}"
    );
    // A visit tomorrow cannot be checked in or marked as missed yet, so neither is offered.
    let (_, schedule) = s.admin.page("/staff/schedule?date=2026-11-03").await;
    assert!(schedule.contains("Ana Tester"));
    assert!(!schedule.contains("action-check-in") && !schedule.contains("action-no-show"));
    assert!(schedule.contains("action-cancel") && schedule.contains("action-move"));

    // Saying yes does it.
    let resp = ana
        .post_form(&format!("/appointments/{id}/cancel"), &[])
        .await;
    assert_eq!(resp.status(), 303);
    let (_, detail) = ana.page(&format!("/appointments/{id}")).await;
    assert!(detail.contains(r#"data-testid="appointment-status">Cancelled"#));
    // A cancelled visit has nothing left to cancel: its page goes back to the visit.
    let resp = ana.get(&format!("/appointments/{id}/cancel")).await;
    assert_eq!(resp.status(), 303);
}

#[tokio::test]
async fn the_clinics_phone_and_hours_show_wherever_patients_are_told_to_call() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("calls").await;
    app.patient(&s.tenant, "Ana", "ana@calls.example").await;

    // A bad number is refused on its field, with the page saying so first.
    let resp = s
        .admin
        .post_form(
            "/admin/clinic",
            &[("phone", "call us"), ("hours", "Mon–Fri 8 am – 6 pm")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("<title>Error: Contact details"), "{page}");
    assert!(
        page.contains(r##"href="#phone""##),
        "the summary links to the field"
    );
    assert!(page.contains(r#"aria-describedby="phone-hint phone-error""#));
    assert!(page.contains(r#"id="phone-error""#) && page.contains("Enter a phone number"));
    assert!(page.contains("Mon–Fri 8 am – 6 pm"), "kept what was typed");

    let resp = s
        .admin
        .post_form(
            "/admin/clinic",
            &[
                ("phone", "(555) 010-4000"),
                ("hours", "Mon–Fri 8 am – 6 pm"),
                ("after_hours", "In an emergency, call 911."),
                ("provider_in_emails", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);

    // The public home page.
    let mut visitor = app.browser(&s.host);
    let (_, home) = visitor.page("/").await;
    assert!(home.contains("(555) 010-4000") && home.contains("In an emergency, call 911."));

    // A visit inside the 24-hour cut-off can only be changed by phone: the page says how.
    let mut ana = app.sign_in(&s.host, "ana@calls.example", PASSWORD).await;
    let id = book(&mut ana, &s, "2026-11-02T11:00").await;
    let (_, detail) = ana.page(&format!("/appointments/{id}")).await;
    let name = s.tenant.display_name();
    assert!(
        detail.contains(&format!(
            "Please call {name} on (555) 010-4000 (Mon–Fri 8 am – 6 pm)."
        )),
        "{detail}"
    );
    assert!(
        !detail.contains("cancel-visit"),
        "no cancel button inside the cut-off"
    );
    // Trying anyway is refused with the same words.
    let resp = ana
        .post_form(&format!("/appointments/{id}/cancel"), &[])
        .await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("(555) 010-4000"));

    // The calendar file says how to change the visit (lines unfolded, as calendar apps read them).
    let ics = ana
        .get(&format!("/appointments/{id}/calendar.ics"))
        .await
        .text()
        .await
        .unwrap()
        .replace("\r\n ", "");
    assert!(ics.contains("To change this visit: Please call"), "{ics}");
    assert!(ics.contains("(555) 010-4000"));
}

#[tokio::test]
async fn the_patients_home_shows_the_next_visit_and_asks_them_to_confirm_it() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("homes").await;
    app.patient(&s.tenant, "Ana", "ana@homes.example").await;
    app.patient(&s.tenant, "Ben", "ben@homes.example").await;
    let mut ana = app.sign_in(&s.host, "ana@homes.example", PASSWORD).await;
    let (_, home) = ana.page("/").await;
    assert!(home.contains("You have no visits booked."));
    assert!(!home.contains("coming soon") && !home.contains("Coming soon"));

    let id = book(&mut ana, &s, "2026-11-04T10:00").await;
    let later = book(&mut ana, &s, "2026-11-20T10:00").await;
    let (_, home) = ana.page("/").await;
    let next = home.split(r#"data-testid="next-visit""#).nth(1).unwrap();
    let next = next.split("</section>").next().unwrap();
    assert!(next.contains("Wed 4 Nov 2026, 10:00 AM EST"), "{next}");
    assert!(next.contains("Check-up with Dr A"));
    // Only the visit within a week asks to be confirmed.
    assert!(home.contains(&format!("/appointments/{id}/confirm")));
    assert!(!home.contains(&format!("/appointments/{later}/confirm")));

    // Ben cannot confirm Ana's visit: it answers as missing.
    let mut ben = app.sign_in(&s.host, "ben@homes.example", PASSWORD).await;
    let resp = ben
        .post_form(&format!("/appointments/{id}/confirm"), &[])
        .await;
    assert_eq!(resp.status(), 404);

    let resp = ana
        .post_form(&format!("/appointments/{id}/confirm"), &[])
        .await;
    assert_eq!(resp.status(), 303);
    let (_, home) = ana.page("/?done=confirmed").await;
    assert!(home.contains("the clinic knows you are coming"));
    assert!(
        !home.contains(&format!("/appointments/{id}/confirm")),
        "task done"
    );
    let (_, detail) = ana.page(&format!("/appointments/{id}")).await;
    assert!(detail.contains("tag-confirmed"));
    assert_eq!(
        count(
            &app,
            &s,
            "SELECT count(*) FROM {schema}.audit_log WHERE action = 'appointment.confirm_online'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn staff_find_patients_by_name_birth_date_phone_or_email_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("finds").await;
    for i in 1..=30 {
        let (given, day, email, phone) = (
            format!("Pat{i:02}"),
            i.to_string(),
            format!("pat{i:02}@finds.example"),
            format!("+1555010{i:04}"),
        );
        let resp = s
            .admin
            .post_form(
                "/admin/patients/new",
                &[
                    ("given_name", &given),
                    ("family_name", "Searchable"),
                    ("dob_day", &day),
                    ("dob_month", "1"),
                    ("dob_year", "1980"),
                    ("email", &email),
                    ("phone", &phone),
                ],
            )
            .await;
        assert_eq!(resp.status(), 303);
    }
    // Another clinic's patient with the same family name is never found here.
    let other = app.scheduling_clinic("elsewhere").await;
    app.patient(&other.tenant, "Outsider", "out@elsewhere.example")
        .await;

    let (_, all) = s.admin.page("/admin/patients?q=searchable").await;
    assert!(all.contains("30 patients found · page 1 of 2"), "{all}");
    assert_eq!(all.matches(r#"data-testid="patient-link""#).count(), 25);
    let (_, second) = s.admin.page("/admin/patients?q=searchable&page=2").await;
    assert_eq!(second.matches(r#"data-testid="patient-link""#).count(), 5);
    assert!(second.contains("Searchable, Pat30"));

    for (q, who) in [
        ("pat07@finds", "Pat07"),
        ("15/1/1980", "Pat15"),
        ("555 010 0012", "Pat12"),
        ("Pat03 searchable", "Pat03"),
    ] {
        let (_, found) = s
            .admin
            .page(&format!(
                "/admin/patients?q={}",
                q.replace(' ', "+").replace('/', "%2F").replace('@', "%40")
            ))
            .await;
        assert!(found.contains("1 patient found"), "{q}: {found}");
        assert!(found.contains(&format!("Searchable, {who}")), "{q}");
    }
    let (_, none) = s.admin.page("/admin/patients?q=Outsider").await;
    assert!(none.contains("No patients found"), "{none}");

    // Corrected details are found under the new name; a bad date is refused on its field.
    let (_, one) = s.admin.page("/admin/patients?q=pat01%40finds").await;
    let id = one
        .split("/admin/patients/pat_")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let edit = format!("/admin/patients/pat_{id}/edit");
    let (st, form) = s.admin.page(&edit).await;
    assert_eq!(st, 200);
    assert!(form.contains(r#"value="Pat01""#) && form.contains(r#"id="dob_year""#));
    let mut fields = vec![
        ("given_name", "Pat01"),
        ("family_name", "Renamed"),
        ("dob_day", "31"),
        ("dob_month", "2"),
        ("dob_year", "1980"),
        ("email", "pat01@finds.example"),
        ("phone", ""),
    ];
    let resp = s.admin.post_form(&edit, &fields).await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains(r#"id="dob_day-error""#));
    fields[2] = ("dob_day", "28");
    let resp = s.admin.post_form(&edit, &fields).await;
    assert_eq!(resp.status(), 303);
    let (_, found) = s.admin.page("/admin/patients?q=renamed").await;
    assert!(
        found.contains("Renamed, Pat01") && found.contains("28 Feb 1980"),
        "{found}"
    );

    // Every patient listed is audited.
    assert!(
        count(
            &app,
            &s,
            "SELECT count(*) FROM {schema}.audit_log WHERE action = 'patient.search'"
        )
        .await
            >= 30
    );
}

#[tokio::test]
async fn each_role_starts_on_its_own_page() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("starts").await;
    for (email, role, start) in [
        (
            "desk@starts.example",
            Role::FrontDesk,
            "/staff/schedule?arrivals=1",
        ),
        (
            "doc@starts.example",
            Role::Clinician,
            "/staff/schedule?mine=1",
        ),
        ("bill@starts.example", Role::Billing, "/billing"),
        ("admin@starts.example", Role::ClinicAdmin, "/admin"),
    ] {
        if role != Role::ClinicAdmin {
            app.staff(&s.tenant, email, role).await;
        }
        let mut who = app.sign_in(&s.host, email, PASSWORD).await;
        let resp = who.get("/").await;
        assert_eq!(resp.headers()["location"], start, "{role:?}");
        let (st, page) = who.page(start).await;
        assert_eq!(st, 200, "{role:?}");
        assert!(!page.contains("coming soon"));
    }
    let mut desk = app.sign_in(&s.host, "desk@starts.example", PASSWORD).await;
    let (_, arrivals) = desk.page("/staff/schedule?arrivals=1").await;
    assert!(
        arrivals.contains("Today&#39;s arrivals — Mon 2 Nov 2026"),
        "{arrivals}"
    );
    // Billing reaches a patient's details but never their visits.
    let mut bill = app.sign_in(&s.host, "bill@starts.example", PASSWORD).await;
    let pid = app.patient(&s.tenant, "Ana", "ana@starts.example").await;
    let (st, page) = bill.page(&format!("/admin/patients/{pid}")).await;
    assert_eq!(st, 200);
    assert!(page.contains("Ana Tester") && !page.contains("Visits"));
    assert!(!page.contains("book-for-patient"));
}

#[tokio::test]
async fn set_up_can_be_edited_and_is_not_removed_while_in_use() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("edits").await;
    app.patient(&s.tenant, "Ana", "ana@edits.example").await;

    let path = format!("/admin/scheduling/visit-types/{}", s.checkup);
    let (st, form) = s.admin.page(&path).await;
    assert_eq!(st, 200);
    assert!(form.contains(r#"value="Check-up""#) && form.contains(r#"value="30""#));
    let resp = s
        .admin
        .post_form(&path, &[("name", "Check-up"), ("duration", "3")])
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"id="duration-error""#), "{page}");
    let resp = s
        .admin
        .post_form(
            &path,
            &[
                ("name", "Check-up visit"),
                ("duration", "45"),
                ("self_bookable", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, setup) = s.admin.page("/admin/scheduling").await;
    assert!(setup.contains("Check-up visit <small>45 min"), "{setup}");

    // In use: a booked visit of this type stops its removal, and says why.
    let mut ana = app.sign_in(&s.host, "ana@edits.example", PASSWORD).await;
    book(&mut ana, &s, "2026-11-03T09:00").await;
    let (st, ask) = s.admin.page(&format!("{path}/delete")).await;
    assert_eq!(st, 200);
    assert!(ask.contains("Remove the visit type “Check-up visit”?"));
    let resp = s.admin.post_form(&format!("{path}/delete"), &[]).await;
    assert_eq!(resp.status(), 409);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("1 upcoming visit is of this type")
    );
    let provider = format!("/admin/scheduling/providers/{}", s.dr_a);
    let resp = s.admin.post_form(&format!("{provider}/delete"), &[]).await;
    assert_eq!(resp.status(), 409);

    // Not in use: removed, no longer offered, past rows untouched.
    let unused = format!("/admin/scheduling/visit-types/{}/delete", s.procedure);
    let resp = s.admin.post_form(&unused, &[]).await;
    assert_eq!(resp.status(), 303);
    let (_, setup) = s.admin.page("/admin/scheduling").await;
    assert!(!setup.contains("Procedure"));
    let dr_b = format!("/admin/scheduling/providers/{}/delete", s.dr_b);
    let resp = s.admin.post_form(&dr_b, &[]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        count(
            &app,
            &s,
            &format!(
                "SELECT count(*) FROM {{schema}}.availability WHERE provider_id = '{}'::uuid",
                s.dr_b.trim_start_matches("prv_")
            )
        )
        .await,
        0,
        "a removed provider's hours go with them"
    );
    assert_eq!(
        count(
            &app,
            &s,
            "SELECT count(*) FROM {schema}.audit_log WHERE action IN ('visit_type.update', 'visit_type.delete', 'provider.delete')"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn the_audit_trail_filters_pages_and_exports_and_the_access_report_groups() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("trails").await;
    let ana_id = app.patient(&s.tenant, "Ana", "ana@trails.example").await;
    let mut ana = app.sign_in(&s.host, "ana@trails.example", PASSWORD).await;
    book(&mut ana, &s, "2026-11-03T09:00").await;
    for _ in 0..3 {
        ana.page("/appointments").await;
    }

    // The patient's report: one line for three looks at the list on one day.
    let (_, report) = ana.page("/account/access").await;
    assert!(report.contains("Listed visits"), "{report}");
    assert!(report.contains("3 times"), "{report}");

    // The admin's trail: filtered by action, each row naming its patient.
    let (st, trail) = s.admin.page("/admin/audit?action=appointment.book").await;
    assert_eq!(st, 200);
    assert!(trail.contains("1 entry"), "{trail}");
    assert!(trail.contains("Booked a visit") && trail.contains("Ana Tester"));
    assert_eq!(trail.matches(r#"data-label="What">"#).count(), 1);
    assert!(trail.contains(r#"data-label="What">Booked a visit"#));
    let (_, by_patient) = s
        .admin
        .page(&format!("/admin/audit?patient={ana_id}"))
        .await;
    assert!(
        by_patient.contains("Access to Ana Tester’s record"),
        "{by_patient}"
    );
    assert!(by_patient.contains(r#"data-label="What">Listed visits"#));
    // Dates outside any activity show nothing.
    let (_, empty) = s
        .admin
        .page("/admin/audit?from=2026-10-01&to=2026-10-31")
        .await;
    assert!(empty.contains("No entries"), "{empty}");

    let resp = s
        .admin
        .get("/admin/audit?action=appointment.book&format=csv")
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time,time_zone,who,role,action,patient,patient_id,client_address,request_id")
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains("Booked a visit") && row.contains("Ana Tester"),
        "{row}"
    );
    assert_eq!(lines.next(), None);
    // Exporting is itself audited: once for the file, and once against each patient it names,
    // so Ana's own report shows that an administrator exported a trail about her.
    assert_eq!(
        count(
            &app,
            &s,
            &format!(
                "SELECT count(*) FROM {{schema}}.audit_log WHERE action = 'audit.export'
                   AND patient_id = '{}'::uuid",
                ana_id.as_uuid()
            )
        )
        .await,
        1
    );
    let (_, report) = ana.page("/account/access").await;
    assert!(report.contains("Exported the audit trail"), "{report}");
}

#[tokio::test]
async fn missing_and_refused_pages_are_branded_and_say_where_to_go() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("errs").await;
    app.patient(&s.tenant, "Ana", "ana@errs.example").await;
    let mut visitor = app.browser(&s.host);
    let (st, page) = visitor.page("/no/such/page").await;
    assert_eq!(st, 404);
    assert!(page.contains("Page not found"));
    assert!(page.contains(s.tenant.display_name()), "branded: {page}");
    assert!(page.contains("Go to the home page"));
    // The API keeps its JSON errors.
    let resp = visitor.get("/api/v1/nothing-here").await;
    assert_eq!(resp.status(), 404);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
    // A patient on a staff page: told what happened and where to go.
    let mut ana = app.sign_in(&s.host, "ana@errs.example", PASSWORD).await;
    let (st, page) = ana.page("/admin/patients").await;
    assert_eq!(st, 403);
    assert!(page.contains("This page is not part of your role") && page.contains("start page"));
    assert!(page.contains(s.tenant.display_name()));
}

#[tokio::test]
async fn visit_emails_name_the_clinician_only_where_the_clinic_allows_and_always_give_its_phone() {
    let app = TestApp::spawn_with_workers(std::collections::HashMap::new()).await;
    let mut s = app.scheduling_clinic("mails").await;
    app.patient(&s.tenant, "Gus", "gus@mails.example").await;
    app.patient(&s.tenant, "Hal", "hal@mails.example").await;
    let resp = s
        .admin
        .post_form(
            "/admin/clinic",
            &[
                ("phone", "(555) 010-4000"),
                ("hours", "Mon–Fri 8 am – 6 pm"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let mut gus = app.sign_in(&s.host, "gus@mails.example", PASSWORD).await;
    book(&mut gus, &s, "2026-11-04T09:00").await;
    assert_eq!(app.jobs_settled().await, 0);
    let plain = app.email_to("gus@mails.example").await;
    assert!(
        !plain.raw.contains("Dr A"),
        "not allowed yet: {}",
        plain.text
    );
    assert!(plain.text.contains("(555) 010-4000"), "{}", plain.text);
    assert!(!plain.raw.contains("sore knee"), "never the reason");

    let resp = s
        .admin
        .post_form(
            "/admin/clinic",
            &[
                ("phone", "(555) 010-4000"),
                ("hours", "Mon–Fri 8 am – 6 pm"),
                ("provider_in_emails", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let mut hal = app.sign_in(&s.host, "hal@mails.example", PASSWORD).await;
    book(&mut hal, &s, "2026-11-04T10:00").await;
    assert_eq!(app.jobs_settled().await, 0);
    let named = app.email_to("hal@mails.example").await;
    assert!(
        named
            .text
            .contains("Wed 4 Nov 2026, 10:00 AM EST with Dr A"),
        "{}",
        named.text
    );
    assert!(!named.raw.contains("sore knee"), "never the reason");
}

/// The design system's library is served from the clinic's own host, compressed for browsers
/// that accept gzip, and cached for a year under a versioned address.
#[tokio::test]
async fn the_css_library_comes_from_our_host_compressed_and_cached() {
    let app = TestApp::spawn().await;
    app.clinic("styles").await;
    let host = app.host("styles");
    let (_, page) = app.browser(&host).page("/login").await;
    assert!(page.contains(r#"<link rel="stylesheet" href="/assets/pico-2.1.1.min.css">"#));
    assert!(!page.contains("https://"), "no third-party requests");
    let plain = app.get(&host, "/assets/pico-2.1.1.min.css").await;
    assert_eq!(plain.status(), 200);
    assert!(
        plain.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let plain = plain.bytes().await.unwrap();
    assert!(plain.starts_with(b"@charset"), "Pico itself");
    let zipped = app
        .client
        .get(format!("http://{}/assets/pico-2.1.1.min.css", app.addr))
        .header("host", &host)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let zipped = zipped.bytes().await.unwrap();
    assert!(
        zipped.len() * 5 < plain.len(),
        "gzip: {} of {}",
        zipped.len(),
        plain.len()
    );
    assert_eq!(&zipped[..2], &[0x1f, 0x8b], "a gzip stream");
}

/// Pages are never kept by the browser (a shared front-desk computer), and the schedule's
/// own refresh does not keep an unattended session alive.
#[tokio::test]
async fn pages_are_not_stored_and_self_refreshes_do_not_extend_a_session() {
    let app = TestApp::spawn().await;
    let mut s = app.scheduling_clinic("stores").await;
    let resp = s.admin.get("/admin/patients?q=tester").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    // Unknown patient filter on the trail: not found, not the whole trail.
    let resp = s.admin.get("/admin/audit?patient=junk").await;
    assert_eq!(resp.status(), 404);
    // Huge page numbers are answered, not overflowed.
    let (st, _) = s
        .admin
        .page("/admin/patients?page=9223372036854775807")
        .await;
    assert_eq!(st, 200);
    let (st, _) = s.admin.page("/admin/audit?page=9223372036854775807").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn a_patient_checks_in_from_home_only_once_check_in_is_open() {
    let app = TestApp::spawn().await;
    let s = app.scheduling_clinic("arrive").await;
    app.patient(&s.tenant, "Ana", "ana@arrive.example").await;
    app.patient(&s.tenant, "Ben", "ben@arrive.example").await;
    let mut ana = app.sign_in(&s.host, "ana@arrive.example", PASSWORD).await;
    // Monday 8:00 now; a visit at 10:00 opens the patient's check-in at 9:30.
    let id = book(&mut ana, &s, "2026-11-02T10:00").await;
    let (_, home) = ana.page("/").await;
    assert!(!home.contains("/arrived"), "too early to check in");
    assert!(home.contains("Check-in opens here half an hour before your visit"));
    let resp = ana
        .post_form(&format!("/appointments/{id}/arrived"), &[])
        .await;
    assert_eq!(resp.status(), 303, "refused, back to the visit");
    let (_, detail) = ana.page(&format!("/appointments/{id}")).await;
    assert!(detail.contains(r#"data-testid="appointment-status">Booked"#));

    // 9:20, ten minutes too early still (the patient stays active; idle sessions end after
    // 30 minutes); then 9:35.
    for _ in 0..4 {
        app.clock.advance(chrono::Duration::minutes(20));
        ana.page("/").await;
    }
    let (_, home) = ana.page("/").await;
    assert!(!home.contains("/arrived"), "not before 9:30");
    app.clock.advance(chrono::Duration::minutes(15));
    let (_, home) = ana.page("/").await;
    assert!(
        home.contains(&format!("/appointments/{id}/arrived")),
        "{home}"
    );
    // Not Ben's to check in: it answers as missing.
    let mut ben = app.sign_in(&s.host, "ben@arrive.example", PASSWORD).await;
    let resp = ben
        .post_form(&format!("/appointments/{id}/arrived"), &[])
        .await;
    assert_eq!(resp.status(), 404);
    let resp = ana
        .post_form(&format!("/appointments/{id}/arrived"), &[])
        .await;
    assert_eq!(resp.headers()["location"], "/?done=arrived");
    let mut desk = app.sign_in(&s.host, "admin@arrive.example", PASSWORD).await;
    let (_, schedule) = desk.page("/staff/schedule?date=2026-11-02").await;
    assert!(
        schedule.contains(r#"data-testid="row-status">Checked in"#),
        "{schedule}"
    );
    assert!(
        schedule.contains("action-complete"),
        "the front desk can finish it"
    );
}
