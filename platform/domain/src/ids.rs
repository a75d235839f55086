//! Typed, prefixed ids: a `PatientId` cannot be passed where a `UserId` is expected, and each
//! prints with its prefix (`pat_…`, `usr_…`) so logs read at a glance.

use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// Parses the printed form (`pat_<hex>`); a bare UUID is accepted too.
            pub fn parse(raw: &str) -> Option<Self> {
                let hex = raw.strip_prefix(concat!($prefix, "_")).unwrap_or(raw);
                Uuid::try_parse(hex).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "_{}"), self.0.simple())
            }
        }
    };
}

typed_id!(
    /// A person who can sign in to one clinic's portal (patient or staff).
    UserId,
    "usr"
);
typed_id!(
    /// A patient's record in one clinic.
    PatientId,
    "pat"
);
typed_id!(
    /// A signed-in session.
    SessionId,
    "ses"
);
typed_id!(
    /// A job in the pipeline; also its idempotency key.
    JobId,
    "job"
);

typed_id!(
    /// A place where visits happen.
    LocationId,
    "loc"
);
typed_id!(
    /// Someone patients book visits with.
    ProviderId,
    "prv"
);
typed_id!(
    /// A kind of visit (name, length, in person or video).
    VisitTypeId,
    "vst"
);
typed_id!(
    /// One weekly window of a provider's hours.
    AvailabilityId,
    "avl"
);
typed_id!(
    /// Time off or a closure.
    ExceptionId,
    "exc"
);
typed_id!(
    /// A booked visit.
    AppointmentId,
    "apt"
);
typed_id!(
    /// An offer of an earlier time to a waiting patient.
    OfferId,
    "ofr"
);
typed_id!(
    /// A document: a PDF rendered from the record, or a file a patient uploaded.
    DocumentId,
    "doc"
);

typed_id!(
    /// A patient's billing account (its ledger).
    AccountId,
    "acct"
);
typed_id!(
    /// A statement of what a patient owes for which services.
    StatementId,
    "stm"
);
typed_id!(
    /// A payment toward a patient's account: by card, cash or cheque.
    PaymentId,
    "pay"
);
typed_id!(
    /// Money given back on a payment.
    RefundId,
    "rfd"
);
typed_id!(
    /// A statement's payment plan: its amount due in instalments on dates.
    PlanId,
    "plan"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_with_their_prefix_and_parse_back() {
        let id = PatientId::new();
        let printed = id.to_string();
        assert!(printed.starts_with("pat_"));
        assert_eq!(PatientId::parse(&printed), Some(id));
        assert_eq!(PatientId::parse("pat_nothex"), None);
    }
}
