//! Open slots: weekly hours laid out over real dates in the clinic's time zone, cut into
//! visit-length pieces, minus time off and booked appointments. Pure, so the daylight-saving
//! and edge cases are tested without a database.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::setup::Window;
use crate::ids::{LocationId, ProviderId};

/// A time a visit could start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Slot {
    pub provider_id: ProviderId,
    pub location_id: LocationId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Time that cannot be booked: an appointment or time off of one provider, or a closure of a
/// location (no provider) or of the whole clinic (neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub provider_id: Option<ProviderId>,
    pub location_id: Option<LocationId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Busy {
    fn blocks(&self, s: &Slot) -> bool {
        self.provider_id.is_none_or(|p| p == s.provider_id)
            && self.location_id.is_none_or(|l| l == s.location_id)
            && self.starts_at < s.ends_at
            && s.starts_at < self.ends_at
    }
}

/// What to lay out: dates `from..=to` (local), starts within `[earliest, latest]`.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

/// The local wall-clock time `minute` minutes into `date`, as an instant. A time skipped by a
/// daylight-saving jump does not exist (`None`); a repeated one means its first occurrence.
fn instant(tz: Tz, date: NaiveDate, minute: u32) -> Option<DateTime<Utc>> {
    let naive = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minute));
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// Every open slot of `duration` in `windows` over `span`, sorted by start, then provider.
/// Slots start at the window's start and every `duration` after, and end within the window.
pub fn open_slots(
    tz: Tz,
    windows: &[Window],
    busy: &[Busy],
    duration: Duration,
    span: Span,
) -> Vec<Slot> {
    let mut out = Vec::new();
    let step = duration.num_minutes().max(1) as u32;
    let mut date = span.from;
    while date <= span.to {
        let weekday = date.weekday().number_from_monday() as u8;
        for w in windows.iter().filter(|w| w.weekday == weekday) {
            let mut m = u32::from(w.start_minute);
            while m + step <= u32::from(w.end_minute) {
                let at = m;
                m += step;
                let Some(starts_at) = instant(tz, date, at) else {
                    continue;
                };
                let slot = Slot {
                    provider_id: w.provider_id,
                    location_id: w.location_id,
                    starts_at,
                    ends_at: starts_at + duration,
                };
                if starts_at < span.earliest || starts_at > span.latest {
                    continue;
                }
                if busy.iter().any(|b| b.blocks(&slot)) {
                    continue;
                }
                out.push(slot);
            }
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    out.sort_by_key(|s| (s.starts_at, s.provider_id, s.location_id));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AvailabilityId;

    fn window(p: ProviderId, l: LocationId, weekday: u8, start: u16, end: u16) -> Window {
        Window {
            id: AvailabilityId::new(),
            provider_id: p,
            location_id: l,
            weekday,
            start_minute: start,
            end_minute: end,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn all_of(from: NaiveDate, to: NaiveDate) -> Span {
        Span {
            from,
            to,
            earliest: DateTime::<Utc>::MIN_UTC,
            latest: DateTime::<Utc>::MAX_UTC,
        }
    }

    const NY: Tz = chrono_tz::America::New_York;

    #[test]
    fn a_morning_is_cut_into_visit_length_slots_in_local_time() {
        let (p, l) = (ProviderId::new(), LocationId::new());
        // Monday 2 Nov 2026, 9:00–11:00 New York (EST, UTC−5), 30-minute visits.
        let slots = open_slots(
            NY,
            &[window(p, l, 1, 540, 660)],
            &[],
            Duration::minutes(30),
            all_of(day(2026, 11, 2), day(2026, 11, 2)),
        );
        let starts: Vec<String> = slots.iter().map(|s| s.starts_at.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2026-11-02T14:00:00+00:00",
                "2026-11-02T14:30:00+00:00",
                "2026-11-02T15:00:00+00:00",
                "2026-11-02T15:30:00+00:00"
            ]
        );
    }

    #[test]
    fn hours_keep_their_local_time_across_a_daylight_saving_change() {
        let (p, l) = (ProviderId::new(), LocationId::new());
        // Sundays 9:00–9:30: 25 Oct 2026 is EDT (UTC−4), 8 Nov 2026 is EST (UTC−5).
        let slots = open_slots(
            NY,
            &[window(p, l, 7, 540, 570)],
            &[],
            Duration::minutes(30),
            all_of(day(2026, 10, 25), day(2026, 11, 8)),
        );
        let hours: Vec<u32> = slots
            .iter()
            .map(|s| chrono::Timelike::hour(&s.starts_at))
            .collect();
        assert_eq!(hours, [13, 14, 14]);
    }

    #[test]
    fn a_time_skipped_by_the_spring_jump_is_not_offered_and_a_repeated_one_once() {
        let (p, l) = (ProviderId::new(), LocationId::new());
        // 8 Mar 2026: 2:00–3:00 does not exist in New York. 1 Nov 2026: 1:00–2:00 happens twice.
        let w = [window(p, l, 7, 60, 240)];
        let spring = open_slots(
            NY,
            &w,
            &[],
            Duration::minutes(60),
            all_of(day(2026, 3, 8), day(2026, 3, 8)),
        );
        assert_eq!(spring.len(), 2, "1:00 and 3:00, not 2:00: {spring:?}");
        let autumn = open_slots(
            NY,
            &w,
            &[],
            Duration::minutes(60),
            all_of(day(2026, 11, 1), day(2026, 11, 1)),
        );
        assert_eq!(autumn.len(), 3);
        let mut starts: Vec<_> = autumn.iter().map(|s| s.starts_at).collect();
        starts.dedup();
        assert_eq!(starts.len(), 3, "no slot offered twice");
    }

    #[test]
    fn appointments_time_off_and_closures_remove_slots() {
        let (p, q, l) = (ProviderId::new(), ProviderId::new(), LocationId::new());
        let w = [window(p, l, 1, 540, 660), window(q, l, 1, 540, 600)];
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, 2, h, m, 0).unwrap();
        let busy = [
            // p's 9:30 is booked.
            Busy {
                provider_id: Some(p),
                location_id: Some(l),
                starts_at: at(14, 30),
                ends_at: at(15, 0),
            },
            // The whole clinic closes from 10:30.
            Busy {
                provider_id: None,
                location_id: None,
                starts_at: at(15, 30),
                ends_at: at(23, 0),
            },
        ];
        let slots = open_slots(
            NY,
            &w,
            &busy,
            Duration::minutes(30),
            all_of(day(2026, 11, 2), day(2026, 11, 2)),
        );
        let got: Vec<(bool, String)> = slots
            .iter()
            .map(|s| (s.provider_id == p, s.starts_at.format("%H:%M").to_string()))
            .collect();
        // p: 9:00 free, 9:30 booked, 10:00 free, 10:30 closed; q: 9:00 and 9:30 free.
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got.contains(&(true, "14:00".to_owned())));
        assert!(!got.contains(&(true, "14:30".to_owned())), "booked");
        assert!(
            got.contains(&(false, "14:30".to_owned())),
            "other provider free"
        );
        assert!(!got.iter().any(|(_, t)| t.as_str() >= "15:30"), "closed");
    }

    #[test]
    fn notice_and_horizon_bound_the_offer() {
        let (p, l) = (ProviderId::new(), LocationId::new());
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
        let span = Span {
            from: day(2026, 11, 2),
            to: day(2026, 11, 9),
            earliest: at(2, 15),
            latest: at(9, 14),
        };
        let slots = open_slots(
            NY,
            &[window(p, l, 1, 540, 660)],
            &[],
            Duration::minutes(60),
            span,
        );
        let starts: Vec<_> = slots.iter().map(|s| s.starts_at).collect();
        assert_eq!(starts, [at(2, 15), at(9, 14)]);
    }
}
