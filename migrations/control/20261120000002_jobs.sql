-- The job pipeline's durable half. Services write jobs into the outbox in the same transaction
-- as their domain change (acting as the clinic's role, which may INSERT here and nothing else);
-- the relay moves them to Redis and deletes them. The delivery log makes handlers idempotent
-- and keeps dead jobs visible to operators.

CREATE TABLE control.outbox (
    id              uuid PRIMARY KEY,             -- the job id, also its idempotency key
    kind            text NOT NULL,
    version         integer NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES control.tenants (id),
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created_at ON control.outbox (created_at);

-- A clinic's role can only write jobs for itself: the tenant id is taken from the inserting
-- role, whatever the row says. (Owner and app-role inserts, e.g. operator retries, keep theirs.)
-- (The lookup runs as the owner, since clinic roles cannot read the registry; the trigger itself
-- runs as the inserting role, so `current_user` there is the clinic's.)
CREATE FUNCTION control.tenant_of_role(role_name name) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, control AS $$
    SELECT id FROM control.tenants WHERE tenants.role_name = $1
$$;

CREATE FUNCTION control.outbox_stamp_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    own uuid;
BEGIN
    own := control.tenant_of_role(current_user);
    IF own IS NOT NULL AND NEW.tenant_id IS DISTINCT FROM own THEN
        RAISE EXCEPTION 'a clinic may only queue its own jobs' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER outbox_stamp_tenant BEFORE INSERT ON control.outbox
    FOR EACH ROW EXECUTE FUNCTION control.outbox_stamp_tenant();

-- Wakes the relay; polling covers a missed notification.
CREATE FUNCTION control.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portal_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON control.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION control.outbox_notify();

-- One row per job from the moment the relay hands it to Redis: queued → running → done | dead.
CREATE TABLE control.job_deliveries (
    job_id          uuid PRIMARY KEY,
    kind            text NOT NULL,
    version         integer NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES control.tenants (id),
    payload         jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NULL,                    -- a category and code, never message content
    worker          text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_deliveries_dead ON control.job_deliveries (updated_at) WHERE status = 'dead';
