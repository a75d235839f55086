-- Payment plans: an issued statement's amount due split into instalments on dates, set up by
-- billing staff; and autopay, the card the patient saved while paying one instalment, which a
-- worker charges (off-session, on the clinic's Stripe account) when an instalment falls due.
--
-- What an instalment has been paid is not stored: it follows from what is still due on the
-- statement (its ledger), taken in due-date order. So a payment at the desk, by a guest or a
-- chargeback moves the plan exactly as it moves the statement, with nothing to keep in step.

ALTER TABLE payments DROP CONSTRAINT payments_payer_check;
ALTER TABLE payments ADD CONSTRAINT payments_payer_check
    CHECK (payer IN ('patient', 'guest', 'staff', 'autopay'));

CREATE TABLE payment_plans (
    id                      uuid PRIMARY KEY,
    statement_id            uuid NOT NULL REFERENCES statements (id),
    -- What was due on the statement when the plan was made; the instalments add up to it.
    total_minor             bigint NOT NULL CHECK (total_minor > 0),
    currency                char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                  text NOT NULL CHECK (status IN ('active', 'ended')),
    -- The saved card (Stripe customer and payment method on the clinic's connected account).
    autopay_customer        text NULL,
    autopay_payment_method  text NULL,
    autopay_since           timestamptz NULL,
    created_by              uuid NOT NULL REFERENCES users (id),
    created_at              timestamptz NOT NULL,
    ended_by                uuid NULL REFERENCES users (id),
    ended_at                timestamptz NULL,
    end_reason              text NULL CHECK (length(end_reason) <= 300),
    version                 integer NOT NULL DEFAULT 1,
    CHECK ((autopay_payment_method IS NULL) = (autopay_customer IS NULL)),
    CHECK ((autopay_payment_method IS NULL) = (autopay_since IS NULL)),
    CHECK ((status = 'ended') = (ended_at IS NOT NULL))
);
-- One plan at a time per statement.
CREATE UNIQUE INDEX payment_plans_one_active ON payment_plans (statement_id) WHERE status = 'active';
CREATE INDEX payment_plans_autopay ON payment_plans (status) WHERE autopay_payment_method IS NOT NULL;

CREATE TABLE plan_instalments (
    plan_id         uuid NOT NULL REFERENCES payment_plans (id),
    seq             integer NOT NULL CHECK (seq >= 1),
    due_on          date NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (plan_id, seq)
);

-- A payment started to save its card for a plan's autopay: when it succeeds with a saved
-- card, the plan takes that card, once (`card_taken_at`): reading the same payment again
-- later (a repeated webhook, the reconciliation job) never turns autopay back on after the
-- patient turned it off, nor brings back an older card.
ALTER TABLE payments ADD COLUMN saves_card_for uuid NULL REFERENCES payment_plans (id),
                     ADD COLUMN card_taken_at timestamptz NULL;

-- Each automatic charge: one per instalment and card, so a worker run twice (or two workers)
-- never charges an instalment twice, and a declined card is not tried again until the
-- patient saves another. Its payment is written (pending) before Stripe is asked, and the
-- Stripe call's idempotency key is that payment's id, so a worker killed mid-call repeats the
-- same request and Stripe answers with the charge it already made. How it went is its
-- payment's status.
CREATE TABLE autopay_attempts (
    plan_id         uuid NOT NULL REFERENCES payment_plans (id),
    seq             integer NOT NULL,
    customer        text NOT NULL,
    payment_method  text NOT NULL,
    payment_id      uuid NOT NULL UNIQUE REFERENCES payments (id),
    created_at      timestamptz NOT NULL,
    -- When it was first sent to Stripe (NULL: never; it is re-checked before it is, and
    -- cancelled if it no longer fits), and until when one worker has it in hand, so two
    -- workers never send it at once.
    sent_at         timestamptz NULL,
    sending_until   timestamptz NULL,
    PRIMARY KEY (plan_id, seq, payment_method),
    FOREIGN KEY (plan_id, seq) REFERENCES plan_instalments (plan_id, seq)
);
