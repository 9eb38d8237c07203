//! Change windows: `"Mon-Fri 09:00-17:00 UTC"` — when a plugin may write. Pure: parsing at
//! policy load (so an unknown format is refused with its line, never read as "always" or
//! "never"), matching against a given instant, and the next opening for the refusal's advice.
//!
//! Format: `<days> <HH:MM>-<HH:MM> <zone>`. Days are names (`Mon` … `Sun`), ranges (`Mon-Fri`,
//! `Fri-Mon` wraps) and lists of both (`Mon,Wed,Fri-Sat`). The end may be `24:00`; an end at or
//! before the start spans midnight (the days name the day the window opens). The zone is `UTC`
//! or a fixed offset (`+02:00`, `-05:30`): no time-zone names, so no daylight-saving rule can
//! shift a window without the operator seeing it.

use std::fmt;

use time::{Duration, OffsetDateTime, UtcOffset, Weekday};

const DAYS: [(&str, Weekday); 7] = [
    ("Mon", Weekday::Monday),
    ("Tue", Weekday::Tuesday),
    ("Wed", Weekday::Wednesday),
    ("Thu", Weekday::Thursday),
    ("Fri", Weekday::Friday),
    ("Sat", Weekday::Saturday),
    ("Sun", Weekday::Sunday),
];

/// The advice every parse error ends with.
const FORMAT: &str = "write it as \"<days> <HH:MM>-<HH:MM> <zone>\", e.g. \"Mon-Fri 09:00-17:00 UTC\" or \"Sat,Sun 10:00-12:00 +02:00\" (days Mon..Sun, ranges and lists; zone UTC or a fixed offset ±HH:MM)";

/// One change window, as written in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    text: String,
    /// Bit `n` set: the window opens on weekday `n` (Monday = 0), in the window's zone.
    days: u8,
    /// Minutes after midnight.
    start: u16,
    /// Minutes after midnight, up to 1440; at or before `start` the window spans midnight.
    end: u16,
    offset: UtcOffset,
}

impl Window {
    /// Parses one window; the error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<Window, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days, hours, zone] = parts[..] else {
            return Err(format!(
                "'{text}' is not a change window: it needs three parts (days, hours, zone); {FORMAT}"
            ));
        };
        let days = parse_days(days).map_err(|e| format!("'{text}': {e}; {FORMAT}"))?;
        let (start, end) = hours
            .split_once('-')
            .ok_or_else(|| format!("'{text}': '{hours}' is not a time range; {FORMAT}"))?;
        let start = parse_time(start, false).map_err(|e| format!("'{text}': {e}; {FORMAT}"))?;
        let end = parse_time(end, true).map_err(|e| format!("'{text}': {e}; {FORMAT}"))?;
        if start == end {
            return Err(format!(
                "'{text}': the window opens and closes at the same minute; for a whole day write 00:00-24:00"
            ));
        }
        let offset = parse_zone(zone).map_err(|e| format!("'{text}': {e}; {FORMAT}"))?;
        Ok(Window {
            text: text.to_string(),
            days,
            start,
            end,
            offset,
        })
    }

    /// The window as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn opens_on(&self, day: Weekday) -> bool {
        self.days & (1 << day.number_days_from_monday()) != 0
    }

    /// Whether `now` falls inside the window.
    pub fn contains(&self, now: OffsetDateTime) -> bool {
        let local = now.to_offset(self.offset);
        let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
        let today = local.weekday();
        if self.start < self.end {
            self.opens_on(today) && minute >= self.start && minute < self.end
        } else {
            (self.opens_on(today) && minute >= self.start)
                || (self.opens_on(today.previous()) && minute < self.end)
        }
    }

    /// The first opening of the window after `now` (within the next eight days).
    pub fn next_opening(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let local = now.to_offset(self.offset);
        let midnight = local.replace_time(time::Time::MIDNIGHT);
        (0..=8)
            .map(|d| midnight + Duration::days(d))
            .filter(|day| self.opens_on(day.weekday()))
            .map(|day| day + Duration::minutes(i64::from(self.start)))
            .find(|open| *open > now)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether `now` is inside one of `windows` (no windows: always).
pub fn open(windows: &[Window], now: OffsetDateTime) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.contains(now))
}

/// The earliest opening of any of `windows` after `now`, with the window it belongs to.
pub fn next_opening(windows: &[Window], now: OffsetDateTime) -> Option<(OffsetDateTime, &Window)> {
    windows
        .iter()
        .filter_map(|w| w.next_opening(now).map(|t| (t, w)))
        .min_by_key(|(t, _)| *t)
}

/// An instant as refusals show it: weekday, date and time in the window's own zone.
pub fn show(t: OffsetDateTime) -> String {
    let offset = t.offset();
    let zone = if offset.is_utc() {
        "UTC".to_string()
    } else {
        let (h, m, _) = offset.as_hms();
        format!(
            "{}{:02}:{:02}",
            if offset.is_negative() { '-' } else { '+' },
            h.abs(),
            m.abs()
        )
    };
    let day = DAYS[usize::from(t.weekday().number_days_from_monday())].0;
    format!(
        "{day} {:04}-{:02}-{:02} {:02}:{:02} {zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn day(name: &str) -> Result<Weekday, String> {
    DAYS.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, d)| *d)
        .ok_or_else(|| format!("'{name}' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_days(text: &str) -> Result<u8, String> {
    let mut bits = 0u8;
    for item in text.split(',') {
        match item.split_once('-') {
            None => bits |= 1 << day(item)?.number_days_from_monday(),
            Some((from, to)) => {
                let (mut d, to) = (day(from)?, day(to)?);
                loop {
                    bits |= 1 << d.number_days_from_monday();
                    if d == to {
                        break;
                    }
                    d = d.next();
                }
            }
        }
    }
    Ok(bits)
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn parse_time(text: &str, end: bool) -> Result<u16, String> {
    let bad = || format!("'{text}' is not a time (HH:MM, 00:00 to 23:59, or 24:00 as an end)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    match (h, m) {
        (24, 0) if end => Ok(1440),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

fn parse_zone(text: &str) -> Result<UtcOffset, String> {
    if text == "UTC" {
        return Ok(UtcOffset::UTC);
    }
    let bad = || {
        format!(
            "'{text}' is not a zone: write UTC or a fixed offset such as +02:00 (time-zone names are not accepted)"
        )
    };
    let sign: i8 = match text.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let (h, m) = text[1..].split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `"2026-12-02 09:00 UTC"` or `"… +02:00"` as an instant.
    fn at(text: &str) -> OffsetDateTime {
        let (dt, zone) = text.rsplit_once(' ').unwrap();
        let zone = if zone == "UTC" { "Z" } else { zone };
        let rfc = format!("{}:00{zone}", dt.replace(' ', "T"));
        OffsetDateTime::parse(&rfc, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn office_hours_in_utc() {
        let w = Window::parse("Mon-Fri 09:00-17:00 UTC").unwrap();
        // 2026-12-02 is a Wednesday.
        assert!(w.contains(at("2026-12-02 09:00 UTC")));
        assert!(w.contains(at("2026-12-02 16:59 UTC")));
        assert!(!w.contains(at("2026-12-02 17:00 UTC")));
        assert!(!w.contains(at("2026-12-02 08:59 UTC")));
        assert!(!w.contains(at("2026-12-05 12:00 UTC")), "Saturday");
        // Another offset of the same instant is the same answer.
        assert!(w.contains(at("2026-12-02 11:00 +02:00")));
    }

    #[test]
    fn a_fixed_offset_shifts_the_window() {
        let w = Window::parse("Mon-Fri 09:00-17:00 +02:00").unwrap();
        assert!(!w.contains(at("2026-12-02 15:30 UTC")), "17:30 at +02:00");
        assert!(w.contains(at("2026-12-02 07:00 UTC")), "09:00 at +02:00");
        let w = Window::parse("Mon 00:00-01:00 -05:30").unwrap();
        assert!(w.contains(at("2026-11-30 05:45 UTC")));
    }

    #[test]
    fn lists_wrapping_ranges_and_midnight() {
        let w = Window::parse("Fri-Mon,Wed 22:00-02:00 UTC").unwrap();
        assert!(w.contains(at("2026-12-04 23:00 UTC")), "Friday night");
        assert!(
            w.contains(at("2026-12-08 01:00 UTC")),
            "Tuesday early, opened Monday"
        );
        assert!(
            !w.contains(at("2026-12-09 01:00 UTC")),
            "Wednesday early, Tuesday is not listed"
        );
        assert!(
            w.contains(at("2026-12-10 01:00 UTC")),
            "Thursday early, opened Wednesday"
        );
        let whole = Window::parse("Sun 00:00-24:00 UTC").unwrap();
        assert!(whole.contains(at("2026-12-06 23:59 UTC")));
        assert!(!whole.contains(at("2026-12-07 00:00 UTC")));
    }

    #[test]
    fn no_windows_is_always_open() {
        assert!(open(&[], at("2026-12-05 03:00 UTC")));
    }

    #[test]
    fn the_next_opening_is_named() {
        let ws = [
            Window::parse("Mon-Fri 09:00-17:00 UTC").unwrap(),
            Window::parse("Sun 20:00-21:00 +01:00").unwrap(),
        ];
        let sat = at("2026-12-05 12:00 UTC");
        assert!(!open(&ws, sat));
        let (t, w) = next_opening(&ws, sat).unwrap();
        assert_eq!(w.as_str(), "Sun 20:00-21:00 +01:00");
        assert_eq!(show(t), "Sun 2026-12-06 20:00 +01:00");
        let (t, _) = next_opening(&ws, at("2026-12-02 18:00 UTC")).unwrap();
        assert_eq!(show(t), "Thu 2026-12-03 09:00 UTC");
    }

    #[test]
    fn unknown_formats_are_refused_with_the_format() {
        for bad in [
            "weekdays 09:00-17:00 UTC",
            "Mon-Fri 9:00-17:00 UTC",
            "Mon-Fri 09:00-17:00 CET",
            "Mon-Fri 09:00-17:00 Europe/Berlin",
            "Mon-Fri 09:00-17:00",
            "Mon-Fri 09:00 UTC",
            "Mon-Fri 09:00-25:00 UTC",
            "Mon-Fri 24:00-17:00 UTC",
            "Mon-Fri 09:00-09:00 UTC",
            "Mon-Fri 09:00-17:00 +2",
            "",
        ] {
            let e = Window::parse(bad).unwrap_err();
            assert!(e.contains("e.g.") || e.contains("24:00"), "{bad}: {e}");
        }
    }
}
