-- The earlier-slot waitlist: a patient with a booked visit asks to be offered an earlier time.
-- When a visit of the same kind is cancelled, each waiting patient whose visit is later gets an
-- offer of the freed time; the first to accept moves there (the no-double-booking constraint
-- decides), the others are told it was taken.
CREATE TABLE waitlist_entries (
    id              uuid PRIMARY KEY,
    appointment_id  uuid NOT NULL UNIQUE REFERENCES appointments (id),
    patient_id      uuid NOT NULL REFERENCES patients (id),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL
);
CREATE INDEX waitlist_active ON waitlist_entries (created_at) WHERE active;

CREATE TABLE waitlist_offers (
    id              uuid PRIMARY KEY,
    entry_id        uuid NOT NULL REFERENCES waitlist_entries (id),
    provider_id     uuid NOT NULL REFERENCES providers (id),
    location_id     uuid NOT NULL REFERENCES locations (id),
    starts_at       timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'accepted', 'taken')),
    created_at      timestamptz NOT NULL
);
CREATE INDEX waitlist_offers_entry ON waitlist_offers (entry_id);
CREATE INDEX waitlist_offers_slot ON waitlist_offers (provider_id, starts_at) WHERE status = 'open';
