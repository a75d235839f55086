-- Control plane: the registry of clinics (tenants). Holds no patient data.
CREATE SCHEMA IF NOT EXISTS control;

CREATE TABLE control.tenants (
    id              uuid PRIMARY KEY,
    slug            text NOT NULL UNIQUE
                    CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
    display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- Where the clinic's data lives: one schema and one NOLOGIN role per clinic,
    -- on the database cell named here (one pool per cell, never one per tenant).
    schema_name     text NOT NULL UNIQUE,
    role_name       text NOT NULL UNIQUE,
    cell            text NOT NULL DEFAULT 'main',
    time_zone       text NOT NULL,
    -- Branding shown on the clinic's site and in its emails and SMS.
    primary_color   text NOT NULL CHECK (primary_color ~ '^#[0-9a-f]{6}$'),
    accent_color    text NOT NULL CHECK (accent_color ~ '^#[0-9a-f]{6}$'),
    sender_name     text NOT NULL CHECK (length(sender_name) BETWEEN 1 AND 60),
    logo            bytea NULL,
    logo_type       text NULL CHECK (logo_type IN ('image/png', 'image/svg+xml', 'image/jpeg')),
    -- Highest tenant migration applied; lets a no-op `portal migrate` skip every schema.
    schema_version  bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((logo IS NULL) = (logo_type IS NULL))
);

CREATE INDEX tenants_pending_migration ON control.tenants (schema_version);

-- Custom domains; only verified ones route to a clinic.
CREATE TABLE control.tenant_domains (
    domain       text PRIMARY KEY CHECK (domain = lower(domain)),
    tenant_id    uuid NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
    verified_at  timestamptz NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tenant_domains_tenant ON control.tenant_domains (tenant_id);

-- History of tenant migrations per clinic, for operators.
CREATE TABLE control.tenant_migrations (
    tenant_id   uuid NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
    version     bigint NOT NULL,
    checksum    bytea NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

-- A change that alters how a clinic's site resolves or looks tells running web processes to
-- drop their host → tenant cache, so a suspension takes effect at once. Migration bookkeeping
-- (schema_version) does not, so migrating 10,000 clinics does not flush caches 10,000 times.
CREATE FUNCTION control.notify_tenant_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portal_tenant_changed', '');
    RETURN NULL;
END
$$;

CREATE FUNCTION control.notify_tenant_row_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (OLD.slug, OLD.display_name, OLD.status, OLD.time_zone, OLD.primary_color,
            OLD.accent_color, OLD.sender_name, OLD.logo_type, md5(coalesce(OLD.logo, ''::bytea)))
           IS NOT DISTINCT FROM
           (NEW.slug, NEW.display_name, NEW.status, NEW.time_zone, NEW.primary_color,
            NEW.accent_color, NEW.sender_name, NEW.logo_type, md5(coalesce(NEW.logo, ''::bytea)))
        THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_notify('portal_tenant_changed', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_changed
    AFTER INSERT OR UPDATE OR DELETE ON control.tenants
    FOR EACH ROW EXECUTE FUNCTION control.notify_tenant_row_changed();

CREATE TRIGGER tenant_domains_changed
    AFTER INSERT OR UPDATE OR DELETE ON control.tenant_domains
    FOR EACH STATEMENT EXECUTE FUNCTION control.notify_tenant_changed();
