//! `portal demo`: two clinics with distinct branding, ready to click through. Idempotent: a
//! second run updates what the first created and creates nothing twice.

use chrono::NaiveDate;
use portal_domain::clinic::{ClinicProfile, ProfileInput};
use portal_domain::clock::{Clock, SystemClock};
use portal_domain::identity::Role;
use portal_domain::identity::accounts;
use portal_domain::identity::password::{self, NewPassword};
use portal_domain::patients::NewPatient;
use portal_domain::scheduling::setup::{SeedPlan, VisitTypeInput, seed_if_empty};
use portal_domain::values::{DateOfBirth, EmailAddress, PersonName, PhoneE164};
use portal_tenants::{Logo, Provisioner, Slug, TenantDb, TenantError};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::tenants::CreateArgs;
use crate::{Config, pools};

struct DemoClinic {
    args: fn() -> CreateArgs,
    logo_svg: &'static str,
    welcome: &'static str,
    phone: &'static str,
    address: &'static str,
    hours: &'static str,
    after_hours: &'static str,
}

const SUNRISE_LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#fff7ed"/><circle cx="32" cy="40" r="16" fill="#ea580c"/><rect x="4" y="40" width="56" height="20" fill="#fff7ed"/><path d="M8 44h48" stroke="#9a3412" stroke-width="4" stroke-linecap="round"/></svg>"##;
const HARBOR_LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#eff6ff"/><path d="M6 38c6-6 10-6 16 0s10 6 16 0 10-6 16 0" fill="none" stroke="#1e3a8a" stroke-width="5" stroke-linecap="round"/><path d="M6 50c6-6 10-6 16 0s10 6 16 0 10-6 16 0" fill="none" stroke="#0e7490" stroke-width="5" stroke-linecap="round"/><circle cx="44" cy="18" r="7" fill="#f59e0b"/></svg>"##;

const CLINICS: &[DemoClinic] = &[
    DemoClinic {
        args: || CreateArgs {
            slug: "sunrise".into(),
            name: "Sunrise Family Medicine".into(),
            time_zone: "America/New_York".into(),
            primary_color: "#9a3412".into(),
            accent_color: "#0f766e".into(),
            sender_name: Some("Sunrise Family Medicine".into()),
        },
        logo_svg: SUNRISE_LOGO,
        welcome: "Family care for every age, from newborn check-ups to healthy ageing.",
        phone: "+1 555 010 2000",
        address: "120 Dawn Street, Brooklyn, NY 11201",
        hours: "Mon–Fri 8 am – 6 pm, Sat 9 am – 2 pm, Sun 10 am – 2 pm",
        after_hours: "When we are closed, call our nurse line on +1 555 010 2099. In an emergency, call 911.",
    },
    DemoClinic {
        args: || CreateArgs {
            slug: "harbor".into(),
            name: "Harbor Pediatrics".into(),
            time_zone: "America/Los_Angeles".into(),
            primary_color: "#1e3a8a".into(),
            accent_color: "#0e7490".into(),
            sender_name: Some("Harbor Pediatrics".into()),
        },
        logo_svg: HARBOR_LOGO,
        welcome: "Care for children and teens by the bay, with same-day sick visits.",
        phone: "+1 555 010 3000",
        address: "8 Pier Road, San Francisco, CA 94111",
        hours: "Mon–Fri 8 am – 6 pm, Sat 9 am – 2 pm, Sun 10 am – 2 pm",
        after_hours: "When we are closed, call +1 555 010 3000 and press 1 for the on-call doctor. In an emergency, call 911.",
    },
];

/// Staff of every demo clinic: (local part, name, role).
const STAFF: &[(&str, &str, Role)] = &[
    ("admin", "Alex Admin", Role::ClinicAdmin),
    ("clinician", "Dr. Casey Clinician", Role::Clinician),
    ("frontdesk", "Frankie Front Desk", Role::FrontDesk),
    ("billing", "Bailey Billing", Role::Billing),
];

struct DemoPatient {
    given: &'static str,
    family: &'static str,
    born: (i32, u32, u32),
    phone: &'static str,
}

/// Patients of every demo clinic.
const PATIENTS: &[DemoPatient] = &[
    DemoPatient {
        given: "Ana",
        family: "Lima",
        born: (1984, 3, 27),
        phone: "+15550104001",
    },
    DemoPatient {
        given: "Ben",
        family: "Okafor",
        born: (1991, 11, 2),
        phone: "+15550104002",
    },
    DemoPatient {
        given: "Chloe",
        family: "Nguyen",
        born: (2015, 6, 14),
        phone: "+15550104003",
    },
];

/// Every demo clinic's scheduling: one location, two providers, in-person and video visits,
/// weekday hours and Saturday mornings. The video address is a placeholder service.
fn video_service(slug: &str) -> String {
    format!("https://meet.example.org/{slug}")
}

fn seed_plan<'a>(video_url: &'a str, location: &'a str) -> SeedPlan<'a> {
    let weekdays = vec![1, 2, 3, 4, 5];
    SeedPlan {
        locations: vec![(location, "Main entrance, ground floor")],
        visit_types: vec![
            VisitTypeInput {
                name: "Check-up",
                duration_minutes: "30",
                self_bookable: true,
                audience: "any",
                modality: "in_person",
                video_base_url: "",
            },
            VisitTypeInput {
                name: "Video visit",
                duration_minutes: "20",
                self_bookable: true,
                audience: "any",
                modality: "video",
                video_base_url: video_url,
            },
            VisitTypeInput {
                name: "Annual physical",
                duration_minutes: "60",
                self_bookable: false,
                audience: "any",
                modality: "in_person",
                video_base_url: "",
            },
        ],
        providers: vec![
            (
                "Dr. Casey Clinician",
                vec!["Check-up", "Video visit", "Annual physical"],
            ),
            ("Dr. Morgan Reyes", vec!["Check-up", "Video visit"]),
        ],
        hours: vec![
            (
                "Dr. Casey Clinician",
                location,
                weekdays.clone(),
                "08:00",
                "17:00",
            ),
            ("Dr. Casey Clinician", location, vec![6], "09:00", "12:00"),
            ("Dr. Morgan Reyes", location, weekdays, "12:00", "18:00"),
            ("Dr. Morgan Reyes", location, vec![6, 7], "10:00", "14:00"),
        ],
    }
}

/// What exists after `portal demo`, as `portal demo --json` prints it.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub platform_url: String,
    pub tenants: Vec<ManifestTenant>,
    /// Every demo account; all share the password from `PORTAL_DEMO_PASSWORD`.
    pub users: Vec<ManifestUser>,
}

#[derive(Debug, Serialize)]
pub struct ManifestUser {
    pub tenant: String,
    pub email: String,
    pub role: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct ManifestTenant {
    pub slug: String,
    pub name: String,
    pub host: String,
    pub url: String,
    pub time_zone: String,
    pub status: String,
}

/// The demo record ends on a fixed day (or today, if that is earlier), so that running the
/// demo again sends the same bundle and the import writes nothing new.
fn record_until(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .map_or(now, |fixed| fixed.min(now))
}

/// Gives every demo patient a ten-year record, imported as an EHR would send it: a FHIR R4
/// transaction bundle through the same import the `/fhir/R4` endpoint runs, with a key made
/// for it and revoked after (so the demo leaves no live key behind). Importing again on a
/// later run changes nothing.
async fn import_records(
    db: &TenantDb,
    tenant: &portal_tenants::Tenant,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    use portal_domain::audit::AuditContext;
    use portal_domain::identity::api_keys;
    use portal_domain::record::fhir::{self, ImportError};
    let ctx = AuditContext::default();
    let mut tx = db.begin(tenant).await?;
    let (key_id, key) = api_keys::create(&mut tx, None, &ctx, "Demo record import", now).await?;
    let scope = api_keys::authenticate(&mut tx, &key, now)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo's own key was not accepted"))?;
    for p in PATIENTS {
        let (y, m, d) = p.born;
        let email = format!(
            "{}.{}@{}.example",
            p.given.to_lowercase(),
            p.family.to_lowercase(),
            tenant.slug()
        );
        let mrn = format!("{}-{}", tenant.slug(), p.given.to_lowercase());
        let born = format!("{y:04}-{m:02}-{d:02}");
        let person = crate::demo_record::Person {
            given: p.given,
            family: p.family,
            birth_date: &born,
            email: &email,
            mrn: &mrn,
        };
        // The demo patients exist already: link each to the "EHR"'s MRN first, as a clinic
        // links its existing patients before the first import.
        let account = accounts::by_email(&mut tx, &EmailAddress::parse(&email)?).await?;
        if let Some(patient) = account.and_then(|a| a.patient_id) {
            fhir::link_patient(
                &mut tx,
                &ctx,
                patient,
                crate::demo_record::MRN_SYSTEM,
                &mrn,
                now,
            )
            .await?;
        }
        let bundle = crate::demo_record::bundle(&person, 30, record_until(now));
        match fhir::import(&mut tx, &scope, &ctx, &bundle, now).await {
            Ok(_) => {}
            Err(ImportError::Refused(issues)) => {
                anyhow::bail!("the demo record was refused: {issues:?}")
            }
            Err(ImportError::Database(e)) => return Err(e.into()),
        }
    }
    api_keys::revoke(&mut tx, None, &ctx, key_id, now).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn run(config: &Config) -> anyhow::Result<Manifest> {
    let admin = pools::admin_pool(config).await?;
    let app = pools::app_pool(config).await?;
    let provisioner = Provisioner::new(admin, config.app_role()?);
    let tenant_db = TenantDb::new(app);
    let pw = NewPassword::parse(config.demo_password.expose_secret(), None)
        .map_err(|e| anyhow::anyhow!("PORTAL_DEMO_PASSWORD is not acceptable: {e}"))?;
    let hash = password::hash(&pw).await?;
    let now = SystemClock.now();
    let mut tenants = Vec::new();
    let mut users = Vec::new();
    for clinic in CLINICS {
        let mut new = (clinic.args)().parse()?;
        new.logo = Some(Logo::new(clinic.logo_svg.as_bytes().to_vec())?);
        let slug: Slug = new.slug.clone();
        let tenant = match provisioner.create(new.clone()).await {
            Ok(t) => t,
            Err(TenantError::SlugTaken(_)) => provisioner.update_branding(&slug, &new).await?,
            Err(e) => return Err(e.into()),
        };
        let profile = ClinicProfile::parse(&ProfileInput {
            welcome_message: clinic.welcome,
            phone: clinic.phone,
            address: clinic.address,
            hours: clinic.hours,
            after_hours: clinic.after_hours,
            provider_in_emails: true,
        })?;
        let mut tx = tenant_db.begin(&tenant).await?;
        profile.save(&mut tx).await?;
        // The demo's passwords are published, and its tour walks straight into every role's
        // pages: demo clinics do not require two-step sign-in (real clinics require it of
        // administrators by default). Anyone may still turn it on at /account/security.
        portal_domain::identity::mfa::seed_requirement(
            &mut tx,
            portal_domain::identity::mfa::Requirement::Off,
        )
        .await?;
        let slug = tenant.slug().to_owned();
        for (local, name, role) in STAFF {
            let email = EmailAddress::parse(&format!("{local}@{slug}.example"))?;
            if accounts::by_email(&mut tx, &email).await?.is_none() {
                accounts::create_active(&mut tx, &email, name, *role, None, &hash, now).await?;
            }
            users.push(ManifestUser {
                tenant: slug.clone(),
                email: email.to_string(),
                role: role.as_str().to_owned(),
                name: (*name).to_owned(),
            });
        }
        for DemoPatient {
            given,
            family,
            born: (y, m, d),
            phone,
        } in PATIENTS
        {
            let email = EmailAddress::parse(&format!(
                "{}.{}@{slug}.example",
                given.to_lowercase(),
                family.to_lowercase()
            ))?;
            if accounts::by_email(&mut tx, &email).await?.is_none() {
                let dob = NaiveDate::from_ymd_opt(*y, *m, *d)
                    .ok_or_else(|| anyhow::anyhow!("bad demo date"))?;
                let new = NewPatient {
                    given_name: PersonName::parse(given, "given name")?,
                    family_name: PersonName::parse(family, "family name")?,
                    date_of_birth: DateOfBirth::from_date(dob),
                    email: Some(email.clone()),
                    phone: Some(PhoneE164::parse(phone)?),
                };
                accounts::create_active_patient(&mut tx, &new, &hash, now).await?;
            }
            users.push(ManifestUser {
                tenant: slug.clone(),
                email: email.to_string(),
                role: Role::Patient.as_str().to_owned(),
                name: format!("{given} {family}"),
            });
        }
        let video_url = video_service(&slug);
        seed_if_empty(&mut tx, &seed_plan(&video_url, "Main clinic"), now).await?;
        tx.commit().await?;
        import_records(&tenant_db, &tenant, now).await?;
        tenants.push(tenant);
    }
    Ok(Manifest {
        platform_url: format!("http://{}", config.public_host(None)),
        tenants: tenants
            .into_iter()
            .map(|t| ManifestTenant {
                slug: t.slug().to_owned(),
                name: t.display_name().to_owned(),
                host: config.public_host(Some(t.slug())),
                url: config.clinic_url(t.slug()),
                time_zone: t.time_zone().to_owned(),
                status: t.status().as_str().to_owned(),
            })
            .collect(),
        users,
    })
}
