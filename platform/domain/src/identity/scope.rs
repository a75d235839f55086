//! Scopes are permissions as types. A handler gets a [`SignedIn`] from the session and asks it
//! for a [`StaffScope`] (patient details), [`SchedulingScope`], [`RegistrationScope`],
//! [`AdminScope`], [`BillingScope`] or [`PatientScope`]; each is handed out only to a role that the matrix in
//! `identity::access` allows, and stores demand the scope they need — so billing can never
//! reach a store that shows visit reasons, a patient's session never reaches a staff store,
//! and a patient store only ever reads the patient the scope names.

use crate::audit::AuditContext;
use crate::identity::Role;
use crate::identity::access::Permission;
use crate::ids::{PatientId, SessionId, UserId};

/// The person behind a valid session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: UserId,
    pub role: Role,
    pub display_name: String,
    pub email: String,
    pub(crate) patient_id: Option<PatientId>,
    pub session_id: SessionId,
    pub csrf_token: String,
    /// How far sign-in got. Only a `Full` session is signed in; the others may use only the
    /// page that completes them.
    pub stage: Stage,
}

/// The stage of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Signed in.
    Full,
    /// The password was right; the two-step code is still to come.
    Code,
    /// The clinic requires two-step sign-in for this role, and it is not set up yet.
    Enrol,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Full => "full",
            Stage::Code => "code",
            Stage::Enrol => "enrol",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Stage::Full, Stage::Code, Stage::Enrol]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

impl SignedIn {
    /// Whether this person's role includes `p`.
    pub fn may(&self, p: Permission) -> bool {
        self.role.may(p)
    }

    fn staff_for(&self, p: Permission) -> Option<StaffScope> {
        (self.stage == Stage::Full && self.role.is_staff() && self.may(p)).then_some(StaffScope {
            user: self.user_id,
            role: self.role,
        })
    }

    /// Any member of staff: patient details (demographics).
    pub fn staff(&self) -> Option<StaffScope> {
        self.staff_for(Permission::Demographics)
    }

    /// Staff who run the schedule (and so see visit reasons).
    pub fn scheduling(&self) -> Option<SchedulingScope> {
        self.staff_for(Permission::Scheduling).map(SchedulingScope)
    }

    /// Staff who add patients and invite them.
    pub fn registration(&self) -> Option<RegistrationScope> {
        self.staff_for(Permission::Registration)
            .map(RegistrationScope)
    }

    /// Staff who read and write the health record: clinicians and administrators (never
    /// billing or the front desk).
    pub fn clinical(&self) -> Option<ClinicalScope> {
        self.staff_for(Permission::Clinical).map(ClinicalScope)
    }

    /// Staff who issue statements and take payments: billing and administrators (never
    /// clinicians or the front desk).
    pub fn billing(&self) -> Option<BillingScope> {
        self.staff_for(Permission::Billing).map(BillingScope)
    }

    pub fn admin(&self) -> Option<AdminScope> {
        self.staff_for(Permission::Administration).map(AdminScope)
    }

    pub fn patient(&self) -> Option<PatientScope> {
        match (self.role, self.patient_id) {
            (Role::Patient, Some(patient))
                if self.stage == Stage::Full && self.may(Permission::OwnCare) =>
            {
                Some(PatientScope {
                    user: self.user_id,
                    patient,
                })
            }
            _ => None,
        }
    }

    /// The audit context of this person's requests.
    pub fn audit(&self, client_addr: Option<String>, request_id: Option<String>) -> AuditContext {
        AuditContext {
            actor: Some((self.user_id, self.role)),
            client_addr,
            request_id,
        }
    }
}

/// Any member of the clinic's staff.
#[derive(Debug, Clone)]
pub struct StaffScope {
    user: UserId,
    role: Role,
}

impl StaffScope {
    pub fn user_id(&self) -> UserId {
        self.user
    }
    pub fn role(&self) -> Role {
        self.role
    }
}

/// Staff who run the schedule: clinicians, front desk, administrators — never billing.
#[derive(Debug, Clone)]
pub struct SchedulingScope(StaffScope);

impl SchedulingScope {
    pub fn staff(&self) -> &StaffScope {
        &self.0
    }
    pub fn user_id(&self) -> UserId {
        self.0.user
    }
}

/// Staff who read and write the health record (`SignedIn::clinical`).
#[derive(Debug, Clone)]
pub struct ClinicalScope(StaffScope);

impl ClinicalScope {
    pub fn staff(&self) -> &StaffScope {
        &self.0
    }
    pub fn user_id(&self) -> UserId {
        self.0.user
    }
}

/// Staff who read and write patients' bills and payments (`SignedIn::billing`).
#[derive(Debug, Clone)]
pub struct BillingScope(StaffScope);

impl BillingScope {
    pub fn staff(&self) -> &StaffScope {
        &self.0
    }
    pub fn user_id(&self) -> UserId {
        self.0.user
    }
}

/// Staff who add patients and send invitations: front desk and administrators.
#[derive(Debug, Clone)]
pub struct RegistrationScope(StaffScope);

impl RegistrationScope {
    pub fn staff(&self) -> &StaffScope {
        &self.0
    }
}

/// A clinic administrator: manages staff, branding and settings, reads the audit trail.
#[derive(Debug, Clone)]
pub struct AdminScope(StaffScope);

impl AdminScope {
    pub fn staff(&self) -> &StaffScope {
        &self.0
    }

    /// The clinic acting through an operator's tool (seeding, imports), not a person. Only
    /// this crate can make one, for services that audit such changes with no actor.
    pub(crate) fn system() -> Self {
        AdminScope(StaffScope {
            user: UserId::from_uuid(uuid::Uuid::nil()),
            role: Role::ClinicAdmin,
        })
    }
}

/// A patient acting for themself.
#[derive(Debug, Clone)]
pub struct PatientScope {
    user: UserId,
    patient: PatientId,
}

impl PatientScope {
    pub fn user_id(&self) -> UserId {
        self.user
    }
    pub fn patient_id(&self) -> PatientId {
        self.patient
    }
}
