-- Reminders: the clinic's schedule of reminders, each patient's channel choices, and SMS
-- opt-outs and confirmations received by text.
ALTER TABLE booking_rules
    ADD COLUMN reminder_hours integer[] NOT NULL DEFAULT '{72,24}'
        CHECK (cardinality(reminder_hours) <= 5 AND 0 < ALL (reminder_hours) AND 721 > ALL (reminder_hours)),
    ADD COLUMN reminder_email boolean NOT NULL DEFAULT true,
    ADD COLUMN reminder_sms boolean NOT NULL DEFAULT true;

ALTER TABLE patients
    ADD COLUMN reminder_email boolean NOT NULL DEFAULT true,
    ADD COLUMN reminder_sms boolean NOT NULL DEFAULT true,
    -- Set when the patient texted STOP; no SMS goes to them until they opt in again.
    ADD COLUMN sms_opted_out_at timestamptz NULL;
CREATE INDEX patients_phone ON patients (phone) WHERE phone IS NOT NULL;

-- When the patient confirmed by replying CONFIRM (or C) to a reminder.
ALTER TABLE appointments ADD COLUMN confirmed_at timestamptz NULL;
