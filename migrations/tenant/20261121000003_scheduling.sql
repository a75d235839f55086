-- Scheduling: where (locations), who (providers), what (visit types), when (weekly availability
-- with exceptions), the clinic's booking rules, and the appointments themselves.

CREATE TABLE locations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    address     text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX locations_name ON locations (lower(name));

CREATE TABLE providers (
    id            uuid PRIMARY KEY,
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
    -- The staff account of this provider, when they have one.
    user_id       uuid NULL REFERENCES users (id),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL
);

CREATE TABLE visit_types (
    id                uuid PRIMARY KEY,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    duration_minutes  integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 480),
    self_bookable     boolean NOT NULL DEFAULT true,
    -- Who may book it themselves: anyone, only new patients, only established ones.
    audience          text NOT NULL DEFAULT 'any' CHECK (audience IN ('any', 'new', 'established')),
    modality          text NOT NULL DEFAULT 'in_person' CHECK (modality IN ('in_person', 'video')),
    -- For video visits: the clinic's video service; each appointment gets its own room under it.
    video_base_url    text NULL CHECK (video_base_url IS NULL OR video_base_url LIKE 'https://%'),
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL,
    CHECK (modality <> 'video' OR video_base_url IS NOT NULL)
);
CREATE UNIQUE INDEX visit_types_name ON visit_types (lower(name));

-- Which provider offers which visit type.
CREATE TABLE provider_visit_types (
    provider_id    uuid NOT NULL REFERENCES providers (id),
    visit_type_id  uuid NOT NULL REFERENCES visit_types (id),
    PRIMARY KEY (provider_id, visit_type_id)
);

-- Weekly hours, in the clinic's local time: ISO weekday (1 = Monday), minutes after midnight.
-- One provider cannot be in two places at once, so windows of a provider on the same weekday
-- may not overlap (at any location).
CREATE TABLE availability (
    id            uuid PRIMARY KEY,
    provider_id   uuid NOT NULL REFERENCES providers (id),
    location_id   uuid NOT NULL REFERENCES locations (id),
    weekday       smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute  integer NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute    integer NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    created_at    timestamptz NOT NULL,
    CHECK (end_minute > start_minute),
    CONSTRAINT availability_no_overlap EXCLUDE USING gist (
        provider_id WITH =, weekday WITH =, int4range(start_minute, end_minute) WITH &&)
);

-- Time off and closures. No provider: the whole clinic (or the whole location) is closed.
CREATE TABLE availability_exceptions (
    id           uuid PRIMARY KEY,
    provider_id  uuid NULL REFERENCES providers (id),
    location_id  uuid NULL REFERENCES locations (id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    label        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX availability_exceptions_time ON availability_exceptions (starts_at, ends_at);

CREATE TABLE booking_rules (
    singleton               boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    min_notice_minutes      integer NOT NULL DEFAULT 120 CHECK (min_notice_minutes BETWEEN 0 AND 20160),
    horizon_days            integer NOT NULL DEFAULT 90 CHECK (horizon_days BETWEEN 1 AND 730),
    cancel_cutoff_hours     integer NOT NULL DEFAULT 24 CHECK (cancel_cutoff_hours BETWEEN 0 AND 336),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
INSERT INTO booking_rules DEFAULT VALUES;

-- Every booking and change of an appointment takes the next number, so "has the schedule
-- changed since I drew it?" is one indexed max().
CREATE SEQUENCE appointment_changes;

CREATE TABLE appointments (
    id              uuid PRIMARY KEY,
    patient_id      uuid NOT NULL REFERENCES patients (id),
    provider_id     uuid NOT NULL REFERENCES providers (id),
    location_id     uuid NOT NULL REFERENCES locations (id),
    visit_type_id   uuid NOT NULL REFERENCES visit_types (id),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN
                        ('booked', 'checked_in', 'completed', 'no_show', 'cancelled')),
    -- What the patient wrote; never leaves the portal (no email, SMS or calendar file).
    reason          text NULL CHECK (reason IS NULL OR length(reason) <= 1000),
    -- For video visits: the room under the visit type's video service.
    video_room      text NULL,
    -- Bumped on every move, so work queued for an earlier time can tell it is stale.
    version         integer NOT NULL DEFAULT 1,
    change_seq      bigint NOT NULL DEFAULT nextval('appointment_changes'),
    booked_by       uuid NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    cancelled_at    timestamptz NULL,
    cancelled_by    uuid NULL REFERENCES users (id),
    CHECK (ends_at > starts_at),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    -- No double booking: one provider, one appointment at a time (cancelled ones free the time).
    CONSTRAINT appointments_no_double_booking EXCLUDE USING gist (
        provider_id WITH =, tstzrange(starts_at, ends_at) WITH &&) WHERE (status <> 'cancelled')
);
CREATE INDEX appointments_patient ON appointments (patient_id, starts_at);
CREATE INDEX appointments_time ON appointments (starts_at);
CREATE INDEX appointments_change ON appointments (change_seq);
