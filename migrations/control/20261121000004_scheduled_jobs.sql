-- Delayed jobs (appointment reminders): a job with `not_before` waits in the outbox until that
-- moment (by the pipeline's clock) and is relayed to Redis only then. Keeping future work in
-- PostgreSQL means a Redis that loses its data loses nothing that is not yet due.
ALTER TABLE control.outbox ADD COLUMN not_before timestamptz NULL;
CREATE INDEX outbox_ready ON control.outbox (created_at, id) WHERE not_before IS NULL;
CREATE INDEX outbox_scheduled ON control.outbox (not_before, id) WHERE not_before IS NOT NULL;
-- The reconciler finds deliveries that Redis may have lost.
CREATE INDEX job_deliveries_open ON control.job_deliveries (updated_at) WHERE status IN ('queued', 'running');
