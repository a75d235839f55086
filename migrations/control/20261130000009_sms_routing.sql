-- Texting per clinic (issue 9.8).
--
-- A clinic may have its own sending number, set by the platform operator; without one it
-- texts from the platform's shared number.
ALTER TABLE control.tenants ADD COLUMN sms_number text NULL UNIQUE
    CHECK (sms_number ~ '^\+[1-9][0-9]{6,14}$');

-- Caches of clinics drop an entry when its sending number changes, too.
CREATE OR REPLACE FUNCTION control.notify_tenant_row_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (OLD.slug, OLD.display_name, OLD.status, OLD.time_zone, OLD.primary_color,
            OLD.accent_color, OLD.sender_name, OLD.logo_type, md5(coalesce(OLD.logo, ''::bytea)),
            OLD.sms_number)
           IS NOT DISTINCT FROM
           (NEW.slug, NEW.display_name, NEW.status, NEW.time_zone, NEW.primary_color,
            NEW.accent_color, NEW.sender_name, NEW.logo_type, md5(coalesce(NEW.logo, ''::bytea)),
            NEW.sms_number)
        THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_notify('portal_tenant_changed', '');
    RETURN NULL;
END
$$;

-- STOP is a fact about a phone and the number it replied to, not about a patient record: a
-- STOP to the shared number silences every clinic that texts from it; to a clinic's own
-- number, that clinic. START removes it.
CREATE TABLE control.sms_opt_outs (
    from_number  text NOT NULL,
    phone        text NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (from_number, phone)
);

-- Who last texted a phone from a number: a reply to the shared number goes to that clinic.
CREATE TABLE control.sms_last_sender (
    from_number  text NOT NULL,
    phone        text NOT NULL,
    tenant_id    uuid NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (from_number, phone)
);

-- Texts per phone per (UTC) day, for the daily limit.
CREATE TABLE control.sms_daily (
    phone  text NOT NULL,
    day    date NOT NULL,
    sent   integer NOT NULL,
    PRIMARY KEY (phone, day)
);
