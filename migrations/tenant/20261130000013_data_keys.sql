-- The clinic's data key for its documents, kept only wrapped by the deployment's master key
-- (`portal-vault`): this table alone, or a copy of the database, opens no document.
-- Versions leave room for rotating the key; today every clinic has version 1.
CREATE TABLE data_keys (
    version     integer PRIMARY KEY CHECK (version > 0),
    wrapped     bytea NOT NULL CHECK (length(wrapped) = 60),
    created_at  timestamptz NOT NULL DEFAULT now()
);
