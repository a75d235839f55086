//! The clinic's scheduling set-up. Administrators define locations, providers, visit types,
//! weekly hours and booking rules; any staff member records time off. Everyone signed in to the
//! clinic may read the set-up (patients need it to search for a time).

mod changes;

pub use changes::{
    VisitTypeEdit, rename_provider, retire_location, retire_provider, retire_visit_type,
    update_location, update_visit_type,
};

use chrono::{DateTime, Utc, Weekday};
use portal_tenants::TenantTx;

use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;
use crate::ids::{AvailabilityId, ExceptionId, LocationId, ProviderId, VisitTypeId};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Location {
    pub id: LocationId,
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Provider {
    pub id: ProviderId,
    pub display_name: String,
    /// The visit types this provider offers.
    pub visit_types: Vec<VisitTypeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    InPerson,
    Video,
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::InPerson => "in_person",
            Modality::Video => "video",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "in_person" => Some(Modality::InPerson),
            "video" => Some(Modality::Video),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Modality::InPerson => "In person",
            Modality::Video => "Video",
        }
    }
}

/// Who may book a visit type themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Any,
    /// Only patients who have never had a visit here.
    New,
    /// Only patients who have had a visit here before.
    Established,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Any => "any",
            Audience::New => "new",
            Audience::Established => "established",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "any" => Some(Audience::Any),
            "new" => Some(Audience::New),
            "established" => Some(Audience::Established),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Audience::Any => "All patients",
            Audience::New => "New patients",
            Audience::Established => "Established patients",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VisitType {
    pub id: VisitTypeId,
    pub name: String,
    pub duration_minutes: i32,
    pub self_bookable: bool,
    pub audience: Audience,
    pub modality: Modality,
    pub video_base_url: Option<String>,
}

impl VisitType {
    pub fn duration(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.duration_minutes))
    }
}

/// One weekly window of a provider's hours at a location, in the clinic's local time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    pub id: AvailabilityId,
    pub provider_id: ProviderId,
    pub location_id: LocationId,
    /// ISO weekday, 1 = Monday.
    pub weekday: u8,
    /// Minutes after local midnight; `end_minute` may be 1440 (midnight at the end of the day).
    pub start_minute: u16,
    pub end_minute: u16,
}

impl Window {
    pub fn chrono_weekday(&self) -> Weekday {
        weekday_from_iso(self.weekday)
    }
}

pub fn weekday_from_iso(d: u8) -> Weekday {
    match d {
        1 => Weekday::Mon,
        2 => Weekday::Tue,
        3 => Weekday::Wed,
        4 => Weekday::Thu,
        5 => Weekday::Fri,
        6 => Weekday::Sat,
        _ => Weekday::Sun,
    }
}

/// "09:30" for 570; "24:00" for the end of the day.
pub fn minute_label(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// Parses "9:30" / "09:30" / "24:00" into minutes after midnight.
pub fn parse_clock(raw: &str) -> Option<u16> {
    let (h, m) = raw.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= 1440).then_some(total)
}

/// Time off (a provider) or a closure (a location, or the whole clinic).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimeOff {
    pub id: ExceptionId,
    pub provider_id: Option<ProviderId>,
    pub location_id: Option<LocationId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub label: String,
}

/// How far ahead and how late patients may book, move and cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BookingRules {
    /// A patient may not book a time starting sooner than this.
    pub min_notice_minutes: i32,
    /// A patient may not book further ahead than this.
    pub horizon_days: i32,
    /// A patient may not cancel or move a visit this close to its start (staff still can).
    pub cancel_cutoff_hours: i32,
}

impl BookingRules {
    pub fn min_notice(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.min_notice_minutes))
    }
    pub fn horizon(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.horizon_days))
    }
    pub fn cancel_cutoff(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.cancel_cutoff_hours))
    }

    pub fn parse(notice: &str, horizon: &str, cutoff: &str) -> Result<Self, SetupError> {
        let num = |raw: &str, what: &'static str, max: i32| -> Result<i32, SetupError> {
            raw.trim()
                .parse::<i32>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or(SetupError::Invalid(match what {
                    "notice" => "Minimum notice must be a whole number of minutes, 0 to 20160.",
                    "horizon" => "Booking horizon must be a whole number of days, 1 to 730.",
                    _ => "Cancellation cut-off must be a whole number of hours, 0 to 336.",
                }))
        };
        let rules = Self {
            min_notice_minutes: num(notice, "notice", 20160)?,
            horizon_days: num(horizon, "horizon", 730)?,
            cancel_cutoff_hours: num(cutoff, "cutoff", 336)?,
        };
        if rules.horizon_days < 1 {
            return Err(SetupError::Invalid(
                "Booking horizon must be a whole number of days, 1 to 730.",
            ));
        }
        Ok(rules)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("that name is already in use")]
    DuplicateName,
    #[error("these hours overlap hours this provider already has on that day")]
    OverlappingHours,
    #[error("no such provider")]
    UnknownProvider,
    #[error("no such location")]
    UnknownLocation,
    #[error("no such visit type")]
    UnknownVisitType,
    /// Removing something still in use; the words say what uses it.
    #[error("{0}")]
    InUse(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl SetupError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            SetupError::Invalid(_) => "invalid",
            SetupError::DuplicateName => "duplicate_name",
            SetupError::OverlappingHours => "overlapping_availability",
            SetupError::UnknownProvider => "unknown_provider",
            SetupError::UnknownLocation => "unknown_location",
            SetupError::UnknownVisitType => "unknown_visit_type",
            SetupError::InUse(_) => "in_use",
            SetupError::Database(_) => "internal",
        }
    }

    fn from_db(e: sqlx::Error) -> Self {
        match e.as_database_error().and_then(|d| d.code()).as_deref() {
            Some("23505") => SetupError::DuplicateName,
            Some("23P01") => SetupError::OverlappingHours,
            _ => SetupError::Database(e),
        }
    }
}

fn clean_name(raw: &str, what: &'static str) -> Result<String, SetupError> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || name.chars().count() > 120 {
        return Err(SetupError::Invalid(what));
    }
    Ok(name)
}

/// A visit type as entered, before it is parsed.
#[derive(Debug, Clone, Default)]
pub struct VisitTypeInput<'a> {
    pub name: &'a str,
    pub duration_minutes: &'a str,
    pub self_bookable: bool,
    pub audience: &'a str,
    pub modality: &'a str,
    pub video_base_url: &'a str,
}

/// A parsed visit type, ready to store.
#[derive(Debug, Clone)]
pub struct NewVisitType {
    name: String,
    duration_minutes: i32,
    self_bookable: bool,
    audience: Audience,
    modality: Modality,
    video_base_url: Option<String>,
}

impl NewVisitType {
    pub fn parse(i: &VisitTypeInput<'_>) -> Result<Self, SetupError> {
        let name = clean_name(i.name, "Give the visit type a name (up to 120 characters).")?;
        let duration_minutes = i
            .duration_minutes
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|d| (5..=480).contains(d))
            .ok_or(SetupError::Invalid(
                "Length must be a whole number of minutes, 5 to 480.",
            ))?;
        let audience = Audience::parse(i.audience.trim()).ok_or(SetupError::Invalid(
            "Choose who may book it: any, new or established patients.",
        ))?;
        let modality = Modality::parse(i.modality.trim())
            .ok_or(SetupError::Invalid("Choose in person or video."))?;
        let url = i.video_base_url.trim();
        let video_base_url = match modality {
            Modality::InPerson => None,
            Modality::Video => {
                let ok = url.starts_with("https://")
                    && url.len() > "https://".len()
                    && url.len() <= 300
                    && !url
                        .chars()
                        .any(|c| c.is_whitespace() || c == '"' || c == '<');
                if !ok {
                    return Err(SetupError::Invalid(
                        "A video visit needs the clinic's video service address, starting with https://.",
                    ));
                }
                Some(url.trim_end_matches('/').to_owned())
            }
        };
        Ok(Self {
            name,
            duration_minutes,
            self_bookable: i.self_bookable,
            audience,
            modality,
            video_base_url,
        })
    }
}

/// Weekly hours as entered.
#[derive(Debug, Clone)]
pub struct NewWindow {
    pub provider_id: ProviderId,
    pub location_id: LocationId,
    pub weekday: u8,
    pub start_minute: u16,
    pub end_minute: u16,
}

impl NewWindow {
    pub fn parse(
        provider_id: ProviderId,
        location_id: LocationId,
        weekday: &str,
        start: &str,
        end: &str,
    ) -> Result<Self, SetupError> {
        let weekday = weekday
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|d| (1..=7).contains(d))
            .ok_or(SetupError::Invalid("Choose a day of the week."))?;
        let start_minute = parse_clock(start)
            .filter(|m| *m < 1440)
            .ok_or(SetupError::Invalid("Start must be a time like 09:00."))?;
        let end_minute =
            parse_clock(end).ok_or(SetupError::Invalid("End must be a time like 17:00."))?;
        if end_minute <= start_minute {
            return Err(SetupError::Invalid("End must be after start."));
        }
        Ok(Self {
            provider_id,
            location_id,
            weekday,
            start_minute,
            end_minute,
        })
    }
}

pub async fn add_location(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    name: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<LocationId, SetupError> {
    let name = clean_name(name, "Give the location a name (up to 120 characters).")?;
    let address = address.trim();
    if address.chars().count() > 300 {
        return Err(SetupError::Invalid(
            "The address is too long (300 characters at most).",
        ));
    }
    let id = LocationId::new();
    sqlx::query!(
        "INSERT INTO locations (id, name, address, created_at) VALUES ($1, $2, $3, $4)",
        id.as_uuid(),
        name,
        address,
        now
    )
    .execute(tx.conn())
    .await
    .map_err(SetupError::from_db)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::LocationCreate, "location").resource(id),
    )
    .await?;
    Ok(id)
}

pub async fn add_visit_type(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    new: &NewVisitType,
    now: DateTime<Utc>,
) -> Result<VisitTypeId, SetupError> {
    let id = VisitTypeId::new();
    sqlx::query!(
        "INSERT INTO visit_types (id, name, duration_minutes, self_bookable, audience, modality,
                                  video_base_url, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id.as_uuid(),
        new.name,
        new.duration_minutes,
        new.self_bookable,
        new.audience.as_str(),
        new.modality.as_str(),
        new.video_base_url,
        now
    )
    .execute(tx.conn())
    .await
    .map_err(SetupError::from_db)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::VisitTypeCreate, "visit_type").resource(id),
    )
    .await?;
    Ok(id)
}

/// Adds a provider offering `visit_types` (each must exist).
pub async fn add_provider(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    display_name: &str,
    visit_types: &[VisitTypeId],
    now: DateTime<Utc>,
) -> Result<ProviderId, SetupError> {
    let name = clean_name(
        display_name,
        "Give the provider a name (up to 120 characters).",
    )?;
    let id = ProviderId::new();
    sqlx::query!(
        "INSERT INTO providers (id, display_name, created_at) VALUES ($1, $2, $3)",
        id.as_uuid(),
        name,
        now
    )
    .execute(tx.conn())
    .await
    .map_err(SetupError::from_db)?;
    let ids: Vec<uuid::Uuid> = visit_types.iter().map(VisitTypeId::as_uuid).collect();
    let added = sqlx::query!(
        "INSERT INTO provider_visit_types (provider_id, visit_type_id)
         SELECT $1, v.id FROM visit_types v WHERE v.id = ANY($2) AND v.active",
        id.as_uuid(),
        &ids
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    if added != distinct.len() as u64 {
        return Err(SetupError::UnknownVisitType);
    }
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ProviderCreate, "provider").resource(id),
    )
    .await?;
    Ok(id)
}

/// Adds weekly hours. Overlapping hours of the same provider on the same day are refused by
/// the database, whichever location they are at.
pub async fn add_window(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    new: &NewWindow,
    now: DateTime<Utc>,
) -> Result<AvailabilityId, SetupError> {
    let row = sqlx::query!(
        r#"SELECT (EXISTS (SELECT 1 FROM providers WHERE id = $1 AND active)) AS "p!",
                  (EXISTS (SELECT 1 FROM locations WHERE id = $2 AND active)) AS "l!""#,
        new.provider_id.as_uuid(),
        new.location_id.as_uuid()
    )
    .fetch_one(tx.conn())
    .await?;
    if !row.p {
        return Err(SetupError::UnknownProvider);
    }
    if !row.l {
        return Err(SetupError::UnknownLocation);
    }
    let id = AvailabilityId::new();
    sqlx::query!(
        "INSERT INTO availability (id, provider_id, location_id, weekday, start_minute, end_minute, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id.as_uuid(),
        new.provider_id.as_uuid(),
        new.location_id.as_uuid(),
        i16::from(new.weekday),
        i32::from(new.start_minute),
        i32::from(new.end_minute),
        now
    )
    .execute(tx.conn())
    .await
    .map_err(SetupError::from_db)?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::AvailabilityCreate, "availability").resource(id),
    )
    .await?;
    Ok(id)
}

pub async fn remove_window(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    id: AvailabilityId,
    now: DateTime<Utc>,
) -> Result<bool, SetupError> {
    let gone = sqlx::query!("DELETE FROM availability WHERE id = $1", id.as_uuid())
        .execute(tx.conn())
        .await?
        .rows_affected()
        > 0;
    if gone {
        audit::record(
            tx,
            ctx,
            now,
            AuditEvent::new(Action::AvailabilityDelete, "availability").resource(id),
        )
        .await?;
    }
    Ok(gone)
}

/// Records time off or a closure. Existing appointments in it stay booked (staff move them).
#[allow(clippy::too_many_arguments)]
pub async fn add_time_off(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    provider_id: Option<ProviderId>,
    location_id: Option<LocationId>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    label: &str,
    now: DateTime<Utc>,
) -> Result<ExceptionId, SetupError> {
    if ends_at <= starts_at {
        return Err(SetupError::Invalid("Time off must end after it starts."));
    }
    let label = label.trim();
    if label.chars().count() > 120 {
        return Err(SetupError::Invalid(
            "The label is too long (120 characters at most).",
        ));
    }
    if let Some(p) = provider_id
        && !sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM providers WHERE id = $1) AS "e!""#,
            p.as_uuid()
        )
        .fetch_one(tx.conn())
        .await?
    {
        return Err(SetupError::UnknownProvider);
    }
    if let Some(l) = location_id
        && !sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM locations WHERE id = $1) AS "e!""#,
            l.as_uuid()
        )
        .fetch_one(tx.conn())
        .await?
    {
        return Err(SetupError::UnknownLocation);
    }
    let id = ExceptionId::new();
    sqlx::query!(
        "INSERT INTO availability_exceptions (id, provider_id, location_id, starts_at, ends_at, label, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id.as_uuid(),
        provider_id.map(|p| p.as_uuid()),
        location_id.map(|l| l.as_uuid()),
        starts_at,
        ends_at,
        label,
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::TimeOffCreate, "availability_exception").resource(id),
    )
    .await?;
    Ok(id)
}

pub async fn set_rules(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    rules: &BookingRules,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    sqlx::query!(
        "UPDATE booking_rules SET min_notice_minutes = $1, horizon_days = $2,
                cancel_cutoff_hours = $3, updated_at = $4",
        rules.min_notice_minutes,
        rules.horizon_days,
        rules.cancel_cutoff_hours,
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::BookingRulesUpdate, "booking_rules"),
    )
    .await?;
    Ok(())
}

pub async fn rules(tx: &mut TenantTx) -> Result<BookingRules, sqlx::Error> {
    sqlx::query_as!(
        BookingRules,
        "SELECT min_notice_minutes, horizon_days, cancel_cutoff_hours FROM booking_rules"
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn locations(tx: &mut TenantTx) -> Result<Vec<Location>, sqlx::Error> {
    let rows =
        sqlx::query!("SELECT id, name, address FROM locations WHERE active ORDER BY lower(name)")
            .fetch_all(tx.conn())
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| Location {
            id: LocationId::from_uuid(r.id),
            name: r.name,
            address: r.address,
        })
        .collect())
}

/// The provider a staff account works as: the one linked to the account, else the one with
/// the account's name (clinics often set providers up before inviting them).
pub async fn provider_for_user(
    tx: &mut TenantTx,
    user: crate::ids::UserId,
    display_name: &str,
) -> Result<Option<ProviderId>, sqlx::Error> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM providers
         WHERE active AND (user_id = $1 OR (user_id IS NULL AND lower(display_name) = lower($2)))
         ORDER BY user_id IS NULL LIMIT 1",
        user.as_uuid(),
        display_name
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(id.map(ProviderId::from_uuid))
}

pub async fn providers(tx: &mut TenantTx) -> Result<Vec<Provider>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.id, p.display_name,
                  COALESCE(array_agg(pv.visit_type_id) FILTER (WHERE pv.visit_type_id IS NOT NULL),
                           '{}') AS "visit_types!"
           FROM providers p LEFT JOIN provider_visit_types pv ON pv.provider_id = p.id
           WHERE p.active GROUP BY p.id ORDER BY lower(p.display_name)"#
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Provider {
            id: ProviderId::from_uuid(r.id),
            display_name: r.display_name,
            visit_types: r
                .visit_types
                .into_iter()
                .map(VisitTypeId::from_uuid)
                .collect(),
        })
        .collect())
}

struct VisitTypeRow {
    id: uuid::Uuid,
    name: String,
    duration_minutes: i32,
    self_bookable: bool,
    audience: String,
    modality: String,
    video_base_url: Option<String>,
}

impl From<VisitTypeRow> for VisitType {
    fn from(r: VisitTypeRow) -> Self {
        Self {
            id: VisitTypeId::from_uuid(r.id),
            name: r.name,
            duration_minutes: r.duration_minutes,
            self_bookable: r.self_bookable,
            audience: Audience::parse(&r.audience).unwrap_or(Audience::Any),
            modality: Modality::parse(&r.modality).unwrap_or(Modality::InPerson),
            video_base_url: r.video_base_url,
        }
    }
}

pub async fn visit_types(tx: &mut TenantTx) -> Result<Vec<VisitType>, sqlx::Error> {
    let rows = sqlx::query_as!(
        VisitTypeRow,
        "SELECT id, name, duration_minutes, self_bookable, audience, modality, video_base_url
         FROM visit_types WHERE active ORDER BY lower(name)"
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(VisitType::from).collect())
}

pub async fn visit_type(
    tx: &mut TenantTx,
    id: VisitTypeId,
) -> Result<Option<VisitType>, sqlx::Error> {
    let row = sqlx::query_as!(
        VisitTypeRow,
        "SELECT id, name, duration_minutes, self_bookable, audience, modality, video_base_url
         FROM visit_types WHERE id = $1 AND active",
        id.as_uuid()
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(VisitType::from))
}

/// Weekly hours, optionally of one provider.
pub async fn windows(
    tx: &mut TenantTx,
    provider: Option<ProviderId>,
) -> Result<Vec<Window>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT a.id, a.provider_id, a.location_id, a.weekday, a.start_minute, a.end_minute
         FROM availability a
         JOIN providers p ON p.id = a.provider_id AND p.active
         JOIN locations l ON l.id = a.location_id AND l.active
         WHERE $1::uuid IS NULL OR a.provider_id = $1
         ORDER BY a.weekday, a.start_minute",
        provider.map(|p| p.as_uuid())
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Window {
            id: AvailabilityId::from_uuid(r.id),
            provider_id: ProviderId::from_uuid(r.provider_id),
            location_id: LocationId::from_uuid(r.location_id),
            weekday: u8::try_from(r.weekday).unwrap_or(1),
            start_minute: u16::try_from(r.start_minute).unwrap_or(0),
            end_minute: u16::try_from(r.end_minute).unwrap_or(0),
        })
        .collect())
}

/// Time off and closures overlapping `[from, to)`.
pub async fn time_off(
    tx: &mut TenantTx,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TimeOff>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT id, provider_id, location_id, starts_at, ends_at, label
         FROM availability_exceptions WHERE starts_at < $2 AND ends_at > $1
         ORDER BY starts_at",
        from,
        to
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TimeOff {
            id: ExceptionId::from_uuid(r.id),
            provider_id: r.provider_id.map(ProviderId::from_uuid),
            location_id: r.location_id.map(LocationId::from_uuid),
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            label: r.label,
        })
        .collect())
}

/// A clinic's starting set-up, for operator tools (the demo, imports).
#[derive(Debug, Clone, Default)]
pub struct SeedPlan<'a> {
    /// (name, address)
    pub locations: Vec<(&'a str, &'a str)>,
    pub visit_types: Vec<VisitTypeInput<'a>>,
    /// (name, names of the visit types offered)
    pub providers: Vec<(&'a str, Vec<&'a str>)>,
    /// (provider, location, ISO weekdays, start, end)
    pub hours: Vec<(&'a str, &'a str, Vec<u8>, &'a str, &'a str)>,
}

/// Applies `plan` unless the clinic already has a location (so a second run changes nothing).
/// Returns whether it did anything. Runs as the clinic itself; audited with no actor.
pub async fn seed_if_empty(
    tx: &mut TenantTx,
    plan: &SeedPlan<'_>,
    now: DateTime<Utc>,
) -> Result<bool, SetupError> {
    if !locations(tx).await?.is_empty() {
        return Ok(false);
    }
    let admin = AdminScope::system();
    let ctx = AuditContext::default();
    let mut loc_ids = Vec::new();
    for (name, address) in &plan.locations {
        loc_ids.push((
            *name,
            add_location(tx, &admin, &ctx, name, address, now).await?,
        ));
    }
    let mut vt_ids = Vec::new();
    for input in &plan.visit_types {
        let new = NewVisitType::parse(input)?;
        vt_ids.push((
            input.name,
            add_visit_type(tx, &admin, &ctx, &new, now).await?,
        ));
    }
    let find = |list: &[(&str, VisitTypeId)], name: &str| {
        list.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
    };
    let mut prov_ids = Vec::new();
    for (name, offered) in &plan.providers {
        let types: Vec<VisitTypeId> = offered
            .iter()
            .map(|n| find(&vt_ids, n).ok_or(SetupError::UnknownVisitType))
            .collect::<Result<_, _>>()?;
        prov_ids.push((
            *name,
            add_provider(tx, &admin, &ctx, name, &types, now).await?,
        ));
    }
    for (provider, location, days, start, end) in &plan.hours {
        let p = prov_ids
            .iter()
            .find(|(n, _)| n == provider)
            .map(|(_, id)| *id)
            .ok_or(SetupError::UnknownProvider)?;
        let l = loc_ids
            .iter()
            .find(|(n, _)| n == location)
            .map(|(_, id)| *id)
            .ok_or(SetupError::UnknownLocation)?;
        for d in days {
            let w = NewWindow::parse(p, l, &d.to_string(), start, end)?;
            add_window(tx, &admin, &ctx, &w, now).await?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_parse_within_a_day() {
        assert_eq!(parse_clock("9:30"), Some(570));
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("24:01"), None);
        assert_eq!(parse_clock("12:60"), None);
        assert_eq!(parse_clock("noon"), None);
        assert_eq!(minute_label(570), "09:30");
    }

    #[test]
    fn a_video_visit_needs_an_https_address() {
        let mut i = VisitTypeInput {
            name: "Video check-in",
            duration_minutes: "20",
            self_bookable: true,
            audience: "any",
            modality: "video",
            video_base_url: "http://meet.example",
        };
        assert!(NewVisitType::parse(&i).is_err());
        i.video_base_url = "https://meet.example/sunrise/";
        let v = NewVisitType::parse(&i).unwrap();
        assert_eq!(
            v.video_base_url.as_deref(),
            Some("https://meet.example/sunrise")
        );
        i.duration_minutes = "3";
        assert!(NewVisitType::parse(&i).is_err());
    }

    #[test]
    fn windows_must_end_after_they_start() {
        let (p, l) = (ProviderId::new(), LocationId::new());
        assert!(NewWindow::parse(p, l, "1", "09:00", "17:00").is_ok());
        assert!(NewWindow::parse(p, l, "1", "17:00", "09:00").is_err());
        assert!(NewWindow::parse(p, l, "8", "09:00", "17:00").is_err());
    }
}
