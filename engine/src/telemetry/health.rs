//! Whether every output delivers: what `/health` says, worked out by the coordinator each time
//! it publishes a [`Sample`](super::Sample).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::{DROP_WINDOW, STALL_AFTER};

/// One output as the coordinator sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputState<'a> {
    /// Section name.
    pub name: &'a str,
    /// Heka type name.
    pub type_name: &'a str,
    /// (core, since when) of each instance whose flush is under way.
    pub flushing: Vec<(usize, Instant)>,
    /// Messages waiting for it: in its lanes, held by its instances, in its disk queue.
    pub waiting: u64,
    /// Messages it dropped so far, over every shard.
    pub dropped: u64,
    /// Times its disk queue was found full so far (buffered outputs: `QueueFullCount`).
    pub queue_full: u64,
}

/// Remembers what `/health` needs beyond one sample: outputs that terminated, and when each
/// output last dropped messages.
#[derive(Debug, Default)]
pub struct HealthTracker {
    terminated: Vec<String>,
    /// Per output: (when, [dropped, queue full] so far) of the observations within
    /// [`DROP_WINDOW`], oldest first, plus the newest one before it.
    drops: HashMap<String, VecDeque<(Instant, [u64; 2])>>,
}

impl HealthTracker {
    /// An output left the pipeline for `reason`: unhealthy until hekate restarts.
    pub fn terminated(&mut self, name: &str, type_name: &str, reason: &str) {
        self.terminated.push(format!(
            "output '{name}' ({type_name}) terminated: {reason}"
        ));
    }

    /// The problems at `now`, one sentence each; empty when every output delivers.
    pub fn observe(&mut self, now: Instant, outputs: &[OutputState<'_>]) -> Vec<String> {
        let mut problems = self.terminated.clone();
        for o in outputs {
            let stuck = o
                .flushing
                .iter()
                .filter(|(_, since)| now.saturating_duration_since(*since) >= STALL_AFTER)
                .min_by_key(|(_, since)| *since);
            if let Some((core, since)) = stuck {
                problems.push(format!(
                    "output '{}' ({}) on core {core} has been trying to deliver for {} s; {} messages wait",
                    o.name,
                    o.type_name,
                    now.saturating_duration_since(*since).as_secs(),
                    o.waiting
                ));
            }
            let seen = self.drops.entry(o.name.to_string()).or_default();
            seen.push_back((now, [o.dropped, o.queue_full]));
            // Keep one observation at or before the window's start: the baseline.
            while seen.len() > 1 && now.saturating_duration_since(seen[1].0) >= DROP_WINDOW {
                seen.pop_front();
            }
            // The newest observation at or before the window's start; while hekate is younger
            // than the window, zero (the counters started at zero with it).
            let baseline = if now.saturating_duration_since(seen[0].0) >= DROP_WINDOW {
                seen[0].1
            } else {
                [0, 0]
            };
            if o.queue_full > baseline[1] {
                problems.push(format!(
                    "output '{}' ({}): its disk queue reached max_buffer_size in the last {} s",
                    o.name,
                    o.type_name,
                    DROP_WINDOW.as_secs()
                ));
            }
            let recent = o.dropped.saturating_sub(baseline[0]);
            if recent > 0 {
                problems.push(format!(
                    "output '{}' ({}) dropped {recent} messages in the last {} s ({} in all)",
                    o.name,
                    o.type_name,
                    DROP_WINDOW.as_secs(),
                    o.dropped
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn output(flushing: Vec<(usize, Instant)>, waiting: u64, dropped: u64) -> OutputState<'static> {
        OutputState {
            name: "upstream",
            type_name: "TcpOutput",
            flushing,
            waiting,
            dropped,
            queue_full: 0,
        }
    }

    #[test]
    fn an_output_flushing_for_too_long_is_not_delivering() {
        let mut h = HealthTracker::default();
        let t0 = Instant::now();
        let short = h.observe(t0 + Duration::from_secs(2), &[output(vec![(3, t0)], 7, 0)]);
        assert!(short.is_empty(), "{short:?}");
        let long = h.observe(t0 + Duration::from_secs(6), &[output(vec![(3, t0)], 7, 0)]);
        assert_eq!(
            long,
            [
                "output 'upstream' (TcpOutput) on core 3 has been trying to deliver for 6 s; 7 messages wait"
            ]
        );
        let done = h.observe(t0 + Duration::from_secs(7), &[output(vec![], 0, 0)]);
        assert!(done.is_empty(), "{done:?}");
    }

    #[test]
    fn drops_are_a_problem_for_the_window_after_them() {
        let mut h = HealthTracker::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(h.observe(at(0), &[output(vec![], 0, 0)]).is_empty());
        assert!(h.observe(at(1), &[output(vec![], 0, 0)]).is_empty());
        let dropping = h.observe(at(2), &[output(vec![], 0, 5)]);
        assert_eq!(
            dropping,
            ["output 'upstream' (TcpOutput) dropped 5 messages in the last 30 s (5 in all)"]
        );
        for s in 3..32 {
            assert_eq!(h.observe(at(s), &[output(vec![], 0, 5)]).len(), 1, "{s}");
        }
        assert!(h.observe(at(33), &[output(vec![], 0, 5)]).is_empty());
        // Dropped before the first look: the counters started at zero.
        let mut fresh = HealthTracker::default();
        assert_eq!(fresh.observe(at(0), &[output(vec![], 0, 2)]).len(), 1);
    }

    #[test]
    fn a_full_disk_queue_is_a_problem_for_the_window_after_it() {
        let mut h = HealthTracker::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let full = |n| OutputState {
            queue_full: n,
            ..output(vec![], 0, 0)
        };
        assert!(h.observe(at(0), &[full(0)]).is_empty());
        assert_eq!(
            h.observe(at(1), &[full(3)]),
            [
                "output 'upstream' (TcpOutput): its disk queue reached max_buffer_size in the last 30 s"
            ]
        );
        assert_eq!(h.observe(at(30), &[full(3)]).len(), 1);
        assert!(h.observe(at(31), &[full(3)]).is_empty());
    }

    #[test]
    fn a_terminated_output_stays_a_problem() {
        let mut h = HealthTracker::default();
        h.terminated("upstream", "TcpOutput", "out of retries");
        let now = Instant::now();
        assert_eq!(
            h.observe(now, &[]),
            ["output 'upstream' (TcpOutput) terminated: out of retries"]
        );
        assert_eq!(h.observe(now, &[]).len(), 1);
    }
}
