-- Runs inside each clinic's own schema (search_path is set to it; names stay unqualified).
-- The clinic's public-facing profile: what its home page says about it.
CREATE TABLE clinic_profile (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    welcome_message  text NOT NULL DEFAULT '',
    phone            text NULL,
    address          text NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

INSERT INTO clinic_profile DEFAULT VALUES;
