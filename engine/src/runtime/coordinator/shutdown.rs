//! Orderly shutdown: stop the inputs (pending reads return end-of-stream, what was read is
//! routed), wait until every lane has drained, stop the filters, drain again, stop the outputs
//! (they flush) — each phase waits until the shards say its plugins have ended. Whatever could
//! not be delivered before the shutdown timeout is told, one sentence per plugin or router.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hekate_config::Category;

use super::placement::ConsumerInfo;
use super::{Coordinator, RunOutcome};
use crate::runtime::layout::format_cores;
use crate::runtime::pipeline::PluginInfo;
use crate::runtime::shard::Phase;
use crate::runtime::signals::{self, Signal};

impl Coordinator {
    /// Messages in lanes and routers, and the sum of all pushes (to notice movement).
    fn scan(&self) -> (u64, u64) {
        let mut in_flight: u64 = self.pending.iter().map(|p| p.load(Ordering::Acquire)).sum();
        let mut pushed = 0;
        for c in &self.consumers {
            for (_, _, l) in &c.lanes {
                in_flight += l.in_flight();
                pushed += l.pushed();
            }
        }
        (in_flight, pushed)
    }

    /// Waits until nothing is in flight, twice in a row with no push in between.
    fn wait_quiescent(&self, deadline: Instant) -> bool {
        loop {
            let (a, pa) = self.scan();
            if a == 0 {
                std::thread::sleep(Duration::from_millis(5));
                let (b, pb) = self.scan();
                if b == 0 && pa == pb {
                    return true;
                }
            }
            if !self.pause(deadline) {
                return false;
            }
        }
    }

    fn wait_zero(&self, counter: &AtomicUsize, deadline: Instant) -> bool {
        while counter.load(Ordering::Acquire) > 0 {
            if !self.pause(deadline) {
                return false;
            }
        }
        true
    }

    /// Waits a few milliseconds during shutdown; false once the deadline passed or a second
    /// SIGINT/SIGTERM asked to stop waiting.
    fn pause(&self, deadline: Instant) -> bool {
        if self.forced.get() || Instant::now() >= deadline {
            return false;
        }
        if signals::wait(Duration::from_millis(5)) == Some(Signal::Shutdown) {
            tracing::warn!("Second shutdown signal: not waiting for the outputs any longer.");
            self.forced.set(true);
            return false;
        }
        true
    }

    /// Stops inputs, drains, stops filters, drains, stops outputs (which flush), and reports
    /// whatever could not be delivered before the shutdown timeout.
    pub(super) fn shutdown(mut self) -> RunOutcome {
        tracing::info!("Shutdown initiated.");
        self.telemetry_stopping();
        let deadline = Instant::now() + self.shutdown_timeout;
        self.control.advance(Phase::StopInputs);
        self.wait_zero(&self.control.inputs_live, deadline);
        // Successors a reload has yet to start (their predecessors are finishing) take their
        // lanes before the lanes are waited for.
        while !self.pending_starts.is_empty() && Instant::now() < deadline {
            self.advance_retirements();
            std::thread::sleep(Duration::from_millis(2));
        }
        self.wait_quiescent(deadline);
        self.control.advance(Phase::StopFilters);
        self.wait_zero(&self.control.filters_live, deadline);
        self.wait_quiescent(deadline);
        self.control.advance(Phase::StopOutputs);
        let clean = self.wait_zero(&self.control.outputs_live, deadline);
        let mut outcome = RunOutcome {
            failure: self.failure.take(),
            ..RunOutcome::default()
        };
        if !clean || self.control.inputs_live.load(Ordering::Acquire) > 0 {
            outcome.undelivered = self.leftovers();
        }
        let join_by = Instant::now() + Duration::from_secs(1);
        for t in std::mem::take(&mut self.threads) {
            while !t.is_finished() && Instant::now() < join_by {
                std::thread::sleep(Duration::from_millis(2));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.collect();
        // Losses the outputs reported while they closed (after the threads ended, every one
        // has been sent).
        self.serve_events();
        outcome.undelivered.append(&mut self.lost);
        outcome
    }

    /// One sentence per plugin or shard that still holds messages.
    fn leftovers(&self) -> Vec<String> {
        let pending: Vec<u64> = self
            .pending
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .collect();
        undelivered(
            &self.plugins,
            &self.consumers,
            &self.layout.workers,
            &pending,
            self.control.inputs_live.load(Ordering::Acquire) > 0,
            self.shutdown_timeout,
        )
    }
}

/// One sentence per plugin or router that still holds messages, and one if inputs were still
/// blocked: `workers` maps shards to cores, `pending` is what each shard's router holds.
fn undelivered(
    plugins: &[Option<PluginInfo>],
    consumers: &[ConsumerInfo],
    workers: &[usize],
    pending: &[u64],
    inputs_blocked: bool,
    timeout: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    for c in consumers {
        let Some(info) = &plugins[c.plugin] else {
            continue;
        };
        let queued: u64 = c.lanes.iter().map(|l| l.2.in_flight()).sum();
        let held: u64 = c.held.iter().map(|h| h.1.load(Ordering::Acquire)).sum();
        // `held` counts messages popped from a lane but not finished too; those are also
        // in `queued`, so report the larger as the total for outputs that buffer.
        let total = queued.max(held);
        if total == 0 {
            continue;
        }
        let mut cores: Vec<usize> = c
            .held
            .iter()
            .filter(|h| h.1.load(Ordering::Acquire) > 0)
            .map(|h| workers[h.0])
            .chain(
                c.lanes
                    .iter()
                    .filter(|l| l.2.in_flight() > 0)
                    .map(|l| workers[l.1]),
            )
            .collect();
        cores.sort_unstable();
        cores.dedup();
        out.push(format!(
            "{} '{}' ({}) on core {} could not deliver {total} messages before shutdown ended (timeout {:?}); they were lost",
            if info.category == Category::Filter {
                "filter"
            } else {
                "output"
            },
            info.name,
            info.type_name,
            format_cores(&cores),
            timeout
        ));
    }
    for (shard, &n) in pending.iter().enumerate() {
        if n > 0 {
            out.push(format!(
                "the router on core {} still held {n} messages waiting for a full lane; they were lost",
                workers[shard]
            ));
        }
    }
    if inputs_blocked {
        out.push(
            "some inputs were still blocked by back-pressure; data they had not read yet stays with the senders"
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::tests::{consumer, coordinator, filter, output, some};
    use super::*;
    use crate::mesh::Batch;
    use crate::plugin::{Placement, ShardEvent};
    use hekate_model::message::{Message, MessageView};

    fn batch(messages: usize) -> Batch {
        let bytes = Message::new_now().to_bytes();
        let mut b = Batch::default();
        for _ in 0..messages {
            b.push(&MessageView::new(&bytes).unwrap(), 0);
        }
        b
    }

    #[test]
    fn nothing_is_told_after_a_clean_shutdown() {
        let plugins = some(vec![output("File", Placement::PerShard)]);
        let (c, _lanes) = consumer(0, &[(0, 0)], &[0]);
        let told = undelivered(&plugins, &[c], &[3], &[0], false, Duration::from_secs(1));
        assert!(told.is_empty(), "{told:?}");
    }

    #[test]
    fn what_was_left_is_told_per_plugin_router_and_input() {
        let plugins = some(vec![
            filter("Counter", Placement::Single),
            output("File", Placement::PerShard),
        ]);
        // Counter, home shard 1: 3 messages wait in the lane from shard 0.
        let (counter, mut lanes) = consumer(0, &[(0, 1), (1, 1)], &[1]);
        lanes[0].0.try_push(batch(3)).unwrap();
        // File on both shards: the instance on shard 0 holds 5 it could not write.
        let (file, _file_lanes) = consumer(1, &[(0, 0), (1, 1)], &[0, 1]);
        file.held[0].1.store(5, Ordering::Release);
        let told = undelivered(
            &plugins,
            &[counter, file],
            &[10, 11],
            &[0, 2],
            true,
            Duration::from_secs(1),
        );
        assert_eq!(
            told,
            [
                "filter 'Counter' (TestFilter) on core 11 could not deliver 3 messages before shutdown ended (timeout 1s); they were lost",
                "output 'File' (TestOutput) on core 10 could not deliver 5 messages before shutdown ended (timeout 1s); they were lost",
                "the router on core 11 still held 2 messages waiting for a full lane; they were lost",
                "some inputs were still blocked by back-pressure; data they had not read yet stays with the senders",
            ]
        );
    }

    #[test]
    fn held_messages_also_in_a_lane_are_counted_once() {
        let plugins = some(vec![output("File", Placement::Single)]);
        let (file, mut lanes) = consumer(0, &[(0, 0)], &[0]);
        lanes[0].0.try_push(batch(4)).unwrap();
        file.held[0].1.store(4, Ordering::Release);
        let told = undelivered(&plugins, &[file], &[0], &[0], false, Duration::from_secs(1));
        assert_eq!(told.len(), 1);
        assert!(told[0].contains("could not deliver 4 messages"), "{told:?}");
    }

    #[test]
    fn inputs_stop_first_then_filters_then_outputs() {
        let (coord, shards) = coordinator(1, vec![], 0);
        let control = shards.control();
        control.inputs_live.store(1, Ordering::Release);
        control.filters_live.store(1, Ordering::Release);
        control.outputs_live.store(1, Ordering::Release);
        let log = Arc::new(Mutex::new(Vec::new()));
        let shard = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let note = |what: String| log.lock().unwrap().push(what);
                let mut seen = Phase::Running;
                while seen < Phase::StopOutputs {
                    let phase = control.phase();
                    if phase == seen {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    seen = phase;
                    let live = |c: &AtomicUsize| c.load(Ordering::Acquire);
                    note(format!(
                        "{phase:?} with inputs {} filters {}",
                        live(&control.inputs_live),
                        live(&control.filters_live)
                    ));
                    // The plugins of the phase take a while to end.
                    std::thread::sleep(Duration::from_millis(20));
                    match phase {
                        Phase::StopInputs => &control.inputs_live,
                        Phase::StopFilters => &control.filters_live,
                        _ => &control.outputs_live,
                    }
                    .fetch_sub(1, Ordering::AcqRel);
                }
            })
        };
        let outcome = coord.shutdown();
        shard.join().unwrap();
        assert_eq!(outcome, RunOutcome::default());
        assert_eq!(
            *log.lock().unwrap(),
            [
                "StopInputs with inputs 1 filters 1",
                "StopFilters with inputs 0 filters 1",
                "StopOutputs with inputs 0 filters 0",
            ]
        );
    }

    #[test]
    fn filters_stop_only_once_the_lanes_have_drained() {
        let (mut coord, shards) = coordinator(1, vec![filter("Counter", Placement::Single)], 0);
        let (counter, mut lanes) = consumer(0, &[(0, 0)], &[0]);
        coord.consumers = vec![counter];
        lanes[0].0.try_push(batch(2)).unwrap();
        let (_tx, mut rx) = lanes.pop().unwrap();
        let control = shards.control();
        let shard = std::thread::spawn(move || {
            while control.phase() < Phase::StopInputs {
                std::thread::sleep(Duration::from_millis(1));
            }
            // The filter takes its time with what the lane holds.
            std::thread::sleep(Duration::from_millis(30));
            let b = rx.try_pop().unwrap();
            let phase_while_busy = control.phase();
            rx.done(b);
            phase_while_busy
        });
        let outcome = coord.shutdown();
        assert_eq!(shard.join().unwrap(), Phase::StopInputs);
        assert!(outcome.undelivered.is_empty(), "{outcome:?}");
    }

    #[test]
    fn an_output_that_cannot_finish_in_time_is_told_with_what_it_held() {
        let (mut coord, shards) = coordinator(2, vec![output("Tcp", Placement::PerShard)], 0);
        let (tcp, _lanes) = consumer(0, &[(0, 0), (1, 1)], &[0, 1]);
        tcp.held[1].1.store(7, Ordering::Release);
        coord.consumers = vec![tcp];
        coord.shutdown_timeout = Duration::from_millis(50);
        shards.control().outputs_live.store(1, Ordering::Release);
        let outcome = coord.shutdown();
        assert_eq!(outcome.undelivered.len(), 1, "{outcome:?}");
        assert!(
            outcome.undelivered[0]
                .starts_with("output 'Tcp' (TestOutput) on core 1 could not deliver 7 messages"),
            "{outcome:?}"
        );
    }

    #[test]
    fn losses_reported_while_outputs_close_end_in_the_outcome() {
        let (coord, shards) = coordinator(1, vec![output("Tcp", Placement::Single)], 0);
        let events = shards.events();
        let control = shards.control();
        control.outputs_live.store(1, Ordering::Release);
        let shard = std::thread::spawn(move || {
            while control.phase() < Phase::StopOutputs {
                std::thread::sleep(Duration::from_millis(1));
            }
            // The output reports its loss as it closes, then ends.
            events
                .send(ShardEvent::Lost {
                    reason: "output 'Tcp' could not write 3 messages".into(),
                })
                .unwrap();
            control.outputs_live.store(0, Ordering::Release);
        });
        let outcome = coord.shutdown();
        shard.join().unwrap();
        assert_eq!(
            outcome.undelivered,
            ["output 'Tcp' could not write 3 messages"],
            "{outcome:?}"
        );
    }
}
