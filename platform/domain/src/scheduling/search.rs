//! Open-slot search for a visit type, optionally narrowed to a provider and a location. Patients
//! see only what they may book themselves (self-bookable types, within notice and horizon);
//! staff see every open time from now on.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::appointments::AppointmentError;
use super::setup::{self, Location, Provider, VisitType};
use super::slots::{Busy, Slot, Span, open_slots};
use crate::ids::{LocationId, ProviderId, VisitTypeId};

#[derive(Debug, Clone, Copy)]
pub struct SlotQuery {
    pub visit_type_id: VisitTypeId,
    pub provider_id: Option<ProviderId>,
    pub location_id: Option<LocationId>,
    /// First local date to search.
    pub from: NaiveDate,
    /// How many days from `from` (1 to 31).
    pub days: u32,
}

/// Open slots with the names to show them by.
#[derive(Debug, Clone)]
pub struct SlotSearch {
    pub visit_type: VisitType,
    pub providers: Vec<Provider>,
    pub locations: Vec<Location>,
    pub slots: Vec<Slot>,
}

impl SlotSearch {
    pub fn provider_name(&self, id: ProviderId) -> &str {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .map_or("", |p| p.display_name.as_str())
    }
    pub fn location_name(&self, id: LocationId) -> &str {
        self.locations
            .iter()
            .find(|l| l.id == id)
            .map_or("", |l| l.name.as_str())
    }
}

pub const MAX_DAYS: u32 = 31;

pub async fn search(
    tx: &mut TenantTx,
    for_patient: bool,
    q: &SlotQuery,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<SlotSearch, AppointmentError> {
    let visit_type = setup::visit_type(tx, q.visit_type_id)
        .await?
        .filter(|v| v.self_bookable || !for_patient)
        .ok_or(AppointmentError::UnknownVisitType)?;
    let providers: Vec<Provider> = setup::providers(tx)
        .await?
        .into_iter()
        .filter(|p| p.visit_types.contains(&visit_type.id))
        .collect();
    if let Some(p) = q.provider_id
        && !providers.iter().any(|x| x.id == p)
    {
        return Err(AppointmentError::UnknownProvider);
    }
    let locations = setup::locations(tx).await?;
    if let Some(l) = q.location_id
        && !locations.iter().any(|x| x.id == l)
    {
        return Err(AppointmentError::UnknownLocation);
    }
    let windows: Vec<_> = setup::windows(tx, q.provider_id)
        .await?
        .into_iter()
        .filter(|w| providers.iter().any(|p| p.id == w.provider_id))
        .filter(|w| q.location_id.is_none_or(|l| l == w.location_id))
        .collect();
    let rules = setup::rules(tx).await?;
    let (earliest, latest) = if for_patient {
        (now + rules.min_notice(), now + rules.horizon())
    } else {
        (now, DateTime::<Utc>::MAX_UTC)
    };
    let days = q.days.clamp(1, MAX_DAYS);
    let to = q.from + Duration::days(i64::from(days) - 1);
    // A day either side covers every UTC offset.
    let range_from = q
        .from
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc() - Duration::days(1));
    let range_to = to
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc() + Duration::days(2));
    let (Some(range_from), Some(range_to)) = (range_from, range_to) else {
        return Ok(SlotSearch {
            visit_type,
            providers,
            locations,
            slots: Vec::new(),
        });
    };
    let provider_ids: Vec<uuid::Uuid> = windows.iter().map(|w| w.provider_id.as_uuid()).collect();
    let booked = sqlx::query!(
        "SELECT provider_id, starts_at, ends_at FROM appointments
         WHERE status <> 'cancelled' AND provider_id = ANY($1)
           AND starts_at < $3 AND ends_at > $2",
        &provider_ids,
        range_from,
        range_to
    )
    .fetch_all(tx.conn())
    .await?;
    let mut busy: Vec<Busy> = booked
        .into_iter()
        .map(|r| Busy {
            provider_id: Some(ProviderId::from_uuid(r.provider_id)),
            location_id: None,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
        })
        .collect();
    busy.extend(
        setup::time_off(tx, range_from, range_to)
            .await?
            .into_iter()
            .map(|t| Busy {
                provider_id: t.provider_id,
                location_id: t.location_id,
                starts_at: t.starts_at,
                ends_at: t.ends_at,
            }),
    );
    let slots = open_slots(
        tz,
        &windows,
        &busy,
        visit_type.duration(),
        Span {
            from: q.from,
            to,
            earliest,
            latest,
        },
    );
    Ok(SlotSearch {
        visit_type,
        providers,
        locations,
        slots,
    })
}
