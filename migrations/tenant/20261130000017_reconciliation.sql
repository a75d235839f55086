-- Reconciliation: what Stripe says, kept beside what the portal recorded, so billing staff see
-- every difference without a spreadsheet; payouts with the transactions inside each.

-- The charge behind a card payment (a payout's transactions name charges).
ALTER TABLE payments ADD COLUMN stripe_charge text NULL;
CREATE INDEX payments_by_charge ON payments (stripe_charge) WHERE stripe_charge IS NOT NULL;

-- Stripe's PaymentIntents on the clinic's account as last listed by the reconciliation job
-- (and as each webhook's worker read them): the other side of every card payment.
CREATE TABLE stripe_payments (
    id               text PRIMARY KEY CHECK (id ~ '^pi_'),
    status           text NOT NULL,
    amount_minor     bigint NOT NULL,
    received_minor   bigint NOT NULL,
    currency         char(3) NOT NULL,
    -- Our payment, when Stripe's metadata names one of ours.
    payment_id       uuid NULL REFERENCES payments (id),
    created          timestamptz NOT NULL,
    seen_at          timestamptz NOT NULL
);
CREATE INDEX stripe_payments_payment ON stripe_payments (payment_id);

CREATE TABLE payouts (
    id             text PRIMARY KEY CHECK (id ~ '^po_'),
    amount_minor   bigint NOT NULL,
    currency       char(3) NOT NULL,
    status         text NOT NULL,
    arrival_date   date NOT NULL,
    -- The sum of the nets of the transactions listed inside it (equal to the amount when it
    -- adds up; the reconciliation view lists it otherwise).
    lines_net_minor bigint NOT NULL DEFAULT 0,
    recorded_at    timestamptz NOT NULL
);

CREATE TABLE payout_lines (
    payout_id     text NOT NULL REFERENCES payouts (id),
    txn_id        text NOT NULL,
    kind          text NOT NULL,
    amount_minor  bigint NOT NULL,
    fee_minor     bigint NOT NULL,
    net_minor     bigint NOT NULL,
    -- The charge, refund or dispute behind it, and our payment when we know it.
    source        text NULL,
    payment_id    uuid NULL REFERENCES payments (id),
    PRIMARY KEY (payout_id, txn_id)
);

-- When the reconciliation job last compared the clinic's payments with Stripe's.
ALTER TABLE payment_settings ADD COLUMN reconciled_at timestamptz NULL;
