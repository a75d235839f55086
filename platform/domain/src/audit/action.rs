//! Every kind of audited event, with the words people read for it. An action is a type, not a
//! string, so a new kind of event cannot be written without a label ("Other activity" is gone).

macro_rules! actions {
    ($($variant:ident = $code:literal => $label:literal,)*) => {
        /// What happened. The code is what the trail stores; the label what pages show.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// Every action, for checks over the whole set.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The stable code stored in the trail.
            pub fn code(self) -> &'static str {
                match self {
                    $(Action::$variant => $code,)*
                }
            }

            /// Plain words for the pages.
            pub fn label(self) -> &'static str {
                match self {
                    $(Action::$variant => $label,)*
                }
            }

            pub fn parse(code: &str) -> Option<Action> {
                match code {
                    $($code => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    PatientCreate = "patient.create" => "Created the patient record",
    PatientView = "patient.view" => "Viewed the patient record",
    PatientList = "patient.list" => "Listed patients",
    PatientSearch = "patient.search" => "Searched patients",
    PatientUpdate = "patient.update" => "Changed the patient's details",
    PatientInvite = "patient.invite" => "Sent a portal invitation",
    PatientSelfRegister = "patient.self_register" => "Created an account online",
    RecordView = "record.view" => "Viewed the record",
    RecordCreate = "record.create" => "Added to the record",
    RecordUpdate = "record.update" => "Changed the record",
    RecordHistory = "record.history" => "Viewed earlier versions of the record",
    ResultComment = "result.comment" => "Commented on a result",
    ResultSeen = "result.view" => "Viewed a result",
    ResultNotice = "result.notice" => "Sent a new-result notice",
    ResultPreference = "result.preference" => "Changed when results are shown",
    RecordImport = "record.import" => "Imported records",
    DocumentRequest = "document.request" => "Asked for a document",
    DocumentList = "document.list" => "Listed documents",
    DocumentView = "document.view" => "Viewed a document's details",
    DocumentDownload = "document.download" => "Downloaded a document",
    DocumentRender = "document.render" => "Prepared a document from the record",
    DocumentUpload = "document.upload" => "Uploaded a document",
    DocumentRemove = "document.remove" => "Removed an uploaded document",
    BillingAccountView = "billing.account_view" => "Viewed the billing account",
    StatementCreate = "statement.create" => "Started a statement",
    StatementUpdate = "statement.update" => "Changed a draft statement",
    StatementIssue = "statement.issue" => "Issued a statement",
    StatementVoid = "statement.void" => "Voided a statement",
    StatementView = "statement.view" => "Viewed a statement",
    StatementList = "statement.list" => "Listed statements",
    StatementNotice = "statement.notice" => "Sent a new-statement notice",
    PaymentRecord = "payment.record" => "Recorded a payment",
    ReceiptNotice = "payment.receipt_notice" => "Looked up where to send a payment-received notice",
    PaymentStart = "payment.start" => "Started a card payment",
    PlanCreate = "payment_plan.create" => "Set up a payment plan",
    PlanEnd = "payment_plan.end" => "Ended a payment plan",
    AutopayOn = "autopay.on" => "Saved a card for automatic plan payments",
    AutopayOff = "autopay.off" => "Turned off automatic plan payments",
    AutopayCharge = "autopay.charge" => "Charged a saved card for a plan instalment",
    AutopayNotice = "autopay.notice" => "Sent an automatic-payment failure notice",
    AutopayDeclined = "autopay.declined" => "An automatic plan payment did not go through",
    RefundStart = "refund.start" => "Started a refund",
    RefundDone = "refund.done" => "Refunded a payment",
    DisputeRecord = "dispute.record" => "Recorded a card dispute from Stripe",
    DisputeList = "dispute.list" => "Listed card disputes",
    DisputeAccept = "dispute.accept" => "Accepted a card dispute",
    InsuranceView = "insurance.view" => "Viewed insurance details",
    InsuranceUpdate = "insurance.update" => "Changed insurance details",
    InsuranceVerify = "insurance.verify" => "Verified insurance details",
    ReconciliationView = "reconciliation.view" => "Viewed payments that do not match Stripe",
    PayoutList = "payout.list" => "Listed payouts",
    PaymentList = "payment.list" => "Listed payments",
    PaymentView = "payment.view" => "Viewed a payment",
    GuestPayView = "statement.guest_view" => "Opened a statement with its payment code",
    PaymentsConnect = "payments.connect" => "Connected the clinic's Stripe account",
    ApiKeyCreate = "api_key.create" => "Created an API key",
    ApiKeyRevoke = "api_key.revoke" => "Revoked an API key",
    Signin = "signin" => "Signed in",
    SigninFailed = "signin.failed" => "Failed sign-in",
    Signout = "signout" => "Signed out",
    PasswordChange = "password.change" => "Changed password",
    PasswordChangeFailed = "password.change_failed" => "Entered a wrong current password",
    PasswordReset = "password.reset" => "Reset password by email link",
    InvitationAccept = "invitation.accept" => "Accepted the portal invitation",
    StaffInvite = "staff.invite" => "Invited a member of staff",
    StaffRoleChange = "staff.role_change" => "Changed a staff member's role",
    AuditView = "audit.view" => "Viewed the access log",
    AuditExport = "audit.export" => "Exported the audit trail",
    AppointmentBook = "appointment.book" => "Booked a visit",
    AppointmentView = "appointment.view" => "Viewed a visit",
    AppointmentList = "appointment.list" => "Listed visits",
    AppointmentReschedule = "appointment.reschedule" => "Moved a visit",
    AppointmentCancel = "appointment.cancel" => "Cancelled a visit",
    AppointmentCheckIn = "appointment.check_in" => "Checked in for a visit",
    AppointmentNoShow = "appointment.no_show" => "Marked a visit as missed",
    AppointmentComplete = "appointment.complete" => "Completed a visit",
    AppointmentNotify = "appointment.notify" => "Sent a visit notice",
    AppointmentConfirm = "appointment.confirm" => "Confirmed a visit by text message",
    AppointmentConfirmOnline = "appointment.confirm_online" => "Confirmed a visit online",
    ScheduleView = "schedule.view" => "Viewed the schedule",
    SmsOptOut = "sms.opt_out" => "Stopped text messages",
    SmsOptIn = "sms.opt_in" => "Resumed text messages",
    WaitlistJoin = "waitlist.join" => "Asked for an earlier time",
    WaitlistLeave = "waitlist.leave" => "Stopped waiting for an earlier time",
    WaitlistOffer = "waitlist.offer" => "Sent an earlier-time offer",
    WaitlistOfferMade = "waitlist.offer_made" => "Offered an earlier time",
    WaitlistOffers = "waitlist.offers" => "Listed earlier-time offers",
    WaitlistAccept = "waitlist.accept" => "Took an earlier time",
    ReminderPreferencesView = "reminder_preferences.view" => "Viewed reminder choices",
    ReminderPreferencesUpdate = "reminder_preferences.update" => "Changed reminder choices",
    ReminderRulesUpdate = "reminder_rules.update" => "Changed the clinic's reminder schedule",
    BookingRulesUpdate = "booking_rules.update" => "Changed the clinic's booking rules",
    LocationCreate = "location.create" => "Added a location",
    LocationUpdate = "location.update" => "Changed a location",
    LocationDelete = "location.delete" => "Removed a location",
    ProviderUpdate = "provider.update" => "Changed a provider",
    ProviderDelete = "provider.delete" => "Removed a provider",
    VisitTypeUpdate = "visit_type.update" => "Changed a visit type",
    VisitTypeDelete = "visit_type.delete" => "Removed a visit type",
    ClinicDetailsUpdate = "clinic_details.update" => "Changed the clinic's contact details",
    ProviderCreate = "provider.create" => "Added a provider",
    VisitTypeCreate = "visit_type.create" => "Added a visit type",
    AvailabilityCreate = "availability.create" => "Added opening hours",
    AvailabilityDelete = "availability.delete" => "Removed opening hours",
    TimeOffCreate = "time_off.create" => "Added time off",
    UndeliveredList = "undelivered.list" => "Listed messages that could not be sent",
    SettingsUpdate = "settings.update" => "Changed the clinic's settings",
    BrandingUpdate = "branding.update" => "Changed the clinic's branding",
    LetterTemplateUpdate = "letter_template.update" => "Changed the referral letter's wording",
    MfaEnrol = "mfa.enrol" => "Turned on two-step sign-in",
    MfaRemove = "mfa.remove" => "Turned off two-step sign-in",
    MfaFailed = "mfa.failed" => "Entered a wrong sign-in code",
    MfaRecoveryUsed = "mfa.recovery_used" => "Signed in with a recovery code",
    MfaRequirementChange = "mfa.requirement" => "Changed who must use two-step sign-in",
    StepUp = "step_up" => "Confirmed their identity again",
    PhoneVerified = "phone.verified" => "Confirmed a mobile number",
    PhoneCodeSent = "phone.code_sent" => "Texted a code to confirm a mobile number",
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_action_has_a_distinct_code_and_a_plain_label() {
        let codes: HashSet<_> = Action::ALL.iter().map(|a| a.code()).collect();
        assert_eq!(codes.len(), Action::ALL.len(), "two actions share a code");
        for a in Action::ALL {
            assert_eq!(Action::parse(a.code()), Some(*a));
            let label = a.label();
            assert!(!label.is_empty() && !label.to_lowercase().contains("other activity"));
            assert!(
                !label.contains('_') && !label.contains('.'),
                "{label} reads like a code"
            );
        }
    }
}
