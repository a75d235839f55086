//! What the bills tests share: drafting and issuing a statement through the billing pages as
//! billing staff would, a desk payment, and the ledger read as the clinic.

use portal_domain::clock::Clock;

use portal_domain::identity::Role;
use portal_domain::ids::PatientId;
use portal_tenants::Tenant;

use crate::{Browser, PASSWORD, TestApp};

/// The usual start: the Sunrise clinic with a patient (Ana) and billing staff, signed in.
pub struct Desk {
    pub sunrise: Tenant,
    pub host: String,
    pub ana: PatientId,
    pub staff: Browser,
}

pub async fn desk(app: &TestApp) -> Desk {
    let sunrise = app.clinic("sunrise").await;
    let host = app.host("sunrise");
    let ana = app.patient(&sunrise, "Ana", "ana@example.com").await;
    app.staff(&sunrise, "billing@example.com", Role::Billing)
        .await;
    let staff = app.sign_in(&host, "billing@example.com", PASSWORD).await;
    Desk {
        sunrise,
        host,
        ana,
        staff,
    }
}

/// The statement a POST redirected to, from its `Location`.
pub fn statement_of(resp: &reqwest::Response) -> String {
    let loc = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let id = loc
        .strip_prefix("/billing/statements/")
        .unwrap_or_else(|| panic!("not a statement: {loc}"));
    id.split('?').next().unwrap_or(id).to_owned()
}

pub fn today(app: &TestApp) -> String {
    // Test clinics keep New York time; a day before the clock's is always in the past there.
    (app.clock.now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string()
}

/// The version a statement's page shows (its forms carry it).
pub async fn version(b: &mut Browser, id: &str) -> String {
    let (status, page) = b.page(&format!("/billing/statements/{id}")).await;
    assert_eq!(status, 200, "{page}");
    let at = page
        .find("name=\"version\" value=\"")
        .expect("a form with the statement's version");
    let rest = &page[at + "name=\"version\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A line: what, code, charge, insurance paid, adjustment.
pub type Line<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

pub async fn add_line(
    app: &TestApp,
    b: &mut Browser,
    id: &str,
    line: Line<'_>,
) -> reqwest::Response {
    let (what, code, charge, insurance, adjustment) = line;
    let v = version(b, id).await;
    let day = today(app);
    b.post_form(
        &format!("/billing/statements/{id}/lines"),
        &[
            ("version", &v),
            ("service_date", &day),
            ("description", what),
            ("code", code),
            ("charge", charge),
            ("insurance_paid", insurance),
            ("adjustment", adjustment),
        ],
    )
    .await
}

/// A draft for `patient` with the given lines, issued (confirmed); returns its id.
pub async fn issued_statement(
    app: &TestApp,
    b: &mut Browser,
    patient: &str,
    lines: &[(&str, &str, &str, &str, &str)],
) -> String {
    let resp = b
        .post_form(&format!("/billing/patients/{patient}/statements"), &[])
        .await;
    assert_eq!(resp.status(), 303);
    let id = statement_of(&resp);
    for (what, code, charge, ins, adj) in lines {
        let resp = add_line(app, b, &id, (what, code, charge, ins, adj)).await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    }
    let v = version(b, &id).await;
    let due = (app.clock.now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let resp = b
        .post_form(
            &format!("/billing/statements/{id}/issue"),
            &[("version", &v), ("due_on", &due), ("confirmed", "1")],
        )
        .await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    id
}

pub async fn pay(b: &mut Browser, id: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let resp = b
        .post_form(&format!("/billing/statements/{id}/payments"), fields)
        .await;
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// (balance, sum of entries, entries) of every account, read as the clinic.
pub async fn ledger(app: &TestApp, tenant: &portal_tenants::Tenant) -> Vec<(i64, i64, i64)> {
    let db = app.db.tenant_db().await;
    let mut tx = db.begin(tenant).await.unwrap();
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT a.balance_minor, coalesce(sum(e.amount_minor), 0)::bigint, count(e.id)
         FROM billing_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
         GROUP BY a.id ORDER BY a.id",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}
