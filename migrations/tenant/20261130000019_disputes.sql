-- Disputes (chargebacks): a cardholder asked their bank to take back a card payment. Kept as
-- Stripe last said (the worker reads the dispute itself on every `charge.dispute.*` event, so
-- order and repeats do not matter), matched to our payment by its PaymentIntent.
CREATE TABLE disputes (
    -- Stripe's id (dp_…).
    id               text PRIMARY KEY,
    payment_id       uuid NULL REFERENCES payments (id),
    payment_intent   text NULL,
    amount_minor     bigint NOT NULL CHECK (amount_minor > 0),
    currency         char(3) NOT NULL,
    -- The bank's reason code (fraudulent, product_not_received, …).
    reason           text NOT NULL,
    -- needs_response, under_review, won, lost, warning_*, prevented.
    status           text NOT NULL,
    evidence_due_by  timestamptz NULL,
    opened_at        timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    -- Who accepted it from the billing console, when someone did.
    accepted_by      uuid NULL REFERENCES users (id)
);
CREATE INDEX disputes_of_payment ON disputes (payment_id);

-- A dispute lost gives the money back to the cardholder: the patient owes it again, as a
-- `chargeback` entry (positive), once per dispute.
ALTER TABLE ledger_entries ADD COLUMN dispute_id text NULL REFERENCES disputes (id);
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('charge', 'payment', 'refund', 'void', 'chargeback'));
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_chargeback_check
    CHECK (kind <> 'chargeback' OR (dispute_id IS NOT NULL AND payment_id IS NOT NULL
                                    AND amount_minor > 0));
CREATE UNIQUE INDEX ledger_one_chargeback ON ledger_entries (dispute_id) WHERE kind = 'chargeback';
-- A payment's part taken back by a lost dispute, beside what was refunded.
ALTER TABLE payments ADD COLUMN disputed_minor bigint NOT NULL DEFAULT 0
    CHECK (disputed_minor >= 0);
-- Money refunded and money taken back by a bank never add up to more than was paid.
ALTER TABLE payments ADD CONSTRAINT payments_returned_check
    CHECK (refunded_minor + disputed_minor <= amount_minor);
