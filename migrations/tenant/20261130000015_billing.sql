-- Billing: one account per patient with an append-only ledger, statements with line items,
-- and payments. Money is integer minor units (cents) with an ISO 4217 currency; every amount on
-- a row is in its account's currency. Sign convention of the ledger: a positive amount is more
-- owed by the patient (a charge, a refund), a negative one less (a payment, a voided charge).

-- The currency the clinic bills in.
ALTER TABLE clinic_profile
    ADD COLUMN currency char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$');

CREATE TABLE billing_accounts (
    id              uuid PRIMARY KEY,
    patient_id      uuid NOT NULL UNIQUE REFERENCES patients (id),
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Kept by the ledger's insert trigger; a deferred check proves it equals the sum of the
    -- entries at every commit, so no statement (nor a hand-typed UPDATE) can make it drift.
    balance_minor   bigint NOT NULL DEFAULT 0,
    entries         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL
);

-- A clinic's statements are numbered from 1001 upwards ("Statement 1042"), which is what a
-- patient reads out on the telephone.
CREATE SEQUENCE statement_numbers START 1001;

CREATE TABLE statements (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES billing_accounts (id),
    patient_id      uuid NOT NULL REFERENCES patients (id),
    number          bigint NOT NULL UNIQUE DEFAULT nextval('statement_numbers'),
    status          text NOT NULL CHECK (status IN ('draft', 'issued', 'void')),
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    due_on          date NULL,
    -- What the patient was asked to pay when it was issued (the sum of the lines' patient
    -- parts); what is still due is the sum of the statement's ledger entries.
    issued_minor    bigint NULL CHECK (issued_minor >= 0),
    issued_at       timestamptz NULL,
    issued_by       uuid NULL REFERENCES users (id),
    -- A draft can be voided too (discarded before anyone saw it).
    voided_at       timestamptz NULL,
    voided_by       uuid NULL REFERENCES users (id),
    void_reason     text NULL CHECK (length(void_reason) <= 300),
    created_by      uuid NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    -- Bumped by every change, so a change made against an older page is refused.
    version         integer NOT NULL DEFAULT 1,
    CHECK (status <> 'draft' OR issued_at IS NULL),
    CHECK (status <> 'issued' OR issued_at IS NOT NULL),
    CHECK ((issued_at IS NULL) = (issued_minor IS NULL)),
    CHECK ((status = 'void') = (voided_at IS NOT NULL))
);
CREATE INDEX statements_of_patient ON statements (patient_id, created_at DESC, id DESC);
CREATE INDEX statements_open ON statements (status, created_at) WHERE status <> 'void';

CREATE TABLE statement_lines (
    id                    uuid PRIMARY KEY,
    statement_id          uuid NOT NULL REFERENCES statements (id),
    position              integer NOT NULL,
    service_date          date NOT NULL,
    description           text NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
    -- CPT (five characters: four digits and a digit or F/T/U) or HCPCS Level II (a letter
    -- and four digits).
    code                  text NULL CHECK (code ~ '^([0-9]{4}[0-9FTU]|[A-V][0-9]{4})$'),
    charge_minor          bigint NOT NULL CHECK (charge_minor >= 0),
    insurance_paid_minor  bigint NOT NULL DEFAULT 0 CHECK (insurance_paid_minor >= 0),
    adjustment_minor      bigint NOT NULL DEFAULT 0 CHECK (adjustment_minor >= 0),
    patient_minor         bigint GENERATED ALWAYS AS
                              (charge_minor - insurance_paid_minor - adjustment_minor) STORED,
    CHECK (insurance_paid_minor + adjustment_minor <= charge_minor),
    UNIQUE (statement_id, position)
);

CREATE TABLE payments (
    id                      uuid PRIMARY KEY,
    account_id              uuid NOT NULL REFERENCES billing_accounts (id),
    statement_id            uuid NULL REFERENCES statements (id),
    method                  text NOT NULL CHECK (method IN ('card', 'cash', 'cheque')),
    status                  text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed',
                                'canceled')),
    amount_minor            bigint NOT NULL CHECK (amount_minor > 0),
    currency                char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Who paid: the signed-in patient, someone with the statement's code, or staff taking
    -- cash or a cheque at the desk.
    payer                   text NOT NULL CHECK (payer IN ('patient', 'guest', 'staff')),
    -- A cheque's number or a receipt's, as staff typed it.
    reference               text NULL CHECK (length(reference) <= 60),
    received_on             date NULL,
    stripe_checkout_session text NULL UNIQUE,
    stripe_payment_intent   text NULL UNIQUE,
    refunded_minor          bigint NOT NULL DEFAULT 0
                                CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    recorded_by             uuid NULL REFERENCES users (id),
    created_at              timestamptz NOT NULL,
    succeeded_at            timestamptz NULL,
    CHECK (status <> 'succeeded' OR succeeded_at IS NOT NULL)
);
CREATE INDEX payments_of_statement ON payments (statement_id);
CREATE INDEX payments_recent ON payments (created_at DESC, id DESC);

CREATE TABLE refunds (
    id              uuid PRIMARY KEY,
    payment_id      uuid NOT NULL REFERENCES payments (id),
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason          text NULL CHECK (length(reason) <= 300),
    stripe_refund   text NULL UNIQUE,
    created_by      uuid NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    succeeded_at    timestamptz NULL
);

CREATE TABLE ledger_entries (
    id                  uuid PRIMARY KEY,
    account_id          uuid NOT NULL REFERENCES billing_accounts (id),
    -- 1, 2, 3 … within the account, set by the trigger.
    seq                 bigint NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('charge', 'payment', 'refund', 'void')),
    amount_minor        bigint NOT NULL CHECK (amount_minor <> 0),
    currency            char(3) NOT NULL,
    statement_id        uuid NULL REFERENCES statements (id),
    payment_id          uuid NULL REFERENCES payments (id),
    refund_id           uuid NULL REFERENCES refunds (id),
    -- The account's balance after this entry, set by the trigger.
    balance_after_minor bigint NOT NULL,
    created_by          uuid NULL REFERENCES users (id),
    created_at          timestamptz NOT NULL,
    UNIQUE (account_id, seq),
    CHECK (kind <> 'charge' OR (statement_id IS NOT NULL AND amount_minor > 0)),
    CHECK (kind <> 'void' OR (statement_id IS NOT NULL AND amount_minor < 0)),
    CHECK (kind <> 'payment' OR (payment_id IS NOT NULL AND amount_minor < 0)),
    CHECK (kind <> 'refund' OR (refund_id IS NOT NULL AND amount_minor > 0))
);
-- Each fact enters the ledger once, however often the code that records it runs (a webhook
-- delivered twice, a retried job).
CREATE UNIQUE INDEX ledger_one_charge ON ledger_entries (statement_id) WHERE kind = 'charge';
CREATE UNIQUE INDEX ledger_one_void ON ledger_entries (statement_id) WHERE kind = 'void';
CREATE UNIQUE INDEX ledger_one_payment ON ledger_entries (payment_id) WHERE kind = 'payment';
CREATE UNIQUE INDEX ledger_one_refund ON ledger_entries (refund_id) WHERE kind = 'refund';
CREATE INDEX ledger_of_statement ON ledger_entries (statement_id);

-- Appending an entry numbers it, checks its currency and moves the account's balance, under
-- the account's row lock (so two payments at once are applied one after the other).
CREATE FUNCTION ledger_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    acct billing_accounts%ROWTYPE;
BEGIN
    SELECT * INTO acct FROM billing_accounts WHERE id = NEW.account_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ledger entry for a missing account' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.currency <> acct.currency THEN
        RAISE EXCEPTION 'ledger entry in % for an account in %', NEW.currency, acct.currency
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.seq := acct.entries + 1;
    NEW.balance_after_minor := acct.balance_minor + NEW.amount_minor;
    UPDATE billing_accounts
       SET balance_minor = NEW.balance_after_minor, entries = NEW.seq
     WHERE id = NEW.account_id;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_append BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append();

-- The ledger is append-only: a mistake is corrected by a new entry, never by editing one.
CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();

-- At commit, every account touched must hold exactly the sum of its entries.
CREATE FUNCTION billing_balance_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    counted bigint;
BEGIN
    SELECT coalesce(sum(amount_minor), 0), count(*) INTO total, counted
      FROM ledger_entries WHERE account_id = NEW.id;
    IF NEW.balance_minor <> total OR NEW.entries <> counted THEN
        RAISE EXCEPTION 'account balance % is not the sum of its entries %', NEW.balance_minor, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER billing_balance_check AFTER INSERT OR UPDATE ON billing_accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION billing_balance_check();
