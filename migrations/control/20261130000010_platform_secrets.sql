-- Secrets every process of one deployment shares and no operator has to set: made once, here,
-- from PostgreSQL's strong random source. The web reads them at start-up (application role).
CREATE TABLE control.platform_secrets (
    name   text PRIMARY KEY,
    value  bytea NOT NULL
);
-- Keys the rate limiter's Redis counters (HMAC), so no email or address can be recovered
-- from a key by hashing guesses.
INSERT INTO control.platform_secrets (name, value)
VALUES ('limiter', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
