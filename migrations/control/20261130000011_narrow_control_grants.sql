-- Narrower than 20261130000008: only clinic roles (granted one by one, by the provisioner and
-- by `portal migrate` for existing clinics) may record a branding change; no other login role
-- gets anything in the control schema from PUBLIC.
REVOKE INSERT ON control.branding_changes FROM PUBLIC;
REVOKE USAGE ON SCHEMA control FROM PUBLIC;
