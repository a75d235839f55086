//! Clinic sign-up requests (`control.signup_requests`). The web (the application role) records
//! a request and reads its status; a worker holding the owner's credentials claims it,
//! provisions the clinic and records the outcome. The web never needs the owner role.

use sqlx::PgPool;

use crate::{DisplayName, Slug, TenantError, TenantId, TimeZoneName};

/// A request as the web records it; every field already parsed.
#[derive(Debug, Clone)]
pub struct SignupRequest {
    pub slug: Slug,
    pub display_name: DisplayName,
    pub time_zone: TimeZoneName,
    pub admin_name: String,
    pub admin_email: String,
}

/// Where a request stands, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupStatus {
    /// Waiting for a worker, or being provisioned now.
    InProgress,
    /// The clinic exists; the administrator's invitation is on its way.
    Done { slug: String, admin_email: String },
    /// It could not be done: `slug_taken` or `internal`.
    Failed { code: String },
}

/// A claimed request, for the worker.
#[derive(Debug, Clone)]
pub struct ClaimedSignup {
    pub id: uuid::Uuid,
    pub attempts: i32,
    pub request: SignupRequest,
}

/// Records a request. `SlugTaken` when another request for the address is in flight.
pub async fn request(pool: &PgPool, r: &SignupRequest) -> Result<uuid::Uuid, TenantError> {
    let id = uuid::Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO control.signup_requests
             (id, slug, display_name, time_zone, admin_name, admin_email)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        r.slug.as_str(),
        r.display_name.as_str(),
        r.time_zone.as_str(),
        r.admin_name,
        r.admin_email,
    )
    .execute(pool)
    .await
    .map_err(|e| {
        TenantError::on_unique(e, &["signup_requests_slug_in_flight"], || {
            TenantError::SlugTaken(r.slug.to_string())
        })
    })?;
    Ok(id)
}

/// The status of request `id` (`None`: no such request).
pub async fn status(pool: &PgPool, id: uuid::Uuid) -> Result<Option<SignupStatus>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT status, error, slug, admin_email FROM control.signup_requests WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| match r.status.as_str() {
        "done" => SignupStatus::Done {
            slug: r.slug,
            admin_email: r.admin_email,
        },
        "failed" => SignupStatus::Failed {
            code: r.error.unwrap_or_else(|| "internal".into()),
        },
        _ => SignupStatus::InProgress,
    }))
}

/// Claims the oldest request waiting (or one whose worker stopped mid-way `stale_secs` ago).
pub async fn claim_next(
    admin: &PgPool,
    stale_secs: f64,
) -> Result<Option<ClaimedSignup>, TenantError> {
    let row = sqlx::query!(
        "UPDATE control.signup_requests SET status = 'provisioning', attempts = attempts + 1,
                updated_at = now()
         WHERE id = (SELECT id FROM control.signup_requests
                     WHERE status = 'pending'
                        OR (status = 'provisioning'
                            AND updated_at < now() - make_interval(secs => $1))
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, attempts, slug, display_name, time_zone, admin_name, admin_email",
        stale_secs
    )
    .fetch_optional(admin)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let parsed = (
        Slug::parse(&r.slug),
        DisplayName::parse(&r.display_name),
        TimeZoneName::parse(&r.time_zone),
    );
    let (Ok(slug), Ok(display_name), Ok(time_zone)) = parsed else {
        // The web parsed these before recording them; a row that no longer parses will not
        // get better by waiting.
        finish(admin, r.id, Err("internal")).await?;
        return Ok(None);
    };
    Ok(Some(ClaimedSignup {
        id: r.id,
        attempts: r.attempts,
        request: SignupRequest {
            slug,
            display_name,
            time_zone,
            admin_name: r.admin_name,
            admin_email: r.admin_email,
        },
    }))
}

/// Records the outcome of a claimed request.
pub async fn finish(
    admin: &PgPool,
    id: uuid::Uuid,
    outcome: Result<TenantId, &str>,
) -> Result<(), sqlx::Error> {
    let (status, tenant, error) = match outcome {
        Ok(t) => ("done", Some(t.as_uuid()), None),
        Err(code) => ("failed", None, Some(code)),
    };
    sqlx::query!(
        "UPDATE control.signup_requests SET status = $2, tenant_id = $3, error = $4,
                updated_at = now()
         WHERE id = $1",
        id,
        status,
        tenant,
        error
    )
    .execute(admin)
    .await?;
    Ok(())
}

/// Puts a request whose attempt failed for a passing reason back in the queue.
pub async fn release(admin: &PgPool, id: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE control.signup_requests SET status = 'pending', updated_at = now() WHERE id = $1",
        id
    )
    .execute(admin)
    .await?;
    Ok(())
}
