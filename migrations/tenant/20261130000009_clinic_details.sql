-- The clinic's contact details beyond phone and address: opening hours and what to do after
-- hours or in an emergency (shown wherever the portal says "call the clinic"), and whether
-- visit emails may name the clinician (some clinics consider that sensitive).
ALTER TABLE clinic_profile
    ADD COLUMN hours text NULL,
    ADD COLUMN after_hours text NULL,
    ADD COLUMN provider_in_emails boolean NOT NULL DEFAULT false;
