-- Which clinic a Stripe connected account belongs to. Stripe sends every clinic's Connect
-- events to the platform's one webhook endpoint, naming only the account; this is how the
-- event finds its clinic. A clinic's role records its own account (the trigger stamps the
-- clinic from the role, refusing any role that is no clinic's, so no clinic can claim an
-- account for another); the web's login role only reads it.
CREATE TABLE control.stripe_accounts (
    account_id  text PRIMARY KEY CHECK (account_id ~ '^acct_[A-Za-z0-9]{1,64}$'),
    tenant_id   uuid NOT NULL UNIQUE REFERENCES control.tenants (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION control.stripe_account_stamp_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.tenant_id := control.tenant_of_role(current_user);
    IF NEW.tenant_id IS NULL THEN
        RAISE EXCEPTION 'only a clinic may record its Stripe account' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER stripe_account_stamp_tenant BEFORE INSERT ON control.stripe_accounts
    FOR EACH ROW EXECUTE FUNCTION control.stripe_account_stamp_tenant();
