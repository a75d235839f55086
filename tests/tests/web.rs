//! The web shell and API frame, through real HTTP against the real server.

use std::collections::HashMap;

use portal_tenants::{DomainName, Slug, TenantStatus};
use portal_tests::TestApp;
use serde_json::Value;

#[tokio::test]
async fn each_clinic_host_shows_its_own_name_and_colours() {
    let app = TestApp::spawn().await;
    let a = app.db.create_tenant("sunrise").await;
    let b = app.db.create_tenant("harbor").await;
    let slug = Slug::parse("harbor").unwrap();
    let mut harbor = portal_tests::new_tenant("harbor", "America/Los_Angeles");
    harbor.display_name = portal_tenants::DisplayName::parse("Harbor Pediatrics").unwrap();
    harbor.primary_color = portal_tenants::HexColor::parse("#1e3a8a").unwrap();
    app.db
        .provisioner()
        .update_branding(&slug, &harbor)
        .await
        .unwrap();

    let page = app.get(&app.host("sunrise"), "/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(a.display_name()));
    assert!(!html.contains("Harbor"));

    let html = app
        .get(&app.host("harbor"), "/")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Harbor Pediatrics"), "{html}");
    assert!(!html.contains(a.display_name()));
    let css = app
        .get(&app.host("harbor"), "/branding.css")
        .await
        .text()
        .await
        .unwrap();
    assert!(css.contains("--brand-primary:#1e3a8a"), "{css}");
    let css = app
        .get(&app.host("sunrise"), "/branding.css")
        .await
        .text()
        .await
        .unwrap();
    assert!(css.contains("--brand-primary:#123456"), "{css}");
    let _ = b;
}

#[tokio::test]
async fn unknown_hosts_get_404_and_never_a_default_clinic() {
    let app = TestApp::spawn().await;
    app.db.create_tenant("sunrise").await;
    for host in [
        "nowhere.portal.test",
        "a.b.portal.test",
        "evil.example",
        "sunrise.portal.test.evil.example",
        "",
    ] {
        let resp = app.get(host, "/").await;
        assert_eq!(resp.status(), 404, "host {host:?}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Page not found"));
        assert!(
            !html.contains("Clinic sunrise"),
            "host {host:?} leaked a clinic"
        );
    }
    let resp = app.get("nowhere.portal.test", "/api/v1/clinic").await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unknown_site");
    // Health checks answer on any host (load balancers probe by IP).
    assert_eq!(app.get("10.0.0.7:8080", "/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_suspended_clinic_shows_a_clear_page_and_no_data() {
    let app = TestApp::spawn().await;
    app.db.create_tenant("sunrise").await;
    let host = app.host("sunrise");
    assert_eq!(app.get(&host, "/").await.status(), 200); // warm the host cache
    let slug = Slug::parse("sunrise").unwrap();
    app.db
        .provisioner()
        .set_status(&slug, TenantStatus::Suspended)
        .await
        .unwrap();

    // The change reaches the running server through NOTIFY, a moment later.
    assert_eq!(app.status_becomes(&host, "/", 503).await, 503);
    let html = app.get(&host, "/").await.text().await.unwrap();
    assert!(html.contains("This portal is not available"));
    assert!(
        !html.contains("Time zone"),
        "suspended page showed clinic data"
    );
    let resp = app.get(&host, "/api/v1/clinic").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "clinic_unavailable"
    );

    app.db
        .provisioner()
        .set_status(&slug, TenantStatus::Active)
        .await
        .unwrap();
    assert_eq!(app.status_becomes(&host, "/", 200).await, 200);
}

#[tokio::test]
async fn custom_domains_route_only_once_verified() {
    let app = TestApp::spawn().await;
    app.db.create_tenant("sunrise").await;
    let slug = Slug::parse("sunrise").unwrap();
    let domain = DomainName::parse("portal.sunrise-clinic.example").unwrap();
    let p = app.db.provisioner();
    p.add_domain(&slug, &domain).await.unwrap();
    assert_eq!(
        app.get("portal.sunrise-clinic.example", "/").await.status(),
        404
    );
    p.verify_domain(&slug, &domain).await.unwrap();
    assert_eq!(
        app.status_becomes("Portal.Sunrise-Clinic.example:443", "/", 200)
            .await,
        200
    );
    let other = app.db.create_tenant("harbor").await;
    let err = p
        .add_domain(&Slug::parse(other.slug()).unwrap(), &domain)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "domain 'portal.sunrise-clinic.example' already belongs to a clinic"
    );
}

#[tokio::test]
async fn the_platform_site_offers_clinic_sign_up() {
    let app = TestApp::spawn().await;
    for host in ["portal.test", "www.portal.test", "portal.test:8080"] {
        let html = app.get(host, "/").await.text().await.unwrap();
        assert!(html.contains("Sign up your clinic"), "{host}");
        assert!(html.contains("href=\"/signup\""));
    }
    let resp = app.get("portal.test", "/signup").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Sign up your clinic"));
    // Sign-up lives only on the platform's site; a clinic's host shows its own 404 page.
    app.db.create_tenant("sunrise").await;
    let resp = app.get(&app.host("sunrise"), "/signup").await;
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("Page not found"));
    let resp = app.get("portal.test", "/api/v1/clinic").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "not_a_clinic_site"
    );
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_a_request_id() {
    let app = TestApp::spawn().await;
    app.db.create_tenant("sunrise").await;
    let resp = app.get(&app.host("sunrise"), "/").await;
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.headers()["x-request-id"].len() >= 16);
    let html = resp.text().await.unwrap();
    assert!(
        !html.contains("<script"),
        "no scripts are needed on the shell"
    );
    assert!(
        !html.contains("style=\""),
        "inline styles would break the CSP"
    );
    assert!(
        html.contains("<html lang=\"en\" data-theme=\"light\">")
            && html.contains("Skip to main content")
    );
}

#[tokio::test]
async fn api_errors_share_one_shape_and_the_spec_is_served() {
    let app = TestApp::spawn().await;
    app.db.create_tenant("sunrise").await;
    let host = app.host("sunrise");
    let ok: Value = app.get(&host, "/api/v1/clinic").await.json().await.unwrap();
    assert_eq!(ok["slug"], "sunrise");
    assert_eq!(ok["time_zone"], "America/New_York");

    let resp = app.get(&host, "/api/v1/no-such-thing").await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    assert!(body["message"].is_string());

    let resp = app
        .request(reqwest::Method::DELETE, &host, "/api/v1/clinic")
        .await;
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "method_not_allowed"
    );

    let spec: Value = app
        .get(&host, "/api/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/v1/clinic"]["get"].is_object(), "{spec}");
    let docs = app.get(&host, "/api/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn readiness_reports_redis_down_while_the_site_keeps_serving() {
    let app = TestApp::spawn().await;
    let ready = app.get("x", "/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        serde_json::json!({"database": "ok", "redis": "ok"})
    );

    // A Redis nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = TestApp::spawn_with(HashMap::from([(
        "PORTAL_REDIS_URL",
        format!("redis://127.0.0.1:{port}"),
    )]))
    .await;
    app.db.create_tenant("sunrise").await;
    let ready = app.get("x", "/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["redis"], "unavailable");
    assert_eq!(app.get(&app.host("sunrise"), "/").await.status(), 200);
}

#[tokio::test]
async fn the_demo_is_idempotent_and_lists_its_clinics() {
    let app = TestApp::spawn().await;
    let first = portal::demo::run(&app.db.config).await.unwrap();
    let second = portal::demo::run(&app.db.config).await.unwrap();
    let slugs: Vec<_> = second.tenants.iter().map(|t| t.slug.as_str()).collect();
    assert_eq!(slugs, ["sunrise", "harbor"]);
    assert_eq!(first.tenants.len(), second.tenants.len());
    assert_eq!(app.db.registry().list().await.unwrap().len(), 2);
    let json = serde_json::to_value(&second).unwrap();
    assert_eq!(json["tenants"][0]["name"], "Sunrise Family Medicine");
    assert_eq!(json["tenants"][1]["time_zone"], "America/Los_Angeles");
    assert!(
        json["tenants"][0]["host"]
            .as_str()
            .unwrap()
            .starts_with("sunrise.portal.test")
    );

    let html = app
        .get(&app.host("harbor"), "/")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Harbor Pediatrics") && html.contains("8 Pier Road"));
    let logo = app.get(&app.host("harbor"), "/branding/logo").await;
    assert_eq!(logo.status(), 200);
    assert_eq!(logo.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn a_server_error_is_opaque_to_the_client_and_still_carries_security_headers() {
    let app = TestApp::spawn().await;
    app.db.create_tenant("sunrise").await;
    // Break the clinic's schema behind the server's back.
    sqlx::query("DROP TABLE tenant_sunrise.clinic_profile")
        .execute(&app.db.admin)
        .await
        .unwrap();

    let resp = app.get(&app.host("sunrise"), "/").await;
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().contains_key("content-security-policy"));
    assert!(resp.headers().contains_key("x-request-id"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Something went wrong"), "{html}");
    assert!(
        !html.contains("clinic_profile") && !html.contains("relation"),
        "leaked: {html}"
    );

    let resp = app.get(&app.host("sunrise"), "/api/v1/clinic").await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": "internal", "message": "internal error"})
    );
}
