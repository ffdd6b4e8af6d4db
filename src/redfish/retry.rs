//! Retry policy, pure: which failures are retried, the backoff, and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

/// What happened to one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// TCP/TLS connect failed: nothing reached the BMC, always safe to retry.
    ConnectError,
    /// The request was sent but no answer came in time.
    Timeout,
    /// The BMC answered with this status.
    Status(u16),
}

/// Whether to try again after `outcome` of a request whose method is `idempotent`.
pub fn should_retry(outcome: Outcome, idempotent: bool) -> bool {
    match outcome {
        Outcome::ConnectError => true,
        // A POST that timed out may have been carried out: retrying could reset twice.
        Outcome::Timeout => idempotent,
        Outcome::Status(s) => (500..600).contains(&s) && s != 501,
    }
}

/// Delay before attempt number `attempt` (1 = first retry): `base * 2^(attempt-1)`, capped at
/// 30 s, or the server's `Retry-After` (capped at `max_after`) when it gave one.
pub fn delay(
    base: Duration,
    attempt: u32,
    retry_after: Option<Duration>,
    max_after: Duration,
) -> Duration {
    if let Some(after) = retry_after {
        return after.min(max_after);
    }
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(30))
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules() {
        assert!(should_retry(Outcome::ConnectError, false));
        assert!(should_retry(Outcome::Timeout, true));
        assert!(!should_retry(Outcome::Timeout, false));
        assert!(should_retry(Outcome::Status(503), false));
        assert!(should_retry(Outcome::Status(500), true));
        assert!(!should_retry(Outcome::Status(501), true));
        assert!(!should_retry(Outcome::Status(404), true));
        assert!(!should_retry(Outcome::Status(412), true));
    }

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        let b = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        assert_eq!(delay(b, 1, None, max), Duration::from_millis(100));
        assert_eq!(delay(b, 3, None, max), Duration::from_millis(400));
        assert_eq!(delay(b, 40, None, max), Duration::from_secs(30));
        assert_eq!(
            delay(b, 1, Some(Duration::from_secs(2)), max),
            Duration::from_secs(2)
        );
        assert_eq!(delay(b, 1, Some(Duration::from_secs(99)), max), max);
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
