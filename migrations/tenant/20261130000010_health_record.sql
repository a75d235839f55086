-- The health record (issue 11), first part: the versioning every record table shares, and the
-- first two record tables (problems and allergies), coded as the standards code them.
--
-- Versioning: each record row carries `version`. An edit names the version it was made
-- against (`UPDATE … WHERE id = $1 AND version = $2`), so an edit from an older screen is
-- refused instead of overwriting. A trigger copies every replaced version into record_history
-- with who made it and when, so no write path can skip the history, and the history itself
-- cannot be changed or deleted. Rows are never deleted: a mistake is marked entered-in-error.
CREATE TABLE record_history (
    id          bigserial PRIMARY KEY,
    table_name  text NOT NULL,
    row_id      uuid NOT NULL,
    version     integer NOT NULL,
    data        jsonb NOT NULL,
    changed_by  uuid NULL,
    changed_at  timestamptz NOT NULL,
    UNIQUE (table_name, row_id, version)
);

-- `SET search_path FROM CURRENT` pins the clinic's schema (this script runs with it set), so
-- the history lands in the same clinic's table whoever's connection makes the edit.
CREATE FUNCTION record_keep_version() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.version <> OLD.version + 1 THEN
        RAISE EXCEPTION 'a record edit raises the version by one (% to %)', OLD.version, NEW.version;
    END IF;
    INSERT INTO record_history (table_name, row_id, version, data, changed_by, changed_at)
    VALUES (TG_TABLE_NAME, OLD.id, OLD.version, to_jsonb(OLD), OLD.updated_by, OLD.updated_at);
    RETURN NEW;
END $$;

CREATE FUNCTION record_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the record keeps every version', TG_OP, TG_TABLE_NAME;
END $$;

CREATE TRIGGER record_history_append_only BEFORE UPDATE OR DELETE ON record_history
    FOR EACH ROW EXECUTE FUNCTION record_refuse();

-- Only the versioning trigger writes history (a row inserted by hand could forge a version,
-- or take the number of a real one): an insert not made from inside a trigger is refused.
CREATE FUNCTION record_history_from_trigger_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'record_history is written only by the record tables'' own trigger';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER record_history_written_by_trigger BEFORE INSERT ON record_history
    FOR EACH ROW EXECUTE FUNCTION record_history_from_trigger_only();

-- Problems and diagnoses (FHIR Condition): ICD-10-CM or SNOMED CT, or text alone.
CREATE TABLE conditions (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    code_system      text NOT NULL CHECK (code_system IN ('icd10cm', 'snomed', 'text')),
    code             text NULL,
    text             text NOT NULL CHECK (length(text) BETWEEN 1 AND 500),
    onset            date NULL,
    abatement        date NULL,
    clinical_status  text NOT NULL CHECK (clinical_status IN
                         ('active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved')),
    verification     text NOT NULL DEFAULT 'confirmed' CHECK (verification IN
                         ('unconfirmed', 'provisional', 'differential', 'confirmed', 'refuted',
                          'entered-in-error')),
    -- How a FHIR re-import finds this row (identifier, bundle fullUrl or natural key).
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK ((code_system = 'text') = (code IS NULL)),
    CHECK (abatement IS NULL OR onset IS NULL OR abatement >= onset)
);
CREATE INDEX conditions_patient ON conditions (patient_id);
CREATE UNIQUE INDEX conditions_source ON conditions (patient_id, source_key)
    WHERE source_key IS NOT NULL;
CREATE TRIGGER conditions_versions BEFORE UPDATE ON conditions
    FOR EACH ROW EXECUTE FUNCTION record_keep_version();
CREATE TRIGGER conditions_no_delete BEFORE DELETE ON conditions
    FOR EACH ROW EXECUTE FUNCTION record_refuse();

-- Allergies and intolerances (FHIR AllergyIntolerance): the substance as RxNorm or SNOMED CT,
-- or text alone.
CREATE TABLE allergies (
    id                uuid PRIMARY KEY,
    patient_id        uuid NOT NULL REFERENCES patients (id),
    version           integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    substance_system  text NOT NULL CHECK (substance_system IN ('rxnorm', 'snomed', 'text')),
    substance_code    text NULL,
    substance         text NOT NULL CHECK (length(substance) BETWEEN 1 AND 300),
    reaction          text NOT NULL DEFAULT '' CHECK (length(reaction) <= 500),
    severity          text NULL CHECK (severity IN ('mild', 'moderate', 'severe')),
    clinical_status   text NOT NULL CHECK (clinical_status IN ('active', 'inactive', 'resolved')),
    verification      text NOT NULL DEFAULT 'confirmed' CHECK (verification IN
                          ('unconfirmed', 'presumed', 'confirmed', 'refuted', 'entered-in-error')),
    source_key        text NULL,
    updated_by        uuid NULL REFERENCES users (id),
    updated_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    CHECK ((substance_system = 'text') = (substance_code IS NULL))
);
CREATE INDEX allergies_patient ON allergies (patient_id);
CREATE UNIQUE INDEX allergies_source ON allergies (patient_id, source_key)
    WHERE source_key IS NOT NULL;
CREATE TRIGGER allergies_versions BEFORE UPDATE ON allergies
    FOR EACH ROW EXECUTE FUNCTION record_keep_version();
CREATE TRIGGER allergies_no_delete BEFORE DELETE ON allergies
    FOR EACH ROW EXECUTE FUNCTION record_refuse();
