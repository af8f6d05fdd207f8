//! The per-access-key rate limit [extension]: each key may send
//! `rate_limit_burst` requests at once and `rate_limit_per_second` on
//! average; past that a request is refused 429 (gateway code 420) with
//! `Retry-After`. A request is counted only after its signature is
//! verified, so nobody can spend another key's allowance by sending bad
//! signatures under its id, and the limiter holds one entry per real key.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// Token buckets, one per access key.
#[derive(Debug)]
pub struct KeyRateLimiter {
    buckets: DefaultKeyedRateLimiter<String>,
}

impl KeyRateLimiter {
    /// A limiter allowing `per_second` requests per second after a burst of
    /// `burst`; `None` when `per_second` is 0 (no limit) or `burst` is 0.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        if per_second <= 0.0 {
            return None;
        }
        // Past a billion per second the period rounds to zero; one
        // nanosecond is as good as no limit.
        let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
        Some(Self {
            buckets: RateLimiter::keyed(quota),
        })
    }

    /// Takes one request from `access_key`'s allowance, or says how long
    /// to wait for the next one.
    pub fn check(&self, access_key: &str) -> Result<(), ApiError> {
        let Err(refused) = self.buckets.check_key(&access_key.to_owned()) else {
            return Ok(());
        };
        let wait = refused.wait_time_from(self.buckets.clock().now());
        Err(ApiError::RateLimited(retry_after_seconds(wait)))
    }
}

/// `Retry-After` takes whole seconds; round up so that a client that obeys
/// it is not refused again.
fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_past_its_burst_is_refused_and_another_key_is_not() {
        let limiter = KeyRateLimiter::new(0.001, 2).expect("a limit");

        assert!(limiter.check("KEY1").is_ok());
        assert!(limiter.check("KEY1").is_ok());
        let refused = limiter.check("KEY1");

        assert!(
            matches!(refused, Err(ApiError::RateLimited(seconds)) if (990..=1000).contains(&seconds)),
            "{refused:?}"
        );
        assert!(limiter.check("KEY2").is_ok());
    }

    #[test]
    fn a_zero_rate_means_no_limit() {
        assert!(KeyRateLimiter::new(0.0, 10).is_none());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
