-- Statements that arrive from the clinic's own billing system through the API, with a clinic
-- API key: the sender's id for the statement (sending it again returns the same statement,
-- never a second one), a digest of what was sent (the same id with different content is
-- refused), and the key that sent it.
ALTER TABLE statements
    ADD COLUMN external_id text NULL UNIQUE
        CHECK (length(external_id) BETWEEN 1 AND 64),
    ADD COLUMN import_digest text NULL,
    ADD COLUMN imported_by_key uuid NULL REFERENCES api_keys (id),
    ADD CONSTRAINT statements_import_whole
        CHECK ((external_id IS NULL) = (import_digest IS NULL)
               AND (external_id IS NULL) = (imported_by_key IS NULL));

-- The commit-time check compared the entries with the row as the queued event saw it. An
-- account made and charged in one transaction (an imported statement for a patient's first
-- bill) queues its INSERT event with a balance of 0, then the charge moves the balance: the
-- check must read the account as it is at commit, not as it was inserted.
CREATE OR REPLACE FUNCTION billing_balance_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    counted bigint;
    now_balance bigint;
    now_entries bigint;
BEGIN
    SELECT balance_minor, entries INTO now_balance, now_entries
      FROM billing_accounts WHERE id = NEW.id;
    SELECT coalesce(sum(amount_minor), 0), count(*) INTO total, counted
      FROM ledger_entries WHERE account_id = NEW.id;
    IF now_balance IS DISTINCT FROM total OR now_entries IS DISTINCT FROM counted THEN
        RAISE EXCEPTION 'account balance % is not the sum of its entries %', now_balance, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
