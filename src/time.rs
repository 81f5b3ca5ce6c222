//! RFC 3339 timestamps (`2026-11-28T23:31:30Z`, `2026-11-28T23:31:30.123+09:00`) without a date
//! crate: credential endpoints, AWS STS and IAM Credentials all use this format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
  let y = if m <= 2 { y - 1 } else { y };
  let era = if y >= 0 { y } else { y - 399 } / 400;
  let yoe = y - era * 400;
  let mp = (m as i64 + 9) % 12;
  let doy = (153 * mp + 2) / 5 + d as i64 - 1;
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
  let z = z + 719_468;
  let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
  let doe = z - era * 146_097;
  let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
  let y = yoe + era * 400;
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  let mp = (5 * doy + 2) / 153;
  let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
  let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
  (if m <= 2 { y + 1 } else { y }, m, d)
}

fn num(s: &str) -> Option<u32> {
  if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
    return None;
  }
  s.parse().ok()
}

/// Parse an RFC 3339 date-time. Returns `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
  let s = s.trim();
  if s.len() < 20 || !s.is_ascii() {
    return None;
  }
  let b = s.as_bytes();
  if !matches!(
    (b.get(4), b.get(7), b.get(10), b.get(13), b.get(16)),
    (Some(b'-'), Some(b'-'), Some(b'T' | b't' | b' '), Some(b':'), Some(b':'))
  ) {
    return None;
  }
  let (year, month, day) = (num(&s[0..4])? as i64, num(&s[5..7])?, num(&s[8..10])?);
  let (hour, min, sec) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
  if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
    return None;
  }
  let mut rest = &s[19..];
  let mut nanos = 0u32;
  if let Some(frac) = rest.strip_prefix('.') {
    let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
      return None;
    }
    let mut padded: String = frac[..digits.min(9)].to_string();
    while padded.len() < 9 {
      padded.push('0');
    }
    nanos = num(&padded)?;
    rest = &frac[digits..];
  }
  let offset_secs: i64 = match rest {
    "Z" | "z" => 0,
    _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
      let v = (num(&rest[1..3])? * 3600 + num(&rest[4..6])? * 60) as i64;
      if rest.starts_with('-') {
        -v
      } else {
        v
      }
    }
    _ => return None,
  };
  let secs = days_from_civil(year, month, day) * 86_400 + (hour * 3600 + min * 60 + sec) as i64 - offset_secs;
  if secs < 0 {
    return None;
  }
  Some(UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

/// Format as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
pub fn format_rfc3339(t: SystemTime) -> String {
  let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
  let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
  let rem = secs.rem_euclid(86_400);
  format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
  }

  #[test]
  fn parses_known_instants() {
    assert_eq!(secs(parse_rfc3339("2009-02-13T23:31:30Z").unwrap()), 1_234_567_890);
    assert_eq!(secs(parse_rfc3339("2009-02-14T08:31:30+09:00").unwrap()), 1_234_567_890);
    assert_eq!(secs(parse_rfc3339("2009-02-13T22:31:30.999-01:00").unwrap()), 1_234_567_890);
    assert_eq!(secs(parse_rfc3339("1970-01-01T00:00:00Z").unwrap()), 0);
    assert_eq!(secs(parse_rfc3339("2024-02-29T12:00:00Z").unwrap()), 1_709_208_000);
  }

  #[test]
  fn rejects_garbage() {
    for s in [
      "",
      "2009-02-13",
      "2009-02-13T23:31:30",
      "2009-13-13T23:31:30Z",
      "2009-02-13T23:31:30+0900",
      "not a date at all!!",
      "2009-02-13T23:31:30.Z",
      "２００９-02-13T23:31:30Z",
    ] {
      assert!(parse_rfc3339(s).is_none(), "{s}");
    }
  }

  #[test]
  fn format_round_trips() {
    for s in ["2009-02-13T23:31:30Z", "2026-11-28T00:00:00Z", "2000-02-29T23:59:59Z"] {
      assert_eq!(format_rfc3339(parse_rfc3339(s).unwrap()), s);
    }
  }
}
