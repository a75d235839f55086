-- Clinic staff see which of their own messages could not be sent (reminders, notices, offers).
-- The view reads job_deliveries with its owner's rights but keeps only the rows of the clinic
-- whose role is asking (`current_user` inside a view is the querying role), so every clinic sees
-- its own and any other role, the application's login role included, sees nothing. It is a
-- security barrier so no caller-supplied function sees another clinic's row first.
CREATE VIEW control.clinic_job_deliveries WITH (security_barrier) AS
    SELECT job_id, kind, payload, status, attempts, last_error, created_at, updated_at
    FROM control.job_deliveries
    WHERE tenant_id = control.tenant_of_role(current_user);
GRANT SELECT ON control.clinic_job_deliveries TO PUBLIC;
CREATE INDEX job_deliveries_dead_by_tenant ON control.job_deliveries (tenant_id, updated_at)
    WHERE status = 'dead';
