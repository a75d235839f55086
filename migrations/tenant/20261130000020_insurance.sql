-- Insurance: a patient's main and second coverage. The patient adds and edits; billing staff
-- verify. Each change bumps `version` (an edit against an older one is refused) and is kept
-- whole in `insurance_history`, with who and when.
CREATE TABLE insurance_coverages (
    id                 uuid PRIMARY KEY,
    patient_id         uuid NOT NULL REFERENCES patients (id),
    rank               text NOT NULL CHECK (rank IN ('primary', 'secondary')),
    payer              text NOT NULL CHECK (length(payer) BETWEEN 1 AND 120),
    plan               text NOT NULL DEFAULT '' CHECK (length(plan) <= 120),
    member_id          text NOT NULL CHECK (length(member_id) BETWEEN 1 AND 40),
    group_number       text NOT NULL DEFAULT '' CHECK (length(group_number) <= 40),
    subscriber_name    text NOT NULL CHECK (length(subscriber_name) BETWEEN 1 AND 120),
    relationship       text NOT NULL CHECK (relationship IN ('self', 'spouse', 'child', 'other')),
    -- Photos of the card: the patient's own insurance card uploads.
    front_document_id  uuid NULL REFERENCES documents (id),
    back_document_id   uuid NULL REFERENCES documents (id),
    verified_at        timestamptz NULL,
    verified_by        uuid NULL REFERENCES users (id),
    version            integer NOT NULL DEFAULT 1,
    updated_by         uuid NOT NULL REFERENCES users (id),
    updated_at         timestamptz NOT NULL,
    UNIQUE (patient_id, rank),
    CHECK ((verified_at IS NULL) = (verified_by IS NULL))
);

CREATE TABLE insurance_history (
    id           uuid PRIMARY KEY,
    coverage_id  uuid NOT NULL REFERENCES insurance_coverages (id),
    version      integer NOT NULL,
    change       text NOT NULL CHECK (change IN ('added', 'edited', 'verified')),
    -- The coverage as it stood after the change.
    snapshot     jsonb NOT NULL,
    changed_by   uuid NOT NULL REFERENCES users (id),
    changed_at   timestamptz NOT NULL,
    UNIQUE (coverage_id, version)
);
