-- Indexes that let the record's lists answer from one patient's rows, never the clinic's.
-- Without them the planner hashed every report (or every abnormal value) of the whole clinic
-- to answer "is this value's report shown?" and "is this report flagged?": cheap with one
-- patient's data, a scan of everyone's as the clinic grows.

-- A report's abnormal values (H, L, A…): the lists' "flagged" mark probes only these.
CREATE INDEX observations_flagged ON observations (report_id)
    WHERE interpretation IS NOT NULL AND interpretation <> 'N' AND status <> 'entered-in-error';

-- A patient's withdrawn reports (usually none): their values are left out of trends.
CREATE INDEX result_reports_withdrawn ON result_reports (patient_id)
    WHERE status IN ('entered-in-error', 'cancelled');

-- A patient's reports still held from them (visible_from in the future; usually none).
CREATE INDEX result_reports_held ON result_reports (patient_id, visible_from);

-- Notes newest first with a fixed order among notes signed at the same moment (or unsigned),
-- so the summary's "newest four" never changes between two reads of the same record.
DROP INDEX clinical_notes_recent;
CREATE INDEX clinical_notes_recent ON clinical_notes (patient_id, signed_at DESC NULLS LAST, id DESC);
