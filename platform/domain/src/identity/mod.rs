//! Who may sign in, and how: accounts and roles, passwords, sessions, emailed single-use links
//! (invitations, password resets), sign-in throttling, and the scopes that stores demand.

pub mod access;
pub mod accounts;
pub mod api_keys;
pub mod links;
pub mod mfa;
pub mod password;
pub mod scope;
pub mod sessions;
pub mod signin;
pub mod throttle;
pub mod tokens;

/// What a user is to the clinic. Patients and proxies use the patient side; the others staff it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Patient,
    Proxy,
    Clinician,
    FrontDesk,
    Billing,
    ClinicAdmin,
}

impl Role {
    pub const STAFF_ROLES: [Role; 4] = [
        Role::Clinician,
        Role::FrontDesk,
        Role::Billing,
        Role::ClinicAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Proxy => "proxy",
            Role::Clinician => "clinician",
            Role::FrontDesk => "front_desk",
            Role::Billing => "billing",
            Role::ClinicAdmin => "clinic_admin",
        }
    }

    /// Codes older audit rows carry for today's roles ("staff" was front desk).
    pub const LEGACY_STAFF_CODES: [&'static str; 1] = ["staff"];

    pub fn parse(raw: &str) -> Option<Self> {
        if Self::LEGACY_STAFF_CODES.contains(&raw) {
            return Some(Role::FrontDesk);
        }
        [Role::Patient, Role::Proxy]
            .into_iter()
            .chain(Self::STAFF_ROLES)
            .find(|r| r.as_str() == raw)
    }

    /// How people read the role.
    pub fn label(self) -> &'static str {
        match self {
            Role::Patient => "Patient",
            Role::Proxy => "Proxy",
            Role::Clinician => "Clinician",
            Role::FrontDesk => "Front desk",
            Role::Billing => "Billing",
            Role::ClinicAdmin => "Clinic administrator",
        }
    }

    pub fn is_staff(self) -> bool {
        Self::STAFF_ROLES.contains(&self)
    }

    /// Idle timeout of a session: shorter for staff, whose screens show many patients.
    pub fn idle_timeout(self) -> chrono::Duration {
        if self.is_staff() {
            chrono::Duration::minutes(15)
        } else {
            chrono::Duration::minutes(30)
        }
    }
}

/// Absolute lifetime of any session.
pub const SESSION_ABSOLUTE: chrono::Duration = chrono::Duration::hours(12);
/// How long an invitation link stays valid.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);
/// How long a password-reset link stays valid.
pub const RESET_TTL: chrono::Duration = chrono::Duration::minutes(30);
