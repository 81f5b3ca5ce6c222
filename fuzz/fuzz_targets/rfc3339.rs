//! `time::parse_rfc3339`: expiries from container endpoints, IMDS and IAM Credentials.
//!
//! Invariants: never panics; a parsed instant formats back (whole seconds, UTC) to a string that
//! parses to the same whole second; a canonical `YYYY-MM-DDTHH:MM:SSZ` input round-trips exactly.
#![no_main]

use std::time::UNIX_EPOCH;

use aws_wif_supplier::time::{format_rfc3339, parse_rfc3339};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
  let Ok(s) = std::str::from_utf8(data) else { return };
  let Some(t) = parse_rfc3339(s) else { return };
  let secs = t.duration_since(UNIX_EPOCH).expect("parsed instants are after the epoch").as_secs();
  let formatted = format_rfc3339(t);
  if formatted.len() != 20 {
    return; // year 10000 (e.g. 9999-12-31T23:59:60Z): formats with five digits, out of RFC 3339's range
  }
  let back = parse_rfc3339(&formatted).unwrap_or_else(|| panic!("{formatted:?} (from {s:?}) does not parse"));
  assert_eq!(back.duration_since(UNIX_EPOCH).unwrap().as_secs(), secs, "{s:?} -> {formatted:?}");
  let trimmed = s.trim();
  let canonical = trimmed.len() == 20
    && trimmed.ends_with('Z')
    && trimmed.as_bytes()[10] == b'T'
    && !trimmed.contains('.')
    && &trimmed[17..19] != "60"; // a leap second normalises to :00 of the next minute
  if canonical && crate_days_valid(trimmed) {
    assert_eq!(formatted, trimmed, "canonical input does not round-trip");
  }
});

/// The day exists in its month (the parser accepts day 31 in any month and normalises it).
fn crate_days_valid(s: &str) -> bool {
  let (y, m, d): (i64, u32, u32) = (s[0..4].parse().unwrap(), s[5..7].parse().unwrap(), s[8..10].parse().unwrap());
  let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  d >= 1 && d <= days[(m - 1) as usize]
}
