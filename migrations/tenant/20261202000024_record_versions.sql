-- A value per patient that changes whenever anything their chart or trends are read from
-- changes, so a page that showed the record can tell, with one index probe, whether what it
-- read before is still what the database holds (`portal_domain::record::cache`).
--
-- Triggers keep it, not the write paths: staff edits, FHIR imports, results entered, commented
-- or released and a patient opening a result all reach these tables, and none can forget to
-- bump it. One statement bumps each patient it touched once (statement-level triggers over the
-- transition table), so a 1,000-entry import is one bump per table, and an import that changes
-- nothing (re-import) bumps nothing.
--
-- A version is random, not counted: only equality matters, and a number from a sequence
-- could be issued again after a clinic's schema is restored from an older backup, naming a
-- different state of the record than a running web process kept under it.
CREATE TABLE record_versions (
    -- No reference to patients: the version outlives nothing it describes, and a reference
    -- would lock the patient's row on every record write.
    patient_id  uuid PRIMARY KEY,
    version     uuid NOT NULL
);

-- `SET search_path FROM CURRENT` pins the clinic's schema (this script runs with it set).
CREATE FUNCTION record_bump_versions() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- An edit that moved a row to another patient changed both records.
        INSERT INTO record_versions (patient_id, version)
        SELECT p, gen_random_uuid()
        FROM (SELECT patient_id AS p FROM changed UNION SELECT patient_id FROM before) d
        ORDER BY p
        ON CONFLICT (patient_id) DO UPDATE SET version = excluded.version;
    ELSE
        INSERT INTO record_versions (patient_id, version)
        SELECT p, gen_random_uuid()
        FROM (SELECT DISTINCT patient_id AS p FROM changed) d
        ORDER BY p
        ON CONFLICT (patient_id) DO UPDATE SET version = excluded.version;
    END IF;
    RETURN NULL;
END $$;

-- result_seen names the report, not the patient.
CREATE FUNCTION record_bump_versions_by_report() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO record_versions (patient_id, version)
    SELECT p, gen_random_uuid()
    FROM (SELECT DISTINCT r.patient_id AS p
          FROM changed c JOIN result_reports r ON r.id = c.report_id) d
    ORDER BY p
    ON CONFLICT (patient_id) DO UPDATE SET version = excluded.version;
    RETURN NULL;
END $$;

-- Record rows are never deleted (`record_refuse`), and now never truncated either (a
-- truncate fires no row triggers and has no transition table), so inserts and updates are
-- every change.
-- PostgreSQL allows a transition table on a trigger of one event only: two triggers each.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['conditions', 'allergies', 'medications', 'immunizations',
                             'encounters', 'procedures', 'clinical_notes', 'care_plans',
                             'result_reports', 'observations']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed
                        FOR EACH STATEMENT EXECUTE FUNCTION record_bump_versions()',
                       t || '_bump_on_insert', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I
                        REFERENCING OLD TABLE AS before NEW TABLE AS changed
                        FOR EACH STATEMENT EXECUTE FUNCTION record_bump_versions()',
                       t || '_bump_on_update', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION record_refuse()',
                       t || '_no_truncate', t);
    END LOOP;
END $$;

CREATE TRIGGER result_seen_bump_on_insert AFTER INSERT ON result_seen
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION record_bump_versions_by_report();
CREATE TRIGGER result_seen_bump_on_update AFTER UPDATE ON result_seen
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION record_bump_versions_by_report();
CREATE TRIGGER result_seen_bump_on_delete AFTER DELETE ON result_seen
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION record_bump_versions_by_report();

-- Emptying result_seen makes every result new again, for everyone.
CREATE FUNCTION record_bump_all_versions() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE record_versions SET version = gen_random_uuid();
    RETURN NULL;
END $$;
CREATE TRIGGER result_seen_bump_on_truncate AFTER TRUNCATE ON result_seen
    FOR EACH STATEMENT EXECUTE FUNCTION record_bump_all_versions();

-- Records already kept get a version now.
INSERT INTO record_versions (patient_id, version)
SELECT id, gen_random_uuid() FROM patients;
