-- Stripe events are applied in batches by one drain job per clinic instead of one job each:
-- a burst of payments is a few transactions of a hundred events, not a hundred jobs.
--
-- `snapshot`: a PaymentIntent as its signed event carried it (applied without reading it back
-- from Stripe; see portal_stripe::webhook). `failure`: why an event could not be applied
-- (a code, never Stripe's message text); such an event is left for people and the hourly
-- comparison with Stripe, and the drain goes on past it.
ALTER TABLE stripe_events
    ADD COLUMN snapshot jsonb NULL,
    ADD COLUMN failure text NULL CHECK (length(failure) <= 200),
    -- The payment of ours the snapshot's metadata names (not a reference: it may name a
    -- payment this clinic never had). The drain runs events of different billing accounts
    -- side by side, and finds each event's account through it.
    ADD COLUMN payment_ref uuid NULL;

-- The drain's order: as Stripe made them.
DROP INDEX stripe_events_unapplied;
CREATE INDEX stripe_events_unapplied ON stripe_events (created, id)
    WHERE applied_at IS NULL AND failure IS NULL;

-- One row: whether a drain job is queued and not yet started. The webhook sets it (and queues
-- the job) only when it was clear, so a burst queues one job, not one per event; the job
-- clears it before it looks for events, so an event kept after that queues the next one
-- (see billing::events for the lock that closes the gap between the two).
CREATE TABLE stripe_inbox (
    only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    drain_queued boolean NOT NULL DEFAULT false
);
INSERT INTO stripe_inbox DEFAULT VALUES;
