-- Two-step sign-in (TOTP, RFC 6238) with single-use recovery codes, a clinic setting for who
-- must use it, and the stage a session is in until the second step is done.

-- 'admins' (the default): clinic administrators must; 'all_staff': every member of staff;
-- 'off': nobody must (anyone may still turn it on for themself, patients included).
ALTER TABLE clinic_profile ADD COLUMN mfa_required text NOT NULL DEFAULT 'admins'
    CHECK (mfa_required IN ('off', 'admins', 'all_staff'));

CREATE TABLE mfa_totp (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret        bytea NOT NULL,
    -- Null while the person is setting it up (they have not yet typed a code from the app).
    confirmed_at  timestamptz NULL,
    -- The last time step a code was accepted for: a code is refused if its step is not later.
    last_step     bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL
);

CREATE TABLE mfa_recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- 'full': signed in; 'code': the password was right, the code is still to come;
-- 'enrol': the clinic requires two-step sign-in and this person must set it up first.
ALTER TABLE sessions ADD COLUMN stage text NOT NULL DEFAULT 'full'
    CHECK (stage IN ('full', 'code', 'enrol'));
