-- The public web process holds no owner credentials (issue 9.7). What it used the owner for:
--
-- 1. Branding. A clinic's role may now change its own clinic's branding, and nothing else of
--    the registry: it inserts a row here inside its own clinic transaction; a BEFORE trigger
--    (running as that role) stamps the row with the inserting role's clinic, whatever the row
--    said, and refuses roles that are no clinic's; an AFTER trigger (owner's rights) copies
--    the branding onto that clinic's registry row. The rows are the history of changes.
CREATE TABLE control.branding_changes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      uuid NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
    display_name   text NOT NULL,
    primary_color  text NOT NULL,
    accent_color   text NOT NULL,
    sender_name    text NOT NULL,
    logo           bytea NULL,
    logo_type      text NULL,
    changed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX branding_changes_tenant ON control.branding_changes (tenant_id, changed_at);

CREATE FUNCTION control.branding_stamp_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.tenant_id := control.tenant_of_role(current_user);
    IF NEW.tenant_id IS NULL THEN
        RAISE EXCEPTION 'only a clinic may change its branding' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER branding_stamp_tenant BEFORE INSERT ON control.branding_changes
    FOR EACH ROW EXECUTE FUNCTION control.branding_stamp_tenant();

CREATE FUNCTION control.branding_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, control AS $$
BEGIN
    UPDATE control.tenants
    SET display_name = NEW.display_name, primary_color = NEW.primary_color,
        accent_color = NEW.accent_color, sender_name = NEW.sender_name,
        logo = COALESCE(NEW.logo, logo), logo_type = COALESCE(NEW.logo_type, logo_type),
        updated_at = now()
    WHERE id = NEW.tenant_id;
    RETURN NULL;
END $$;
CREATE TRIGGER branding_apply AFTER INSERT ON control.branding_changes
    FOR EACH ROW EXECUTE FUNCTION control.branding_apply();

REVOKE ALL ON control.branding_changes FROM PUBLIC;
GRANT USAGE ON SCHEMA control TO PUBLIC;
GRANT INSERT ON control.branding_changes TO PUBLIC;

-- 2. Clinic sign-up. The web records the request; a worker (which does hold the owner's
--    credentials) provisions the clinic and invites its administrator; the sign-up page
--    follows the request's status.
CREATE TABLE control.signup_requests (
    id             uuid PRIMARY KEY,
    slug           text NOT NULL,
    display_name   text NOT NULL,
    time_zone      text NOT NULL,
    admin_name     text NOT NULL,
    admin_email    text NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'provisioning', 'done', 'failed')),
    -- A code, never message text: 'slug_taken', 'internal'.
    error          text NULL,
    attempts       integer NOT NULL DEFAULT 0,
    tenant_id      uuid NULL REFERENCES control.tenants (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- One request in flight per web address.
CREATE UNIQUE INDEX signup_requests_slug_in_flight ON control.signup_requests (slug)
    WHERE status IN ('pending', 'provisioning');
CREATE INDEX signup_requests_pending ON control.signup_requests (created_at)
    WHERE status IN ('pending', 'provisioning');

CREATE FUNCTION control.signup_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portal_signup', '');
    RETURN NULL;
END $$;
CREATE TRIGGER signup_notify AFTER INSERT ON control.signup_requests
    FOR EACH STATEMENT EXECUTE FUNCTION control.signup_notify();
