-- Jobs of a suspended clinic are held, not sent and not dead: they wait in the delivery log
-- (visible to the operator) until the clinic is open again, when the reconciler re-queues them.
ALTER TABLE control.job_deliveries DROP CONSTRAINT job_deliveries_status_check;
ALTER TABLE control.job_deliveries ADD CONSTRAINT job_deliveries_status_check
    CHECK (status IN ('queued', 'running', 'done', 'dead', 'held'));
CREATE INDEX job_deliveries_held ON control.job_deliveries (tenant_id) WHERE status = 'held';
