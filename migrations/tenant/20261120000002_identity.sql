-- Identity, sessions and the audit trail of one clinic.

ALTER TABLE clinic_profile ADD COLUMN self_signup_enabled boolean NOT NULL DEFAULT false;

CREATE TABLE patients (
    id              uuid PRIMARY KEY,
    given_name      text NOT NULL,
    family_name     text NOT NULL,
    date_of_birth   date NOT NULL,
    email           text NULL,
    phone           text NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX patients_name ON patients (lower(family_name), lower(given_name));

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    email               text NOT NULL UNIQUE,     -- normalised (trimmed, lower case)
    display_name        text NOT NULL,
    role                text NOT NULL CHECK (role IN
                            ('patient', 'proxy', 'clinician', 'staff', 'billing', 'clinic_admin')),
    patient_id          uuid NULL REFERENCES patients (id),
    password_hash       text NULL,
    status              text NOT NULL CHECK (status IN ('invited', 'active', 'disabled')),
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NULL,
    CHECK ((role = 'patient') = (patient_id IS NOT NULL)),
    CHECK (status <> 'active' OR password_hash IS NOT NULL)
);
CREATE UNIQUE INDEX users_one_account_per_patient ON users (patient_id) WHERE role = 'patient';

-- Single-use links sent by email. Only a hash of the token is kept; the worker that sends the
-- email creates the token, so the raw token never sits in the outbox, Redis or the database.
CREATE TABLE user_tokens (
    token_hash      bytea PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose         text NOT NULL CHECK (purpose IN ('invitation', 'password_reset')),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz NULL,
    failed_checks   integer NOT NULL DEFAULT 0
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);

CREATE TABLE sessions (
    id                   uuid PRIMARY KEY,
    token_hash           bytea NOT NULL UNIQUE,
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token           text NOT NULL,
    created_at           timestamptz NOT NULL,
    last_seen_at         timestamptz NOT NULL,
    idle_timeout_seconds integer NOT NULL,
    expires_at           timestamptz NOT NULL,
    revoked_at           timestamptz NULL
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- Failed sign-ins, for throttling per account and per client address. The account is kept as
-- a hash of the normalised email, so unknown addresses are throttled the same way as known ones.
CREATE TABLE login_failures (
    account_key     bytea NOT NULL,
    client_addr     text NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (account_key, at);
CREATE INDEX login_failures_client ON login_failures (client_addr, at);

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL,
    actor_user_id   uuid NULL,                -- null for anonymous events (failed sign-in)
    actor_role      text NULL,
    patient_id      uuid NULL,                -- whose data, when it is a patient's
    action          text NOT NULL,
    resource_type   text NOT NULL,
    resource_id     text NULL,
    client_addr     text NULL,
    request_id      text NULL
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at DESC) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_log_at ON audit_log (at DESC);

-- Append-only, for everyone including the clinic's role (which is granted plain DML on every
-- table of its schema): history cannot be edited or erased from the application.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
