//! Appointment reminders. Booking or moving a visit schedules one delayed job per reminder
//! offset and channel (by default 72 and 24 hours before, by email and SMS); the job re-reads
//! the visit when it fires, so a cancelled or moved visit's old reminders send nothing.
//!
//! Timing rules (pure, tested below):
//! - "N hours before" is counted on the clinic's wall clock, so a reminder for a 9:00 visit goes
//!   out at 9:00 a day or three earlier even across a daylight-saving change, and only once.
//! - No SMS in quiet hours, 21:00–08:00 clinic time: it moves to the next 08:00.
//! - A reminder that would be due already, or not before the visit itself, is not scheduled.

use chrono::{DateTime, Duration, LocalResult, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use portal_tenants::TenantTx;

use super::setup::SetupError;
use crate::audit::{self, Action, AuditContext, AuditEvent};
use crate::identity::scope::AdminScope;
use crate::ids::{AppointmentId, PatientId};
use crate::jobs::{Channel, Job};

/// Quiet hours for SMS, clinic time: from 21:00 to 08:00.
pub const QUIET_FROM: u32 = 21;
pub const QUIET_UNTIL: u32 = 8;

/// "21:00 and 08:00", for the pages that explain quiet hours.
pub fn quiet_hours_label() -> String {
    format!("{QUIET_FROM}:00 and {QUIET_UNTIL:02}:00")
}

/// The clinic's reminder schedule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReminderRules {
    /// Hours before the visit, e.g. `[72, 24]`.
    pub hours: Vec<i32>,
    pub email: bool,
    pub sms: bool,
}

impl Default for ReminderRules {
    fn default() -> Self {
        Self {
            hours: vec![72, 24],
            email: true,
            sms: true,
        }
    }
}

/// At most this many reminders per channel, and none earlier than 30 days before the visit.
const MAX_OFFSETS: usize = 4;
const MAX_HOURS: i32 = 720;

impl ReminderRules {
    /// Reads the administrator's form: hours before the visit as a list ("72, 24"), and the
    /// channels. The list is kept largest first, without repeats.
    pub fn parse(hours: &str, email: bool, sms: bool) -> Result<Self, SetupError> {
        let mut list = Vec::new();
        for part in hours.split([',', ' ']).filter(|p| !p.trim().is_empty()) {
            let n = part
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=MAX_HOURS).contains(n))
                .ok_or(SetupError::Invalid(
                    "Reminder times are whole numbers of hours before the visit, 1 to 720, separated by commas.",
                ))?;
            if !list.contains(&n) {
                list.push(n);
            }
        }
        if list.len() > MAX_OFFSETS {
            return Err(SetupError::Invalid(
                "At most four reminder times per visit.",
            ));
        }
        if list.is_empty() && (email || sms) {
            return Err(SetupError::Invalid(
                "Give at least one reminder time, or turn off both email and text reminders.",
            ));
        }
        list.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Self {
            hours: list,
            email,
            sms,
        })
    }

    /// "72 and 24 hours before" for the pages.
    pub fn hours_label(&self) -> String {
        self.hours
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The instant a wall-clock time in `tz` names; a time skipped by a spring-forward jump moves
/// to the first valid minute after it, a repeated one means its first occurrence.
fn resolve(tz: Tz, naive: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    for shift in 0..=2 {
        match tz.from_local_datetime(&(naive + Duration::hours(shift))) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            LocalResult::None => {}
        }
    }
    None
}

/// When a reminder `hours` before `starts_at` goes out by `channel`, or `None` when it should
/// not be sent at all (due already at `now`, or not before the visit).
pub fn due_at(
    starts_at: DateTime<Utc>,
    hours: i32,
    channel: Channel,
    tz: Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let local = starts_at.with_timezone(&tz).naive_local() - Duration::hours(i64::from(hours));
    let local = match channel {
        Channel::Sms if local.hour() >= QUIET_FROM => {
            (local.date() + Duration::days(1)).and_time(NaiveTime::from_hms_opt(QUIET_UNTIL, 0, 0)?)
        }
        Channel::Sms if local.hour() < QUIET_UNTIL => local
            .date()
            .and_time(NaiveTime::from_hms_opt(QUIET_UNTIL, 0, 0)?),
        _ => local,
    };
    let due = resolve(tz, local)?;
    (due > now && due < starts_at).then_some(due)
}

/// When a text about to go out at `now` must wait for quiet hours to end: the next 08:00 in
/// the clinic's zone, or `None` outside quiet hours. Checked again at sending, because a text
/// can be late (retries, a suspended clinic reopening) and still must not wake anyone.
pub fn quiet_until(now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&tz).naive_local();
    let morning = NaiveTime::from_hms_opt(QUIET_UNTIL, 0, 0)?;
    let day = if local.hour() >= QUIET_FROM {
        local.date() + Duration::days(1)
    } else if local.hour() < QUIET_UNTIL {
        local.date()
    } else {
        return None;
    };
    resolve(tz, day.and_time(morning))
}

pub async fn rules(tx: &mut TenantTx) -> Result<ReminderRules, sqlx::Error> {
    let r = sqlx::query!("SELECT reminder_hours, reminder_email, reminder_sms FROM booking_rules")
        .fetch_one(tx.conn())
        .await?;
    Ok(ReminderRules {
        hours: r.reminder_hours,
        email: r.reminder_email,
        sms: r.reminder_sms,
    })
}

/// Changes the clinic's reminder schedule. Visits booked or moved from now on follow it;
/// reminders already scheduled keep their times.
pub async fn set_rules(
    tx: &mut TenantTx,
    _admin: &AdminScope,
    ctx: &AuditContext,
    rules: &ReminderRules,
    now: DateTime<Utc>,
) -> Result<(), SetupError> {
    sqlx::query!(
        "UPDATE booking_rules SET reminder_hours = $1, reminder_email = $2, reminder_sms = $3,
                updated_at = $4",
        &rules.hours,
        rules.email,
        rules.sms,
        now
    )
    .execute(tx.conn())
    .await?;
    audit::record(
        tx,
        ctx,
        now,
        AuditEvent::new(Action::ReminderRulesUpdate, "booking_rules"),
    )
    .await?;
    Ok(())
}

/// Every reminder job of a booked or moved visit (version `version`) under the clinic's
/// `rules`, each with the instant it is due; the caller queues them with the change itself.
pub(crate) fn plan(
    rules: &ReminderRules,
    appointment_id: AppointmentId,
    version: i32,
    starts_at: DateTime<Utc>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<(Job, Option<DateTime<Utc>>)> {
    let channels = [(Channel::Email, rules.email), (Channel::Sms, rules.sms)];
    let mut out = Vec::new();
    for &hours in &rules.hours {
        for (channel, on) in channels {
            if !on {
                continue;
            }
            let Some(due) = due_at(starts_at, hours, channel, tz, now) else {
                continue;
            };
            let job = Job::Reminder {
                appointment_id,
                version,
                channel,
                hours_before: hours,
            };
            out.push((job, Some(due)));
        }
    }
    out
}

/// A text message from a patient's phone, as the SMS webhook hands it over. Unknown numbers
/// change nothing and learn nothing (every reply reads the same for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Stop,
    Start,
    Confirm,
    Other,
}

impl Reply {
    /// The carriers' standard keywords (case and surrounding spaces ignored).
    pub fn parse(body: &str) -> Self {
        match body.trim().to_ascii_uppercase().as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Reply::Stop,
            "START" | "UNSTOP" | "YES" => Reply::Start,
            "C" | "CONFIRM" => Reply::Confirm,
            _ => Reply::Other,
        }
    }
}

/// What a reply did: for the answer text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    OptedOut,
    OptedIn,
    /// The next visit (its start) is now confirmed.
    Confirmed(DateTime<Utc>),
    NothingToConfirm,
    /// Several patients confirmed this number (a family phone): a text cannot say whose visit.
    Ambiguous,
    Unknown,
}

/// Applies a reply from `phone` (E.164) within the clinic it was routed to. It acts only on
/// patients who confirmed that number. STOP and START themselves are facts about the number,
/// recorded by the webhook in the control plane; here they are audited for each such patient.
/// CONFIRM confirms the next booked visit of the one patient with that number, and nothing
/// when several share it. Audited as the clinic itself acting on the patient's message.
pub async fn apply_reply(
    tx: &mut TenantTx,
    phone: &str,
    reply: Reply,
    now: DateTime<Utc>,
) -> Result<ReplyOutcome, sqlx::Error> {
    let patients: Vec<PatientId> = sqlx::query_scalar!(
        "SELECT id FROM patients WHERE phone = $1 AND phone_verified_at IS NOT NULL",
        phone
    )
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(PatientId::from_uuid)
    .collect();
    if patients.is_empty() {
        // STOP and START were recorded for the number by the webhook; say so.
        return Ok(match reply {
            Reply::Stop => ReplyOutcome::OptedOut,
            Reply::Start => ReplyOutcome::OptedIn,
            _ => ReplyOutcome::Unknown,
        });
    }
    let ids: Vec<uuid::Uuid> = patients.iter().map(PatientId::as_uuid).collect();
    let ctx = AuditContext::default();
    let outcome = match reply {
        Reply::Stop | Reply::Start => {
            let stop = reply == Reply::Stop;
            if !stop {
                // A STOP recorded per patient before STOP moved to the number (still honoured
                // until the patient says START or turns texts on again).
                sqlx::query!(
                    "UPDATE patients SET sms_opted_out_at = NULL WHERE id = ANY($1)",
                    &ids
                )
                .execute(tx.conn())
                .await?;
            }
            for p in &patients {
                let action = if stop {
                    Action::SmsOptOut
                } else {
                    Action::SmsOptIn
                };
                audit::record(
                    tx,
                    &ctx,
                    now,
                    AuditEvent::new(action, "patient").resource(p).patient(*p),
                )
                .await?;
            }
            if stop {
                ReplyOutcome::OptedOut
            } else {
                ReplyOutcome::OptedIn
            }
        }
        Reply::Confirm if patients.len() > 1 => ReplyOutcome::Ambiguous,
        Reply::Confirm => {
            let next = sqlx::query!(
                "UPDATE appointments SET confirmed_at = $2,
                        change_seq = nextval('appointment_changes'), updated_at = $2
                 WHERE id = (SELECT id FROM appointments
                             WHERE patient_id = ANY($1) AND status = 'booked' AND starts_at > $2
                             ORDER BY starts_at LIMIT 1)
                 RETURNING id, patient_id, starts_at",
                &ids,
                now
            )
            .fetch_optional(tx.conn())
            .await?;
            match next {
                Some(r) => {
                    audit::record(
                        tx,
                        &ctx,
                        now,
                        AuditEvent::new(Action::AppointmentConfirm, "appointment")
                            .resource(AppointmentId::from_uuid(r.id))
                            .patient(PatientId::from_uuid(r.patient_id)),
                    )
                    .await?;
                    ReplyOutcome::Confirmed(r.starts_at)
                }
                None => ReplyOutcome::NothingToConfirm,
            }
        }
        Reply::Other => ReplyOutcome::Unknown,
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NY: Tz = chrono_tz::America::New_York;

    fn ny(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        NY.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn long_ago() -> DateTime<Utc> {
        ny(2026, 1, 1, 0, 0)
    }

    #[test]
    fn reminders_go_out_at_the_visits_wall_clock_time_days_before() {
        let visit = ny(2026, 11, 12, 9, 30);
        assert_eq!(
            due_at(visit, 72, Channel::Email, NY, long_ago()),
            Some(ny(2026, 11, 9, 9, 30))
        );
        assert_eq!(
            due_at(visit, 24, Channel::Sms, NY, long_ago()),
            Some(ny(2026, 11, 11, 9, 30))
        );
    }

    #[test]
    fn a_daylight_saving_change_does_not_move_a_reminder_off_the_visits_clock_time() {
        // DST ends Sunday 1 Nov 2026. A Monday 9:00 visit's 72-hour reminder is Friday 9:00
        // (EDT), 73 real hours earlier; its 24-hour reminder Sunday 9:00 (EST).
        let visit = ny(2026, 11, 2, 9, 0);
        let friday = due_at(visit, 72, Channel::Email, NY, long_ago()).unwrap();
        assert_eq!(friday, ny(2026, 10, 30, 9, 0));
        assert_eq!((visit - friday).num_hours(), 73);
        assert_eq!(
            due_at(visit, 24, Channel::Email, NY, long_ago()),
            Some(ny(2026, 11, 1, 9, 0))
        );
        // Spring forward (8 Mar 2026): 2:30 does not exist; the reminder moves to 3:30, once.
        let visit = ny(2026, 3, 9, 2, 30);
        let due = due_at(visit, 24, Channel::Email, NY, long_ago()).unwrap();
        assert_eq!(due, ny(2026, 3, 8, 3, 30));
        // Fall back (1 Nov 2026): 1:30 happens twice; the reminder takes the first, once.
        let visit = ny(2026, 11, 2, 1, 30);
        let due = due_at(visit, 24, Channel::Email, NY, long_ago()).unwrap();
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0).unwrap());
    }

    #[test]
    fn sms_in_quiet_hours_moves_to_eight_in_the_morning() {
        // An 07:30 visit: 24 hours before is 07:30, quiet → 08:00 the same (previous) day.
        let visit = ny(2026, 11, 12, 7, 30);
        assert_eq!(
            due_at(visit, 24, Channel::Sms, NY, long_ago()),
            Some(ny(2026, 11, 11, 8, 0))
        );
        // Email is not held back.
        assert_eq!(
            due_at(visit, 24, Channel::Email, NY, long_ago()),
            Some(ny(2026, 11, 11, 7, 30))
        );
        // A 22:00 evening visit: 21:… and later moves to 08:00 the next morning.
        let visit = ny(2026, 11, 12, 22, 0);
        assert_eq!(
            due_at(visit, 72, Channel::Sms, NY, long_ago()),
            Some(ny(2026, 11, 10, 8, 0))
        );
        // If the next 08:00 is not before the visit, no SMS at all.
        let visit = ny(2026, 11, 12, 7, 45);
        assert_eq!(due_at(visit, 1, Channel::Sms, NY, long_ago()), None);
    }

    #[test]
    fn a_late_text_waits_for_the_morning() {
        let tz = chrono_tz::America::New_York;
        // 22:15 and 03:00 New York time wait for 08:00; 12:00 goes now.
        assert_eq!(
            quiet_until(ny(2026, 11, 3, 22, 15), tz),
            Some(ny(2026, 11, 4, 8, 0))
        );
        assert_eq!(
            quiet_until(ny(2026, 11, 4, 3, 0), tz),
            Some(ny(2026, 11, 4, 8, 0))
        );
        assert_eq!(quiet_until(ny(2026, 11, 4, 12, 0), tz), None);
    }

    #[test]
    fn replies_understand_the_carriers_keywords() {
        assert_eq!(Reply::parse(" stop "), Reply::Stop);
        assert_eq!(Reply::parse("UNSUBSCRIBE"), Reply::Stop);
        assert_eq!(Reply::parse("c"), Reply::Confirm);
        assert_eq!(Reply::parse("Confirm"), Reply::Confirm);
        assert_eq!(Reply::parse("start"), Reply::Start);
        assert_eq!(Reply::parse("what time is it"), Reply::Other);
    }

    #[test]
    fn reminders_already_due_are_not_scheduled() {
        let visit = ny(2026, 11, 12, 9, 0);
        let now = ny(2026, 11, 10, 12, 0);
        assert_eq!(due_at(visit, 72, Channel::Email, NY, now), None);
        assert_eq!(
            due_at(visit, 24, Channel::Email, NY, now),
            Some(ny(2026, 11, 11, 9, 0))
        );
    }
}
