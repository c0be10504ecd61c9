//! The channels complaints arrive through, and how late each delivers.
//!
//! Event time (`ts`) is when an agent or a system accepted the complaint;
//! arrival is when hotspot reads it. The difference is what makes streams
//! out of order:
//!
//! * `10086` — the hotline's work-order system pushes each order at once.
//! * `web`   — the web portal exports in batches every few minutes, and a
//!   batch lands a minute or three after it closes: its records are
//!   minutes late, all together.
//! * `app`   — the app posts within seconds.
//! * `store`, `sms` — stores and the SMS gateway forward within a minute or
//!   two.
//!
//! Every delay is scaled to the rules' `allowed_lateness` and stays below
//! it, so ordinary traffic is never dropped as late; only the injected "late
//! batch" trap goes past it.

use rand::Rng;

use super::callers::mix64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Hotline,
    Web,
    App,
    Store,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Hotline,
        Channel::Web,
        Channel::App,
        Channel::Store,
        Channel::Sms,
    ];

    /// The `channel` field.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Hotline => "10086",
            Channel::Web => "web",
            Channel::App => "app",
            Channel::Store => "store",
            Channel::Sms => "sms",
        }
    }

    /// The work-order id prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Channel::Hotline => "WO",
            Channel::Web => "WB",
            Channel::App => "AP",
            Channel::Store => "ST",
            Channel::Sms => "SM",
        }
    }

    /// The share of complaints through each channel.
    pub fn pick(rng: &mut impl Rng) -> Channel {
        match rng.random_range(0..100u32) {
            0..63 => Channel::Hotline,
            63..75 => Channel::Web,
            75..87 => Channel::App,
            87..95 => Channel::Store,
            _ => Channel::Sms,
        }
    }

    /// How often this channel's `caller` is a hash of the number.
    pub fn hashed_caller_share(self) -> f64 {
        match self {
            Channel::Web => 0.7,
            Channel::App => 0.25,
            _ => 0.05,
        }
    }
}

/// Delivery delays, scaled to the allowed lateness.
#[derive(Debug, Clone, Copy)]
pub struct Delays {
    /// The web export period.
    pub web_period_ms: i64,
    /// The most a web batch lands after it closes.
    pub web_lag_max_ms: i64,
    /// The most a store or SMS record is late.
    pub forward_max_ms: i64,
    /// The most an app record is late.
    pub app_max_ms: i64,
    seed: u64,
}

impl Delays {
    /// Delays for `allowed_lateness_ms` (the full model at 10 minutes or
    /// more, proportionally less below).
    pub fn new(allowed_lateness_ms: i64, seed: u64) -> Self {
        let scale = |ms: i64| -> i64 {
            if allowed_lateness_ms >= 600_000 {
                ms
            } else {
                ms * allowed_lateness_ms / 600_000
            }
        };
        Delays {
            web_period_ms: scale(300_000).max(1),
            web_lag_max_ms: scale(180_000),
            forward_max_ms: scale(120_000),
            app_max_ms: scale(20_000),
            seed,
        }
    }

    /// When the web batch holding an event of time `ts` lands: the end of
    /// its export period plus that batch's own lag (one to three minutes at
    /// full scale, the same for every record of the batch).
    pub fn web_arrival(&self, ts: i64) -> i64 {
        let batch = ts.div_euclid(self.web_period_ms);
        let close = (batch + 1) * self.web_period_ms;
        let lag_min = self.web_lag_max_ms / 3;
        let span = (self.web_lag_max_ms - lag_min).max(0) as u64 + 1;
        close + lag_min + (mix64(self.seed ^ batch as u64) % span) as i64
    }

    /// The arrival time of an event of time `ts` through `channel`.
    pub fn arrival(&self, rng: &mut impl Rng, channel: Channel, ts: i64) -> i64 {
        match channel {
            Channel::Hotline => ts,
            Channel::Web => self.web_arrival(ts),
            Channel::App => ts + rng.random_range(0..=self.app_max_ms),
            Channel::Store | Channel::Sms => ts + rng.random_range(0..=self.forward_max_ms),
        }
    }

    /// The longest delay any channel adds.
    pub fn max_delay_ms(&self) -> i64 {
        (self.web_period_ms + self.web_lag_max_ms)
            .max(self.forward_max_ms)
            .max(self.app_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn delays_stay_below_the_allowed_lateness() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for lateness in [0, 60_000, 600_000, 3_600_000] {
            let d = Delays::new(lateness, 9);
            if lateness > 0 {
                assert!(
                    d.max_delay_ms() < lateness.min(600_000),
                    "{lateness}: {}",
                    d.max_delay_ms()
                );
            }
            for i in 0..10_000 {
                let ts = 1_773_504_000_000 + i * 7_919;
                for c in Channel::ALL {
                    let a = d.arrival(&mut rng, c, ts);
                    assert!(a >= ts && a - ts <= d.max_delay_ms(), "{c:?} {lateness}");
                }
            }
        }
        // Records of one web batch land together.
        let d = Delays::new(600_000, 9);
        let t0 = 1_773_504_000_000;
        assert_eq!(d.web_arrival(t0 + 1_000), d.web_arrival(t0 + 299_000));
        assert!(d.web_arrival(t0 + 1_000) - (t0 + 300_000) >= 60_000);
    }
}
