//! Durations and other value spellings of the configuration, and raft tick
//! derivation: serde helpers for humantime durations (`"150ms"`, `"7days"`),
//! optional durations and byte counts with their "unlimited" spellings, and
//! [`derive_ticks`] turning `raft.tick-interval`, `raft.heartbeat-interval` and
//! `raft.election-timeout` into the tick counts raft-rs wants ([`RaftTicks`]).

use std::time::Duration;

use super::ConfigError;

/// Serde helper for `Duration` fields written as humantime strings
/// (`"50ms"`, `"3s"`, `"7days"`). Use with `#[serde(with = "duration_str")]`.
pub mod duration_str {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `d` as a humantime string, e.g. `"150ms"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads a humantime string such as `"150ms"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    /// Parses a humantime string; the error explains what was wrong.
    pub fn parse(v: &str) -> Result<Duration, String> {
        humantime::parse_duration(v.trim()).map_err(|e| {
            format!("invalid duration {v:?} ({e}); write a number with a unit, e.g. \"150ms\", \"3s\", \"7days\"")
        })
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string with a unit, such as \"150ms\", \"3s\" or \"7days\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }
    }
}

/// Serde helper for an optional duration where `"-1"`, `-1`, `"none"` and
/// `"unlimited"` mean "no limit" (`None`). Serializes `None` as `"unlimited"`.
pub mod opt_duration_str {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `Some(d)` as a humantime string and `None` as `"unlimited"`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_str::serialize(d, s),
            None => s.serialize_str("unlimited"),
        }
    }

    /// Reads a humantime string or one of the "unlimited" spellings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_any(OptDurationVisitor)
    }

    struct OptDurationVisitor;

    impl Visitor<'_> for OptDurationVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string such as \"7days\", or \"unlimited\" / \"none\" / -1")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if super::is_unlimited(v) {
                return Ok(None);
            }
            super::duration_str::parse(v).map(Some).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            if v == -1 {
                Ok(None)
            } else {
                Err(E::custom(format!(
                    "invalid duration {v}: write a string with a unit such as \"7days\", or -1 for unlimited"
                )))
            }
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
}

/// Serde helper for an optional byte count where `-1`, `"-1"`, `"none"` and
/// `"unlimited"` mean "no limit" (`None`). Serializes `None` as `-1`.
pub mod opt_bytes {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `Some(n)` as `n` and `None` as `-1`.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_i64(-1),
        }
    }

    /// Reads a non-negative integer or one of the "unlimited" spellings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(OptBytesVisitor)
    }

    struct OptBytesVisitor;

    impl Visitor<'_> for OptBytesVisitor {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of bytes, or -1 / \"unlimited\" / \"none\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            match v {
                -1 => Ok(None),
                v if v >= 0 => Ok(Some(v as u64)),
                v => Err(E::custom(format!("invalid byte count {v}: use a non-negative number, or -1 for unlimited"))),
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if super::is_unlimited(v) {
                return Ok(None);
            }
            v.trim().parse::<u64>().map(Some).map_err(|_| {
                E::custom(format!("invalid byte count {v:?}: use a non-negative number of bytes, or -1 for unlimited"))
            })
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
}

pub(super) fn is_unlimited(v: &str) -> bool {
    let v = v.trim();
    v == "-1" || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("unlimited")
}

// ---------------------------------------------------------------------------
// Tick derivation
// ---------------------------------------------------------------------------

/// Tick counts handed to raft-rs, derived from durations by [`derive_ticks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTicks {
    /// Ticks between leader heartbeats (`raft::Config::heartbeat_tick`).
    pub heartbeat_tick: usize,
    /// Base election ticks (`raft::Config::election_tick`).
    pub election_tick: usize,
    /// The period of one tick.
    pub tick: Duration,
}

impl RaftTicks {
    /// `raft::Config::min_election_tick` (= `election_tick`).
    pub fn min_election_tick(&self) -> usize {
        self.election_tick
    }

    /// `raft::Config::max_election_tick` (exclusive; = 2 × `election_tick`).
    pub fn max_election_tick(&self) -> usize {
        self.election_tick.saturating_mul(2)
    }

    /// The randomized election timeout range in wall-clock time, `[lo, hi)`.
    pub fn election_timeout_range(&self) -> (Duration, Duration) {
        (mul_duration(self.tick, self.min_election_tick()), mul_duration(self.tick, self.max_election_tick()))
    }

    /// The heartbeat period in wall-clock time after rounding.
    pub fn heartbeat_period(&self) -> Duration {
        mul_duration(self.tick, self.heartbeat_tick)
    }
}

fn mul_duration(d: Duration, n: usize) -> Duration {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    d.checked_mul(n).unwrap_or(Duration::MAX)
}

/// `round(a / b)` on nanoseconds; `b` must be non-zero.
fn round_ratio(a: Duration, b: Duration) -> usize {
    let (a, b) = (a.as_nanos(), b.as_nanos());
    let q = (a + b / 2) / b;
    usize::try_from(q).unwrap_or(usize::MAX)
}

/// Derives raft-rs tick counts: `heartbeat_tick = round(heartbeat / tick)`,
/// `election_tick = round(election / tick)`. raft-rs then randomizes the
/// election timeout in `[election_tick, 2 * election_tick)` ticks, so the
/// wall-clock timeout stays what was configured whatever the tick period.
pub fn derive_ticks(tick: Duration, heartbeat: Duration, election: Duration) -> Result<RaftTicks, ConfigError> {
    if tick.is_zero() {
        return Err(ConfigError::invalid("raft.tick-interval", "must be greater than zero"));
    }
    let heartbeat_tick = round_ratio(heartbeat, tick);
    if heartbeat_tick == 0 {
        return Err(ConfigError::invalid(
            "raft.heartbeat-interval",
            format!(
                "({}) rounds to zero ticks of raft.tick-interval ({}); it must be at least one tick",
                fmt_duration(heartbeat),
                fmt_duration(tick)
            ),
        ));
    }
    let election_tick = round_ratio(election, tick);
    if election_tick <= heartbeat_tick {
        return Err(ConfigError::invalid(
            "raft.election-timeout",
            format!(
                "({}) gives {election_tick} ticks, which must be more than the {heartbeat_tick} heartbeat ticks",
                fmt_duration(election)
            ),
        ));
    }
    Ok(RaftTicks { heartbeat_tick, election_tick, tick })
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::Config;

    #[test]
    fn retention_spellings() {
        for v in ["\"unlimited\"", "\"none\"", "\"-1\"", "-1", "\"UNLIMITED\""] {
            let c = from_toml(&format!("[topics]\nretention = {v}\n")).unwrap();
            assert_eq!(c.topics.retention, None, "{v}");
        }
        let c = from_toml("[topics]\nretention = \"12h\"\n").unwrap();
        assert_eq!(c.topics.retention, Some(Duration::from_secs(12 * 3600)));
        assert!(from_toml("[topics]\nretention = 5\n").is_err());

        for v in ["-1", "\"-1\"", "\"none\"", "\"unlimited\""] {
            let c = from_toml(&format!("[topics]\nretention-bytes = {v}\n")).unwrap();
            assert_eq!(c.topics.retention_bytes, None, "{v}");
        }
        let c = from_toml("[topics]\nretention-bytes = 5000\n").unwrap();
        assert_eq!(c.topics.retention_bytes, Some(5000));
        let msg = from_toml("[topics]\nretention-bytes = -7\n").unwrap_err().to_string();
        assert!(msg.contains("topics.retention-bytes"), "{msg}");
    }
    // --- tick derivation ------------------------------------------------

    #[test]
    fn ticks_for_default_timing() {
        let t = derive_ticks(ms(50), ms(150), ms(3000)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (3, 60));
        assert_eq!(t.tick, ms(50));
        assert_eq!(Config::default().raft_ticks().unwrap(), t);
        assert_eq!((t.min_election_tick(), t.max_election_tick()), (60, 120));
        assert_eq!(t.election_timeout_range(), (ms(3000), ms(6000)));
        assert_eq!(t.heartbeat_period(), ms(150));
    }

    #[test]
    fn ticks_for_fast_loop_keep_wall_clock_timeout() {
        let t = derive_ticks(ms(10), ms(150), ms(3000)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (15, 300));
        // The historical bug: a 10 ms loop given election_tick = 20 elected
        // after 200 ms instead of 3 s.
        assert_ne!(t.election_tick, 20);
        assert_eq!(t.election_timeout_range().0, ms(3000));
    }

    #[test]
    fn ticks_round_to_nearest() {
        let t = derive_ticks(ms(40), ms(150), ms(1000)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (4, 25)); // 3.75 -> 4
        let t = derive_ticks(ms(40), ms(130), ms(1010)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (3, 25)); // 3.25 -> 3, 25.25 -> 25
    }

    #[test]
    fn ticks_track_configured_durations_within_half_a_tick() {
        for tick_ms in [1u64, 5, 10, 20, 50, 100] {
            for (hb, el) in [(150u64, 3000u64), (100, 1000), (300, 10_000)] {
                if tick_ms > hb {
                    continue;
                }
                let t = derive_ticks(ms(tick_ms), ms(hb), ms(el)).unwrap();
                let real_el = tick_ms * t.election_tick as u64;
                let real_hb = tick_ms * t.heartbeat_tick as u64;
                assert!(real_el.abs_diff(el) * 2 <= tick_ms, "{tick_ms} {el}");
                assert!(real_hb.abs_diff(hb) * 2 <= tick_ms, "{tick_ms} {hb}");
                assert!(t.heartbeat_tick >= 1 && t.election_tick > t.heartbeat_tick);
            }
        }
    }

    #[test]
    fn tick_derivation_errors() {
        assert!(matches!(
            derive_ticks(Duration::ZERO, ms(150), ms(3000)),
            Err(ConfigError::Invalid { ref key, .. }) if key == "raft.tick-interval"
        ));
        assert!(matches!(
            derive_ticks(ms(100), ms(40), ms(3000)),
            Err(ConfigError::Invalid { ref key, .. }) if key == "raft.heartbeat-interval"
        ));
        assert!(matches!(
            derive_ticks(ms(100), ms(150), ms(200)),
            Err(ConfigError::Invalid { ref key, .. }) if key == "raft.election-timeout"
        ));
    }
}
