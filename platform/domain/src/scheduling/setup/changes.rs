//! Editing and removing set-up. Removing is "retiring": the row stays (past visits still name
//! their location, provider and visit type) but stops being offered. Something still in use
//! is refused with the reason, so no booked visit is left pointing at a place or person that
//! no longer exists. Every change is audited.

use chrono::{DateTime, Utc};
use portal_tenants::TenantTx;

use super::{SetupError, clean_name};
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;
use crate::ids::{LocationId, ProviderId, VisitTypeId};

fn upcoming(n: i64) -> String {
    if n == 1 {
        "1 upcoming visit is".to_owned()
    } else {
        format!("{n} upcoming visits are")
    }
}

pub async fn update_location(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    id: LocationId,
    name: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    let name = clean_name(name, "Give the location a name (up to 120 characters).")?;
    let address = address.trim();
    if address.chars().count() > 300 {
        return Err(SetupError::Invalid(
            "The address is too long (300 characters at most).",
        ));
    }
    let n = sqlx::query!(
        "UPDATE locations SET name = $2, address = $3 WHERE id = $1 AND active",
        id.as_uuid(),
        name,
        address
    )
    .execute(tx.conn())
    .await
    .map_err(SetupError::from_db)?
    .rows_affected();
    if n == 0 {
        return Err(SetupError::UnknownLocation);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::LocationUpdate, "location").resource(id),
    )
    .await?;
    Ok(())
}

/// A visit type's editable fields, as typed. (Its kind — in person or video — and its audience
/// stay as created: visits already booked depend on them.)
#[derive(Debug, Clone, Copy)]
pub struct VisitTypeEdit<'a> {
    pub name: &'a str,
    pub duration_minutes: &'a str,
    pub self_bookable: bool,
}

pub async fn update_visit_type(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    id: VisitTypeId,
    edit: VisitTypeEdit<'_>,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    let VisitTypeEdit {
        name,
        duration_minutes,
        self_bookable,
    } = edit;
    let name = clean_name(name, "Give the visit type a name (up to 120 characters).")?;
    let minutes: i32 = duration_minutes
        .trim()
        .parse()
        .ok()
        .filter(|m| (5..=480).contains(m))
        .ok_or(SetupError::Invalid(
            "Enter how long the visit takes, in minutes (5 to 480).",
        ))?;
    let n = sqlx::query!(
        "UPDATE visit_types SET name = $2, duration_minutes = $3, self_bookable = $4
         WHERE id = $1 AND active",
        id.as_uuid(),
        name,
        minutes,
        self_bookable
    )
    .execute(tx.conn())
    .await
    .map_err(SetupError::from_db)?
    .rows_affected();
    if n == 0 {
        return Err(SetupError::UnknownVisitType);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::VisitTypeUpdate, "visit_type").resource(id),
    )
    .await?;
    Ok(())
}

pub async fn rename_provider(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    id: ProviderId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    let name = clean_name(name, "Give the provider a name (up to 120 characters).")?;
    let n = sqlx::query!(
        "UPDATE providers SET display_name = $2 WHERE id = $1 AND active",
        id.as_uuid(),
        name
    )
    .execute(tx.conn())
    .await
    .map_err(SetupError::from_db)?
    .rows_affected();
    if n == 0 {
        return Err(SetupError::UnknownProvider);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ProviderUpdate, "provider").resource(id),
    )
    .await?;
    Ok(())
}

/// Retires a location, unless visits are booked there or a provider has weekly hours there.
pub async fn retire_location(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    id: LocationId,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    // Taken FOR UPDATE, so a booking in flight (which holds it FOR SHARE) finishes first and
    // is counted below.
    sqlx::query!(
        "SELECT id FROM locations WHERE id = $1 FOR UPDATE",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    let r = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM appointments WHERE location_id = $1
                AND status IN ('booked', 'checked_in') AND ends_at > $2) AS "visits!",
             (SELECT count(*) FROM availability WHERE location_id = $1) AS "hours!",
             EXISTS (SELECT 1 FROM locations WHERE id = $1 AND active) AS "exists!""#,
        id.as_uuid(),
        now
    )
    .fetch_one(tx.conn())
    .await?;
    if !r.exists {
        return Err(SetupError::UnknownLocation);
    }
    if r.visits > 0 {
        return Err(SetupError::InUse(format!(
            "{} booked at this location. Move or cancel them first.",
            upcoming(r.visits)
        )));
    }
    if r.hours > 0 {
        return Err(SetupError::InUse(
            "Providers have weekly hours at this location. Remove those hours first.".to_owned(),
        ));
    }
    sqlx::query!(
        "UPDATE locations SET active = false WHERE id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::LocationDelete, "location").resource(id),
    )
    .await?;
    Ok(())
}

/// Retires a visit type, unless visits of that type are booked.
pub async fn retire_visit_type(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    id: VisitTypeId,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    sqlx::query!(
        "SELECT id FROM visit_types WHERE id = $1 FOR UPDATE",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    let r = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM appointments WHERE visit_type_id = $1
                AND status IN ('booked', 'checked_in') AND ends_at > $2) AS "visits!",
             EXISTS (SELECT 1 FROM visit_types WHERE id = $1 AND active) AS "exists!""#,
        id.as_uuid(),
        now
    )
    .fetch_one(tx.conn())
    .await?;
    if !r.exists {
        return Err(SetupError::UnknownVisitType);
    }
    if r.visits > 0 {
        return Err(SetupError::InUse(format!(
            "{} of this type. Move or cancel them first.",
            upcoming(r.visits)
        )));
    }
    sqlx::query!(
        "UPDATE visit_types SET active = false WHERE id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::VisitTypeDelete, "visit_type").resource(id),
    )
    .await?;
    Ok(())
}

/// Retires a provider and their weekly hours, unless visits with them are booked.
pub async fn retire_provider(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    id: ProviderId,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    sqlx::query!(
        "SELECT id FROM providers WHERE id = $1 FOR UPDATE",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    let r = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM appointments WHERE provider_id = $1
                AND status IN ('booked', 'checked_in') AND ends_at > $2) AS "visits!",
             EXISTS (SELECT 1 FROM providers WHERE id = $1 AND active) AS "exists!""#,
        id.as_uuid(),
        now
    )
    .fetch_one(tx.conn())
    .await?;
    if !r.exists {
        return Err(SetupError::UnknownProvider);
    }
    if r.visits > 0 {
        return Err(SetupError::InUse(format!(
            "{} with this provider. Move or cancel them first.",
            upcoming(r.visits)
        )));
    }
    sqlx::query!(
        "DELETE FROM availability WHERE provider_id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE providers SET active = false WHERE id = $1",
        id.as_uuid()
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ProviderDelete, "provider").resource(id),
    )
    .await?;
    Ok(())
}
