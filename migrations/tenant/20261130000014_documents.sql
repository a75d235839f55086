-- Documents: PDFs the workers render from the record and files patients upload. Each row
-- names one sealed blob in the document store (`blob`), set in the same transaction that
-- makes the row ready, after the blob was written; a generated document waits (queued,
-- rendering) with no blob until then.
CREATE TABLE documents (
    id              uuid PRIMARY KEY,
    patient_id      uuid NOT NULL REFERENCES patients (id),
    origin          text NOT NULL CHECK (origin IN ('generated', 'uploaded')),
    -- generated: immunization_record, medication_list, visit_summary, record_summary,
    -- referral_letter (staff only); uploaded: insurance_card, outside_records, other.
    kind            text NOT NULL CHECK (kind IN ('immunization_record', 'medication_list',
                        'visit_summary', 'record_summary', 'referral_letter', 'insurance_card',
                        'outside_records', 'other')),
    -- The visit a visit summary prints.
    subject_id      uuid NULL,
    -- What a referral letter says (recipient, reason, details, the clinician's name): the
    -- fields staff filled in, printed into the clinic's letter template.
    letter          jsonb NULL,
    status          text NOT NULL CHECK (status IN ('queued', 'rendering', 'ready', 'failed')),
    -- The patient's note on an upload.
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    -- What a person downloading it gets: its type (found from the content for uploads),
    -- size and SHA-256, and for a generated one the digest of the content printed in its
    -- footer.
    media_type      text NULL CHECK (media_type IN ('application/pdf', 'image/jpeg', 'image/png')),
    size_bytes      bigint NULL CHECK (size_bytes > 0),
    sha256          bytea NULL CHECK (length(sha256) = 32),
    content_digest  text NULL,
    pages           integer NULL,
    blob            text NULL UNIQUE,
    -- Why a render failed, in words for the person (never the data).
    failure         text NULL,
    attempts        integer NOT NULL DEFAULT 0,
    requested_by    uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    ready_at        timestamptz NULL,
    -- A patient's removed upload stays for the audit trail, hidden from every list.
    removed_at      timestamptz NULL,
    removed_by      uuid NULL REFERENCES users (id),
    CHECK ((status = 'ready') = (blob IS NOT NULL)),
    CHECK (status <> 'ready' OR (media_type IS NOT NULL AND size_bytes IS NOT NULL
                                 AND sha256 IS NOT NULL)),
    CHECK (origin = 'generated' OR status = 'ready'),
    CHECK ((kind = 'visit_summary') = (subject_id IS NOT NULL)),
    CHECK ((kind = 'referral_letter') = (letter IS NOT NULL))
);
CREATE INDEX documents_of_patient ON documents (patient_id, created_at DESC, id DESC)
    WHERE removed_at IS NULL;

-- A blob about to be written, recorded (and committed) before it is written, with a job that
-- looks again later: if no document names it by then, the blob is deleted. So a crash between
-- writing a blob and committing its row leaves nothing behind for long; and a row is committed
-- only after its blob was written, so no row ever lacks its blob.
-- A sweep first marks the intent `swept` (committed), so no row can claim it any more, and
-- only then deletes the blob and the intent: a sweep that fails half-way is redone, never
-- undone into a claimable intent whose blob is gone.
CREATE TABLE blob_intents (
    blob        text PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    swept       boolean NOT NULL DEFAULT false
);

-- The clinic's own words for its letters (today: the referral letter), with placeholders
-- such as {patient} and {reason} filled in when a letter is printed. Without a row the
-- product's default is used.
CREATE TABLE letter_templates (
    kind        text PRIMARY KEY CHECK (kind IN ('referral')),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    updated_by  uuid NULL REFERENCES users (id),
    updated_at  timestamptz NOT NULL
);
