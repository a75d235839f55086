//! Scopes are permissions as values. A handler gets a [`SignedIn`] from the session and asks it
//! for a [`StaffScope`], [`AdminScope`] or [`PatientScope`]; stores demand the scope they need,
//! so a patient's session can never reach a staff store, and a patient store only ever reads
//! the patient the scope names.

use crate::audit::AuditContext;
use crate::identity::Role;
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
}

impl SignedIn {
    pub fn staff(&self) -> Option<StaffScope> {
        self.role.is_staff().then_some(StaffScope {
            user: self.user_id,
            role: self.role,
        })
    }

    pub fn admin(&self) -> Option<AdminScope> {
        (self.role == Role::ClinicAdmin).then_some(AdminScope(StaffScope {
            user: self.user_id,
            role: self.role,
        }))
    }

    pub fn patient(&self) -> Option<PatientScope> {
        match (self.role, self.patient_id) {
            (Role::Patient, Some(patient)) => Some(PatientScope {
                user: self.user_id,
                patient,
            }),
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
