//! The pace of a training job as the Training tab and the top bar show it: the time left,
//! estimated from the steps of this session over the time spent running. A pause stops
//! the clock (the estimate stays as it was), so time spent paused never counts.

use std::time::{Duration, Instant};

/// Running time and steps of this session, paused stretches left out.
#[derive(Clone, Debug, Default)]
pub struct Pace {
    /// Running time of the stretches a pause ended.
    banked: Duration,
    /// Start of the running stretch under way (`None` while paused or before any step).
    running_since: Option<Instant>,
    /// The global step of this session's first step.
    first_step: Option<usize>,
    /// Paused: steps do not arrive and the clock is stopped.
    paused: bool,
}

impl Pace {
    /// Notes that global step `global` of `total` ended at `now`; returns the estimated
    /// seconds left (none before a second step gives a pace).
    pub fn step(&mut self, now: Instant, global: usize, total: usize) -> Option<f64> {
        self.paused = false;
        let since = *self.running_since.get_or_insert(now);
        let first = *self.first_step.get_or_insert(global);
        let done = global.saturating_sub(first);
        if done == 0 {
            return None;
        }
        let running = self.banked + now.saturating_duration_since(since);
        let per_step = running.as_secs_f64() / done as f64;
        Some(per_step * total.saturating_sub(global) as f64)
    }

    /// Stops the clock at `now`.
    pub fn pause(&mut self, now: Instant) {
        if let Some(since) = self.running_since.take() {
            self.banked += now.saturating_duration_since(since);
        }
        self.paused = true;
    }

    /// Starts the clock again at `now` (from the first step on, when none came yet).
    pub fn resume(&mut self, now: Instant) {
        if self.paused && self.first_step.is_some() {
            self.running_since = Some(now);
        }
        self.paused = false;
    }

    /// Running time so far at `now`, paused stretches left out.
    pub fn running(&self, now: Instant) -> Duration {
        self.banked
            + self
                .running_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn time_spent_paused_does_not_count() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        // Steps 1 to 3 of 10, one every 2 s.
        assert_eq!(pace.step(at(t0, 0), 1, 10), None);
        assert_eq!(pace.step(at(t0, 2), 2, 10), Some(16.0));
        assert_eq!(pace.step(at(t0, 4), 3, 10), Some(14.0));
        // An hour's pause.
        pace.pause(at(t0, 4));
        assert_eq!(pace.running(at(t0, 3604)), Duration::from_secs(4));
        pace.resume(at(t0, 3604));
        // The next step 2 s later: still 2 s per step, 6 steps left.
        assert_eq!(pace.step(at(t0, 3606), 4, 10), Some(12.0));
        assert_eq!(pace.running(at(t0, 3606)), Duration::from_secs(6));
    }

    #[test]
    fn a_pause_before_the_first_step_changes_nothing() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.pause(at(t0, 0));
        pace.resume(at(t0, 100));
        assert_eq!(pace.step(at(t0, 101), 5, 10), None);
        assert_eq!(pace.step(at(t0, 103), 6, 10), Some(8.0));
    }
}
