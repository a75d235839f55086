//! What each role may do: one matrix of role × permission. Routes name the permission they
//! need (the web crate's policy table), and stores demand the scope type that only a role
//! holding that permission can obtain (`identity::scope`), so the check is made once, at the
//! edge, and cannot be skipped further in.

use crate::identity::Role;

/// A kind of work in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// A patient's own portal: their visits, reminders, access report.
    OwnCare,
    /// Look up patients and read their demographics (name, date of birth, contact details).
    Demographics,
    /// Add patients and send them portal invitations.
    Registration,
    /// The schedule: visits with their reasons, booking, moving, cancelling, check-in, and the
    /// messages about them that could not be sent.
    Scheduling,
    /// Clinical data: the health record, notes and results (issue 11 builds on this).
    Clinical,
    /// Statements, payments and the patient's billing account (issue 13 builds on this).
    Billing,
    /// Clinic set-up, branding, settings, staff accounts and the audit trail.
    Administration,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::OwnCare,
        Permission::Demographics,
        Permission::Registration,
        Permission::Scheduling,
        Permission::Clinical,
        Permission::Billing,
        Permission::Administration,
    ];

    /// How people read it (on the "not for your role" page).
    pub fn label(self) -> &'static str {
        match self {
            Permission::OwnCare => "a patient's own portal",
            Permission::Demographics => "patient details",
            Permission::Registration => "adding patients",
            Permission::Scheduling => "the schedule",
            Permission::Clinical => "clinical records",
            Permission::Billing => "billing",
            Permission::Administration => "clinic administration",
        }
    }
}

impl Role {
    /// The matrix. Front desk sees visit reasons because scheduling needs them; billing never
    /// does (nor clinical data), only demographics and billing.
    pub fn may(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Patient => matches!(p, OwnCare),
            // Acting for a family member arrives with proxy access; until then, nothing.
            Role::Proxy => false,
            Role::Clinician => matches!(p, Demographics | Scheduling | Clinical),
            Role::FrontDesk => matches!(p, Demographics | Registration | Scheduling),
            Role::Billing => matches!(p, Demographics | Billing),
            Role::ClinicAdmin => !matches!(p, OwnCare),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_never_reaches_the_schedule_or_clinical_data() {
        assert!(!Role::Billing.may(Permission::Scheduling));
        assert!(!Role::Billing.may(Permission::Clinical));
        assert!(Role::Billing.may(Permission::Demographics));
        assert!(Role::Billing.may(Permission::Billing));
    }

    #[test]
    fn only_patients_have_a_patient_portal_and_staff_never_do() {
        for p in Permission::ALL {
            assert_eq!(Role::Patient.may(p), p == Permission::OwnCare);
        }
        for r in Role::STAFF_ROLES {
            assert!(!r.may(Permission::OwnCare));
            assert!(r.may(Permission::Demographics), "{r:?}");
        }
    }

    #[test]
    fn administration_is_the_admins_alone() {
        for r in Role::STAFF_ROLES {
            assert_eq!(r.may(Permission::Administration), r == Role::ClinicAdmin);
        }
    }
}
