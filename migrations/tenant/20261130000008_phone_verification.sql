-- A mobile number receives texts only once verified (issue 9.8): numbers staff enter count as
-- verified by the clinic; a number a patient enters or changes must be confirmed with a code
-- sent to it. Replies act only on patients who verified the number they come from.
ALTER TABLE patients ADD COLUMN phone_verified_at timestamptz NULL;
-- Numbers already on file were entered by staff or before this check existed.
UPDATE patients SET phone_verified_at = created_at WHERE phone IS NOT NULL;

-- One pending code per patient; only its hash is kept. The worker that texts the code makes it
-- (it never sits in the outbox or Redis).
CREATE TABLE phone_verifications (
    patient_id   uuid PRIMARY KEY REFERENCES patients (id) ON DELETE CASCADE,
    phone        text NOT NULL,
    code_hash    bytea NULL,
    expires_at   timestamptz NULL,
    failed       integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL
);
