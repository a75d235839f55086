-- Statements and receipts as PDFs: two more kinds of generated document. A statement's PDF
-- prints one statement (`subject_id`), with its code for paying without an account; a
-- receipt prints one payment (`subject_id`) and is made by the clinic's system when a payment
-- is taken, so it has no person who asked for it (`requested_by` NULL).
ALTER TABLE documents DROP CONSTRAINT documents_kind_check;
ALTER TABLE documents ADD CONSTRAINT documents_kind_check
    CHECK (kind IN ('immunization_record', 'medication_list', 'visit_summary',
                    'record_summary', 'referral_letter', 'statement', 'receipt',
                    'insurance_card', 'outside_records', 'other'));
-- (PostgreSQL named the visit summary's check documents_check3.)
ALTER TABLE documents DROP CONSTRAINT documents_check3;
ALTER TABLE documents ADD CONSTRAINT documents_subject_check
    CHECK ((kind IN ('visit_summary', 'statement', 'receipt')) = (subject_id IS NOT NULL));
ALTER TABLE documents ALTER COLUMN requested_by DROP NOT NULL;
ALTER TABLE documents ADD CONSTRAINT documents_requested_check
    CHECK (requested_by IS NOT NULL OR kind = 'receipt');
-- One receipt per payment, however many times the payment is seen settling.
CREATE UNIQUE INDEX documents_one_receipt ON documents (subject_id) WHERE kind = 'receipt';
