-- A number per patient that changes whenever anything their chart or trends are read from
-- changes, so a page that showed the record can tell, with one index probe, whether what it
-- read before is still what the database holds (`portal_domain::record::cache`).
--
-- Triggers keep it, not the write paths: staff edits, FHIR imports, results entered, commented
-- or released and a patient opening a result all reach these tables, and none can forget to
-- bump it. One statement bumps each patient it touched once (statement-level triggers over the
-- transition table), so a 1,000-entry import is one bump per table, and an import that changes
-- nothing (re-import) bumps nothing.
--
-- Values come from a sequence, never reused: a version seen once names one state of the
-- record, even one a rolled-back transaction showed its own reads.
CREATE SEQUENCE record_version_seq;

CREATE TABLE record_versions (
    -- No reference to patients: the version outlives nothing it describes, and a reference
    -- would lock the patient's row on every record write.
    patient_id  uuid PRIMARY KEY,
    version     bigint NOT NULL
);

-- `SET search_path FROM CURRENT` pins the clinic's schema (this script runs with it set).
CREATE FUNCTION record_bump_versions() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- An edit that moved a row to another patient changed both records.
        INSERT INTO record_versions (patient_id, version)
        SELECT p, nextval('record_version_seq')
        FROM (SELECT patient_id AS p FROM changed UNION SELECT patient_id FROM before) d
        ON CONFLICT (patient_id) DO UPDATE SET version = excluded.version;
    ELSE
        INSERT INTO record_versions (patient_id, version)
        SELECT p, nextval('record_version_seq')
        FROM (SELECT DISTINCT patient_id AS p FROM changed) d
        ON CONFLICT (patient_id) DO UPDATE SET version = excluded.version;
    END IF;
    RETURN NULL;
END $$;

-- result_seen names the report, not the patient.
CREATE FUNCTION record_bump_versions_by_report() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO record_versions (patient_id, version)
    SELECT p, nextval('record_version_seq')
    FROM (SELECT DISTINCT r.patient_id AS p
          FROM changed c JOIN result_reports r ON r.id = c.report_id) d
    ON CONFLICT (patient_id) DO UPDATE SET version = excluded.version;
    RETURN NULL;
END $$;

-- Record rows are never deleted (`record_refuse`), so inserts and updates are every change.
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

-- Records already kept get a version now.
INSERT INTO record_versions (patient_id, version)
SELECT id, nextval('record_version_seq') FROM patients;
