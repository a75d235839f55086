//! The card-payments world shared by the Stripe tests: a clinic with patients Ana and Ben,
//! billing staff and an admin, a server with workers pointed at a fresh Stripe fake whose
//! webhooks reach it, and the steps every card test takes (onboarding, a statement, paying on
//! Stripe's page, reading the ledger).

use portal_domain::clock::Clock;
use portal_domain::identity::Role;

use crate::stripe_fake::StripeFake;
use crate::{Browser, PASSWORD, TestApp};

pub struct World {
    pub app: TestApp,
    pub stripe: StripeFake,
    pub tenant: portal_tenants::Tenant,
    pub host: String,
    pub ana: portal_domain::ids::PatientId,
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A clinic with a patient (Ana), another (Ben), billing staff and an admin, a server with
/// workers pointed at a fresh Stripe fake, whose webhooks reach the server's platform site.
pub async fn world() -> World {
    let stripe = StripeFake::start();
    let app = TestApp::spawn_with_workers(stripe.env()).await;
    stripe.set_clock(app.clock.now().timestamp()).await;
    stripe
        .deliver_to(app.addr, &app.db.config.base_domain)
        .await;
    let tenant = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&tenant, "Ana", "ana@example.com").await;
    app.patient(&tenant, "Ben", "ben@example.com").await;
    app.staff(&tenant, "billing@example.com", Role::Billing)
        .await;
    app.staff(&tenant, "admin@example.com", Role::ClinicAdmin)
        .await;
    World {
        app,
        stripe,
        tenant,
        host,
        ana,
    }
}

/// A plain HTTP client for Stripe's (the fake's) hosted pages.
pub fn outside() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The admin connects the clinic's Stripe account and completes onboarding on Stripe's page.
pub async fn onboard(w: &World) {
    let mut admin = w.app.sign_in(&w.host, "admin@example.com", PASSWORD).await;
    let (_, page) = admin.page("/admin/payments").await;
    assert!(page.contains("Not connected"), "{page}");
    let resp = admin.post_form("/admin/payments/connect", &[]).await;
    assert_eq!(resp.status(), 303);
    let onboarding = location(&resp);
    assert!(
        onboarding.starts_with(&w.stripe.url()),
        "to Stripe: {onboarding}"
    );
    let (_, page) = admin.page("/admin/payments").await;
    assert!(page.contains(">Pending<"), "{page}");
    // On Stripe's page the admin submits the clinic's details; Stripe sends them back.
    let resp = outside()
        .post(&onboarding)
        .form(&[("business_name", "Sunrise Family Medicine")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let back = location(&resp);
    let path = back.split_once(&w.host).map(|(_, p)| p).unwrap_or(&back);
    let path = path.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit());
    assert_eq!(path, "/admin/payments/return");
    let resp = admin.get(path).await;
    assert_eq!(location(&resp), "/admin/payments?done=returned");
    let (_, page) = admin.page("/admin/payments?done=returned").await;
    assert!(page.contains(">Enabled<"), "{page}");
}

/// Billing issues a statement of `charge` for `patient`; returns its id.
pub async fn statement(w: &World, patient: &portal_domain::ids::PatientId, charge: &str) -> String {
    let mut staff = w
        .app
        .sign_in(&w.host, "billing@example.com", PASSWORD)
        .await;
    let resp = staff
        .post_form(&format!("/billing/patients/{patient}/statements"), &[])
        .await;
    let id = location(&resp)
        .trim_start_matches("/billing/statements/")
        .to_owned();
    let day = (w.app.clock.now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let version = |page: &str| {
        let at = page.find("name=\"version\" value=\"").unwrap() + 22;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    let (_, page) = staff.page(&format!("/billing/statements/{id}")).await;
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/lines"),
            &[
                ("version", &version(&page)),
                ("service_date", &day),
                ("description", "Office visit"),
                ("code", "99213"),
                ("charge", charge),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let (_, page) = staff.page(&format!("/billing/statements/{id}")).await;
    let due = (w.app.clock.now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let resp = staff
        .post_form(
            &format!("/billing/statements/{id}/issue"),
            &[
                ("version", &version(&page)),
                ("due_on", &due),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    id
}

/// The patient asks to pay `amount` and confirms; returns Stripe's Checkout address.
pub async fn patient_checkout(b: &mut Browser, id: &str, amount: &str) -> reqwest::Response {
    let resp = b
        .post_form(&format!("/bills/{id}/pay"), &[("amount", amount)])
        .await;
    assert_eq!(resp.status(), 200, "asks first");
    let ask = resp.text().await.unwrap();
    assert!(ask.contains("Continue to payment"), "{ask}");
    b.post_form(
        &format!("/bills/{id}/pay"),
        &[("amount", amount), ("confirmed", "1")],
    )
    .await
}

/// Pays on Stripe's Checkout page with `card`; returns where Stripe sends the browser.
pub async fn pay_on_stripe(checkout: &str, card: &str) -> reqwest::Response {
    outside()
        .post(checkout)
        .form(&[("card", card)])
        .send()
        .await
        .unwrap()
}

/// The path of an absolute URL on the clinic's site.
pub fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    after_scheme
        .find('/')
        .map(|i| after_scheme[i..].to_owned())
        .unwrap_or_default()
}

/// (balance, sum of entries, entries) of the patient's account.
pub async fn ledger(w: &World, patient: &portal_domain::ids::PatientId) -> (i64, i64, i64) {
    let db = w.app.db.tenant_db().await;
    let mut tx = db.begin(&w.tenant).await.unwrap();
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT a.balance_minor, coalesce(sum(e.amount_minor), 0)::bigint, count(e.id)
         FROM billing_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
         WHERE a.patient_id = $1 GROUP BY a.id",
    )
    .bind(patient.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    row
}

/// The refund links on a statement's billing page, in payment order.
pub async fn refund_links(staff: &mut Browser, id: &str) -> Vec<String> {
    let (_, page) = staff.page(&format!("/billing/statements/{id}")).await;
    page.match_indices("href=\"/billing/payments/")
        .map(|(at, _)| {
            let rest = &page[at + 6..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

pub async fn settled(w: &World) {
    w.stripe.webhooks_idle().await;
    assert_eq!(w.app.jobs_settled().await, 0, "no job may die");
}
