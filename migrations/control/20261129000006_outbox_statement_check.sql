-- The outbox's "a clinic may only queue its own jobs" check moves from every row to every
-- statement. Per row it called the SECURITY DEFINER lookup (planned anew on each call) once per
-- job, and a booking queues five or six jobs in one INSERT; it was the most expensive part of
-- booking in the scheduling benchmark. The statement-level trigger sees the inserted rows as a
-- transition table, looks the inserting role up once and refuses the whole statement if any row
-- names another clinic. (It still runs as the inserting role, so `current_user` is the clinic's.)
DROP TRIGGER outbox_stamp_tenant ON control.outbox;
DROP FUNCTION control.outbox_stamp_tenant();

CREATE FUNCTION control.outbox_check_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    own uuid;
BEGIN
    own := control.tenant_of_role(current_user);
    IF own IS NOT NULL
       AND EXISTS (SELECT 1 FROM new_jobs WHERE tenant_id IS DISTINCT FROM own) THEN
        RAISE EXCEPTION 'a clinic may only queue its own jobs' USING ERRCODE = '42501';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_check_tenant AFTER INSERT ON control.outbox
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION control.outbox_check_tenant();

-- The lookup itself in PL/pgSQL: a SQL function with a SET clause is never inlined and is
-- planned again on every call, while PL/pgSQL keeps its plan for the session (pooled
-- connections make that most calls). Same signature, same answer.
CREATE OR REPLACE FUNCTION control.tenant_of_role(role_name name) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, control AS $$
BEGIN
    RETURN (SELECT t.id FROM control.tenants t WHERE t.role_name = tenant_of_role.role_name);
END $$;
