-- Card payments through the clinic's own Stripe account (Connect), guest pay by code, and the
-- Stripe events that move them.

-- The clinic's connected account as Stripe last described it.
CREATE TABLE payment_settings (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    stripe_account     text NULL UNIQUE,
    charges_enabled    boolean NOT NULL DEFAULT false,
    payouts_enabled    boolean NOT NULL DEFAULT false,
    details_submitted  boolean NOT NULL DEFAULT false,
    -- What Stripe still needs from the clinic (its requirement names).
    requirements_due   text[] NOT NULL DEFAULT '{}',
    disabled_reason    text NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
INSERT INTO payment_settings DEFAULT VALUES;

-- A statement's code for paying without signing in ("K7QF-M2X9-PA4D" on the paper
-- statement): 60 random bits, shown to the patient and billing staff; it opens only the
-- amount due and the clinic's name.
ALTER TABLE statements ADD COLUMN guest_code text NULL UNIQUE
    CHECK (guest_code ~ '^[0-9A-HJKMNP-TV-Z]{12}$');

-- The Checkout page a card payment waits on, and why a payment failed (words for people).
ALTER TABLE payments ADD COLUMN checkout_url text NULL;
ALTER TABLE payments ADD COLUMN failure text NULL CHECK (length(failure) <= 300);

-- Every Stripe event received for this clinic, verified, kept once (its id), applied by a
-- worker that reads the object's current state from Stripe (so the order events arrive in
-- does not matter).
CREATE TABLE stripe_events (
    id           text PRIMARY KEY CHECK (id ~ '^evt_'),
    kind         text NOT NULL,
    object_id    text NOT NULL,
    object_type  text NOT NULL,
    created      bigint NOT NULL,
    received_at  timestamptz NOT NULL,
    applied_at   timestamptz NULL
);
CREATE INDEX stripe_events_unapplied ON stripe_events (received_at) WHERE applied_at IS NULL;
