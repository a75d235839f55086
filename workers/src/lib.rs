//! Background work. The job pipeline (transactional outbox → apalis queues on Redis → idempotent
//! handlers for email, SMS, payments and PDFs) is registered here; until its first job type
//! lands, the process only holds its place and shuts down cleanly.

/// Runs this process's job handlers until `shutdown` completes.
pub async fn run(worker_name: &str, shutdown: impl std::future::Future<Output = ()>) {
    tracing::debug!(worker = %worker_name, "no job types are registered yet");
    shutdown.await;
}
