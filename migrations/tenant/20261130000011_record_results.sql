-- The health record (issue 11), second part: the rest of the chart, results with their release
-- to the patient, the patient's own choice of when to see results, and API keys for import.
-- Every record table shares the first part's versioning: `version`, the record_keep_version
-- trigger into record_history, no deletes, and `source_key` for FHIR re-import matching.

CREATE TABLE medications (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    code_system      text NOT NULL CHECK (code_system IN ('rxnorm', 'text')),
    code             text NULL,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    dose             text NOT NULL DEFAULT '' CHECK (length(dose) <= 200),
    route            text NOT NULL DEFAULT '' CHECK (length(route) <= 100),
    frequency        text NOT NULL DEFAULT '' CHECK (length(frequency) <= 200),
    instructions     text NOT NULL DEFAULT '' CHECK (length(instructions) <= 2000),
    prescriber       text NOT NULL DEFAULT '' CHECK (length(prescriber) <= 200),
    starts_on        date NULL,
    ends_on          date NULL,
    status           text NOT NULL CHECK (status IN ('active', 'on-hold', 'completed', 'stopped',
                         'entered-in-error')),
    quantity         text NOT NULL DEFAULT '' CHECK (length(quantity) <= 100),
    refills_left     integer NULL CHECK (refills_left >= 0),
    -- 'request' (prescribed here) or 'statement' (the patient takes it; reported).
    kind             text NOT NULL DEFAULT 'request' CHECK (kind IN ('request', 'statement')),
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK ((code_system = 'text') = (code IS NULL)),
    CHECK (ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on)
);

CREATE TABLE immunizations (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    cvx              text NULL CHECK (cvx ~ '^[0-9]{1,3}$'),
    vaccine          text NOT NULL CHECK (length(vaccine) BETWEEN 1 AND 300),
    given_on         date NOT NULL,
    dose_number      integer NULL CHECK (dose_number BETWEEN 1 AND 20),
    lot              text NOT NULL DEFAULT '' CHECK (length(lot) <= 100),
    site             text NOT NULL DEFAULT '' CHECK (length(site) <= 100),
    performer        text NOT NULL DEFAULT '' CHECK (length(performer) <= 200),
    status           text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'not-done',
                         'entered-in-error')),
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL
);

-- Visits as the record keeps them (FHIR Encounter), apart from the booking calendar.
CREATE TABLE encounters (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NULL,
    kind             text NOT NULL CHECK (length(kind) BETWEEN 1 AND 200),
    provider         text NOT NULL DEFAULT '' CHECK (length(provider) <= 200),
    diagnoses        text NOT NULL DEFAULT '' CHECK (length(diagnoses) <= 2000),
    -- The after-visit summary, in the clinician's words for the patient.
    summary          text NOT NULL DEFAULT '' CHECK (length(summary) <= 20000),
    status           text NOT NULL DEFAULT 'finished' CHECK (status IN ('planned', 'in-progress',
                         'finished', 'cancelled', 'entered-in-error')),
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK (ends_at IS NULL OR ends_at >= starts_at)
);

CREATE TABLE procedures (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    code_system      text NOT NULL CHECK (code_system IN ('snomed', 'cpt', 'text')),
    code             text NULL,
    text             text NOT NULL CHECK (length(text) BETWEEN 1 AND 500),
    performed_on     date NULL,
    status           text NOT NULL DEFAULT 'completed' CHECK (status IN ('preparation',
                         'in-progress', 'completed', 'not-done', 'stopped', 'entered-in-error')),
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK ((code_system = 'text') = (code IS NULL))
);

-- Clinicians' notes (OpenNotes): shown to the patient once released; `confidential` is kept
-- for the proxy rules to come (a proxy will not see them).
CREATE TABLE clinical_notes (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    encounter_id     uuid NULL REFERENCES encounters (id),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body             text NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
    author           text NOT NULL CHECK (length(author) BETWEEN 1 AND 200),
    signed_at        timestamptz NULL,
    released         boolean NOT NULL DEFAULT true,
    confidential     boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'current' CHECK (status IN ('current', 'superseded',
                         'entered-in-error')),
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL
);

CREATE TABLE care_plans (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    -- One goal or activity per line, as the patient reads them.
    goals            text NOT NULL DEFAULT '' CHECK (length(goals) <= 5000),
    starts_on        date NULL,
    ends_on          date NULL,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active',
                         'on-hold', 'completed', 'revoked', 'entered-in-error')),
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL
);

-- A result as the patient sees one (FHIR DiagnosticReport): a lab panel grouping
-- observations, or an imaging or other report in text. Release: the patient sees it from
-- `visible_from` — the moment it was entered, unless the patient chose to wait for their
-- clinician's comment (or some days); a comment brings `visible_from` forward to that moment.
CREATE TABLE result_reports (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    category         text NOT NULL CHECK (category IN ('lab', 'imaging', 'other')),
    code_system      text NOT NULL CHECK (code_system IN ('loinc', 'text')),
    code             text NULL,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    performer        text NOT NULL DEFAULT '' CHECK (length(performer) <= 200),
    collected_at     timestamptz NULL,
    resulted_at      timestamptz NOT NULL,
    -- The report's own text (an imaging report's findings and impression).
    conclusion       text NOT NULL DEFAULT '' CHECK (length(conclusion) <= 50000),
    status           text NOT NULL DEFAULT 'final' CHECK (status IN ('preliminary', 'final',
                         'amended', 'corrected', 'cancelled', 'entered-in-error')),
    visible_from     timestamptz NOT NULL,
    comment          text NOT NULL DEFAULT '' CHECK (length(comment) <= 5000),
    commented_by     uuid NULL REFERENCES users (id),
    commented_at     timestamptz NULL,
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK ((code_system = 'text') = (code IS NULL)),
    CHECK (collected_at IS NULL OR resulted_at >= collected_at)
);

-- Vitals and lab values (FHIR Observation), LOINC-coded; a lab value belongs to its report.
-- Blood pressure is kept as its two LOINC components (systolic 8480-6, diastolic 8462-4).
CREATE TABLE observations (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    report_id        uuid NULL REFERENCES result_reports (id),
    category         text NOT NULL CHECK (category IN ('vital-signs', 'laboratory', 'other')),
    loinc            text NOT NULL CHECK (loinc ~ '^[0-9]{1,7}-[0-9]$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    value_num        double precision NULL,
    value_text       text NULL CHECK (length(value_text) <= 2000),
    unit             text NULL CHECK (length(unit) BETWEEN 1 AND 50),
    range_low        double precision NULL,
    range_high       double precision NULL,
    range_text       text NOT NULL DEFAULT '' CHECK (length(range_text) <= 200),
    -- HL7 v3 ObservationInterpretation: N normal, L/H low/high, LL/HH critical, A abnormal.
    interpretation   text NULL CHECK (interpretation IN ('N', 'L', 'H', 'LL', 'HH', 'A')),
    effective_at     timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'final' CHECK (status IN ('preliminary', 'final',
                         'amended', 'corrected', 'cancelled', 'entered-in-error')),
    source_key       text NULL,
    updated_by       uuid NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK (value_num IS NOT NULL OR value_text IS NOT NULL),
    CHECK (value_num IS NULL OR unit IS NOT NULL),
    CHECK (category <> 'laboratory' OR report_id IS NOT NULL)
);
-- A trend reads one test's values newest first straight from this index (covering: no table
-- visits once vacuum has marked the pages all-visible).
CREATE INDEX observations_trend ON observations (patient_id, loinc, effective_at, id)
    INCLUDE (value_num, unit, range_low, range_high, interpretation, report_id, status, name);
CREATE INDEX observations_report ON observations (report_id);
CREATE INDEX result_reports_recent ON result_reports (patient_id, resulted_at DESC);
-- The summary's newest visits, notes and immunizations without sorting a decade of them.
CREATE INDEX encounters_recent ON encounters (patient_id, starts_at DESC);
CREATE INDEX clinical_notes_recent ON clinical_notes (patient_id, signed_at DESC NULLS LAST);
CREATE INDEX immunizations_recent ON immunizations (patient_id, given_on DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['medications', 'immunizations', 'encounters', 'procedures',
                             'clinical_notes', 'care_plans', 'result_reports', 'observations']
    LOOP
        EXECUTE format('CREATE INDEX %I ON %I (patient_id)', t || '_patient', t);
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I (patient_id, source_key)
                        WHERE source_key IS NOT NULL', t || '_source', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I
                        FOR EACH ROW EXECUTE FUNCTION record_keep_version()', t || '_versions', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION record_refuse()', t || '_no_delete', t);
    END LOOP;
END $$;

-- When the patient first opened a result (the "new" badge goes): apart from the report, so
-- opening it is not a new version of the record.
CREATE TABLE result_seen (
    report_id        uuid PRIMARY KEY REFERENCES result_reports (id),
    seen_at          timestamptz NOT NULL
);

-- The patient's own choice, per result category, of when to see a new result: at once
-- (the default, as information-blocking rules expect), or after their clinician has commented
-- or `wait_days` have passed, whichever comes first. Never set by the clinic.
CREATE TABLE result_preferences (
    patient_id       uuid NOT NULL REFERENCES patients (id),
    category         text NOT NULL CHECK (category IN ('lab', 'imaging', 'other')),
    wait_days        integer NOT NULL CHECK (wait_days BETWEEN 1 AND 30),
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (patient_id, category)
);

-- Keys for the FHIR import (`Authorization: Bearer`): only SHA-256 of the key is kept.
CREATE TABLE api_keys (
    id               uuid PRIMARY KEY,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    key_hash         bytea NOT NULL UNIQUE,
    -- The first characters, so an admin can tell keys apart without the key.
    prefix           text NOT NULL,
    created_by       uuid NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL,
    last_used_at     timestamptz NULL,
    revoked_at       timestamptz NULL
);

-- A patient's identifiers in other systems (an EHR's MRN), as FHIR import matches them.
CREATE TABLE patient_identifiers (
    system           text NOT NULL CHECK (length(system) BETWEEN 1 AND 500),
    value            text NOT NULL CHECK (length(value) BETWEEN 1 AND 200),
    patient_id       uuid NOT NULL REFERENCES patients (id),
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (system, value)
);
CREATE INDEX patient_identifiers_patient ON patient_identifiers (patient_id);
