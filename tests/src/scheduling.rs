//! Scheduling set-up for tests, done the way an administrator does it: through the set-up
//! page's forms. Ids are read back from the booking-options API.

use chrono::{DateTime, TimeZone, Utc};
use portal_domain::identity::Role;
use portal_tenants::Tenant;
use serde_json::Value;

use crate::{Browser, PASSWORD, TestApp};

/// Monday 2 November 2026, 08:00 in New York (EST, UTC−5): the tests' "now".
pub fn monday_8am() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 13, 0, 0).unwrap()
}

/// A clinic ready to book: one location, two providers, three visit types.
pub struct Sched {
    pub tenant: Tenant,
    pub host: String,
    pub admin: Browser,
    pub location: String,
    /// Offers every visit type; 09:00–12:00 every day.
    pub dr_a: String,
    /// Offers the check-up only; 09:00–10:00 every day.
    pub dr_b: String,
    /// 30 minutes, in person, anyone may book.
    pub checkup: String,
    /// 20 minutes, video.
    pub video: String,
    /// 60 minutes, booked by staff only.
    pub procedure: String,
}

impl Sched {
    /// `YYYY-MM-DDTHH:MM` New York time as an RFC 3339 instant (EST, November).
    pub fn at(&self, local: &str) -> String {
        let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").unwrap();
        (naive + chrono::Duration::hours(5)).and_utc().to_rfc3339()
    }
}

async fn post_ok(b: &mut Browser, path: &str, fields: &[(&str, &str)]) {
    let resp = b.post_form(path, fields).await;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 303, "{path} refused: {body}");
}

impl TestApp {
    /// Signs in with a bearer token for API calls.
    pub async fn api_token(&self, host: &str, email: &str) -> String {
        let b = self.sign_in(host, email, PASSWORD).await;
        b.session_token().expect("session")
    }

    /// Calls the JSON API with a bearer token; returns the status and the body.
    pub async fn api(
        &self,
        host: &str,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("http://{}/api{path}", self.addr))
            .header("host", host)
            .header("authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("api request");
        let status = resp.status().as_u16();
        let json = resp.json().await.unwrap_or(Value::Null);
        (status, json)
    }

    /// A clinic with scheduling set up through the admin pages, the clock at [`monday_8am`].
    pub async fn scheduling_clinic(&self, slug: &str) -> Sched {
        self.clock.set(monday_8am());
        let tenant = self.clinic(slug).await;
        let admin_email = format!("admin@{slug}.example");
        self.staff(&tenant, &admin_email, Role::ClinicAdmin).await;
        let host = self.host(slug);
        let mut admin = self.sign_in(&host, &admin_email, PASSWORD).await;
        post_ok(
            &mut admin,
            "/admin/scheduling/locations",
            &[("name", "Main Street"), ("address", "1 Main St")],
        )
        .await;
        for (name, minutes, modality, url, bookable) in [
            ("Check-up", "30", "in_person", "", "1"),
            (
                "Video consult",
                "20",
                "video",
                "https://meet.example/clinic",
                "1",
            ),
            ("Procedure", "60", "in_person", "", ""),
        ] {
            post_ok(
                &mut admin,
                "/admin/scheduling/visit-types",
                &[
                    ("name", name),
                    ("duration", minutes),
                    ("audience", "any"),
                    ("modality", modality),
                    ("video_base_url", url),
                    ("self_bookable", bookable),
                ],
            )
            .await;
        }
        let token = self.api_token(&host, &admin_email).await;
        let (_, opts) = self
            .api(
                &host,
                &token,
                reqwest::Method::GET,
                "/v1/booking-options",
                None,
            )
            .await;
        let vt = |name: &str| -> String {
            opts["visit_types"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (checkup, video, procedure) = (vt("Check-up"), vt("Video consult"), vt("Procedure"));
        let location = opts["locations"][0]["id"].as_str().unwrap().to_owned();
        post_ok(
            &mut admin,
            "/admin/scheduling/providers",
            &[
                ("name", "Dr A"),
                ("visit_types", &checkup),
                ("visit_types", &video),
                ("visit_types", &procedure),
            ],
        )
        .await;
        post_ok(
            &mut admin,
            "/admin/scheduling/providers",
            &[("name", "Dr B"), ("visit_types", &checkup)],
        )
        .await;
        let (_, opts) = self
            .api(
                &host,
                &token,
                reqwest::Method::GET,
                "/v1/booking-options",
                None,
            )
            .await;
        let prov = |name: &str| -> String {
            opts["providers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (dr_a, dr_b) = (prov("Dr A"), prov("Dr B"));
        for day in 1..=7 {
            let d = day.to_string();
            for (p, end) in [(&dr_a, "12:00"), (&dr_b, "10:00")] {
                post_ok(
                    &mut admin,
                    "/admin/scheduling/hours",
                    &[
                        ("provider", p),
                        ("location", &location),
                        ("weekday", &d),
                        ("start", "09:00"),
                        ("end", end),
                    ],
                )
                .await;
            }
        }
        Sched {
            tenant,
            host,
            admin,
            location,
            dr_a,
            dr_b,
            checkup,
            video,
            procedure,
        }
    }
}
