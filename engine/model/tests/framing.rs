//! Heka stream framing: byte-exact layout, splitting in any read sizes, resynchronisation after
//! corrupt data, and HMAC signing and verification.

use std::sync::Arc;

use hekate_model::framing::{
    FrameStatus, HekaSplitter, RECORD_SEPARATOR, Region, RegionCause, RejectReason, Rejected,
    SignerKeys, SigningKey, SplitOutcome, UNIT_SEPARATOR, encode_checksummed_record, encode_record,
    encode_record_with_limit, frame_at,
};
use hekate_model::message::{Field, HmacHashFunction, Message, MessageAccess, MessageView};
use proptest::prelude::*;

/// What the splitter reported, owned so runs can be compared.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    Record {
        offset: u64,
        message: Vec<u8>,
        signer: Option<String>,
        framed_len: usize,
    },
    Rejected(Rejected),
    Skipped(Region),
    Truncated(Region),
}

impl Event {
    fn span(&self) -> (u64, u64) {
        match self {
            Event::Record {
                offset, framed_len, ..
            } => (*offset, *framed_len as u64),
            Event::Rejected(r) => (r.offset, r.len as u64),
            Event::Skipped(r) | Event::Truncated(r) => (r.offset, r.len),
        }
    }
}

/// Calls `split` (or `finish`) until the buffer has nothing more to give, like an input would.
fn drain(splitter: &mut HekaSplitter, buf: &[u8], eof: bool, events: &mut Vec<Event>) -> usize {
    let mut pos = 0;
    loop {
        let step = if eof {
            splitter.finish(&buf[pos..])
        } else {
            splitter.split(&buf[pos..])
        };
        pos += step.consumed;
        if let Some(region) = step.skipped {
            events.push(Event::Skipped(region));
        }
        match step.outcome {
            SplitOutcome::Record(r) => {
                assert_eq!(&r.framed[r.framed.len() - r.message.len()..], r.message);
                events.push(Event::Record {
                    offset: r.offset,
                    message: r.message.to_vec(),
                    signer: r.signer.map(str::to_owned),
                    framed_len: r.framed.len(),
                });
            }
            SplitOutcome::Rejected(r) => events.push(Event::Rejected(r)),
            SplitOutcome::NeedData => {
                assert!(!eof, "finish never asks for more data");
                return pos;
            }
            SplitOutcome::End { truncated } => {
                assert!(eof, "split never ends the stream");
                assert_eq!(pos, buf.len(), "finish consumes everything");
                events.extend(truncated.map(Event::Truncated));
                return pos;
            }
        }
    }
}

/// Feeds `stream` in reads of the given sizes (cycled), keeping leftovers as a caller would.
fn run_chunked(splitter: &mut HekaSplitter, stream: &[u8], sizes: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut fed = 0;
    let mut sizes = sizes.iter().cycle();
    while fed < stream.len() {
        let n = (*sizes.next().unwrap()).clamp(1, stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        let used = drain(splitter, &buf, false, &mut events);
        buf.drain(..used);
        assert!(
            buf.len() < splitter.max_record_size(),
            "leftover never exceeds one record"
        );
        assert!(buf.is_empty() || buf[0] == RECORD_SEPARATOR);
        assert_eq!(splitter.offset(), fed as u64 - buf.len() as u64);
    }
    drain(splitter, &buf, true, &mut events);
    assert_eq!(splitter.offset(), stream.len() as u64);
    events
}

fn run(splitter: &mut HekaSplitter, stream: &[u8]) -> Vec<Event> {
    run_chunked(splitter, stream, &[usize::MAX])
}

/// Every byte of the stream is in exactly one event, in order.
fn assert_partition(events: &[Event], stream_len: usize) {
    let mut at = 0;
    for e in events {
        let (offset, len) = e.span();
        assert_eq!(offset, at, "events tile the stream: {events:?}");
        assert!(len > 0 || matches!(e, Event::Record { .. }));
        at += len;
    }
    assert_eq!(at, stream_len as u64);
}

fn record(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(message, None, &mut out).unwrap();
    out
}

fn signed(message: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(message, Some(key), &mut out).unwrap();
    out
}

fn ok(offset: u64, message: &[u8], signer: Option<&str>, framed_len: usize) -> Event {
    Event::Record {
        offset,
        message: message.to_vec(),
        signer: signer.map(str::to_owned),
        framed_len,
    }
}

fn region(offset: u64, len: u64, cause: RegionCause) -> Region {
    Region { offset, len, cause }
}

fn ops_key() -> SigningKey {
    SigningKey::new("ops", 1, HmacHashFunction::Md5, b"ops secret")
}

fn dev_key() -> SigningKey {
    SigningKey::new("dev", 2, HmacHashFunction::Sha1, b"dev secret")
}

fn trusted() -> Arc<SignerKeys> {
    let mut keys = SignerKeys::new();
    keys.insert_section("ops_1", b"ops secret").unwrap();
    keys.insert("dev", 2, b"dev secret");
    Arc::new(keys)
}

fn verifying_splitter() -> HekaSplitter {
    HekaSplitter::default().with_signers(trusted())
}

// ---------------------------------------------------------------------------------------------
// Byte-exact layout

#[test]
fn unsigned_record_is_byte_exact() {
    let message = vec![0x55; 300];
    let out = record(&message);
    assert_eq!(out[..6], [0x1E, 0x03, 0x08, 0xAC, 0x02, 0x1F]);
    assert_eq!(out[6..], message[..]);

    assert_eq!(record(b"hi"), [0x1E, 0x02, 0x08, 0x02, 0x1F, b'h', b'i']);
    assert_eq!(record(b""), [0x1E, 0x02, 0x08, 0x00, 0x1F]);
    assert_eq!(
        record(&[7; 65_536])[..7],
        [0x1E, 0x04, 0x08, 0x80, 0x80, 0x04, 0x1F]
    );
}

/// A signed record built by hand from Heka's layout, using the RFC 2202 HMAC test vectors.
fn hand_built_signed(hash: HmacHashFunction, digest: &[u8]) -> Vec<u8> {
    let message = b"what do ya want for nothing?";
    let mut header = vec![
        0x08, 28, 0x18, hash as u8, 0x22, 3, b'o', b'p', b's', 0x28, 1,
    ];
    header.extend_from_slice(&[0x32, digest.len() as u8]);
    header.extend_from_slice(digest);
    let mut out = vec![0x1E, header.len() as u8];
    out.extend_from_slice(&header);
    out.push(0x1F);
    out.extend_from_slice(message);
    out
}

const MD5_DIGEST: [u8; 16] = [
    0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d, 0xb7, 0x38,
];
const SHA1_DIGEST: [u8; 20] = [
    0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84, 0xdf, 0x9c,
    0x25, 0x9a, 0x7c, 0x79,
];

#[test]
fn signed_records_are_byte_exact_and_verify() {
    let message = b"what do ya want for nothing?";
    let mut keys = SignerKeys::new();
    keys.insert_section("ops_1", b"Jefe").unwrap();
    let keys = Arc::new(keys);
    for (hash, digest) in [
        (HmacHashFunction::Md5, &MD5_DIGEST[..]),
        (HmacHashFunction::Sha1, &SHA1_DIGEST[..]),
    ] {
        let want = hand_built_signed(hash, digest);
        let key = SigningKey::new("ops", 1, hash, b"Jefe");
        assert_eq!(signed(message, &key), want, "{hash:?}");

        let mut splitter = HekaSplitter::default().with_signers(keys.clone());
        let events = run(&mut splitter, &want);
        assert_eq!(events, [ok(0, message, Some("ops"), want.len())]);
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn real_messages_round_trip_into_views() {
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for i in 0..50 {
        let mut msg = Message::new_now();
        msg.r#type = Some(format!("type.{i}"));
        msg.payload = Some("\u{1e}\u{1f} separators inside the payload".into());
        msg.add_field(Field::integer("n", i));
        let bytes = msg.to_bytes();
        encode_record(&bytes, None, &mut stream).unwrap();
        sent.push(msg);
    }
    let mut splitter = HekaSplitter::default();
    let mut got = Vec::new();
    let mut buf = &stream[..];
    loop {
        let step = splitter.split(buf);
        buf = &buf[step.consumed..];
        assert_eq!(step.skipped, None);
        let SplitOutcome::Record(r) = step.outcome else {
            break;
        };
        let view = MessageView::new(r.message).unwrap();
        got.push(view.to_owned_message().unwrap());
        assert_eq!(
            view.msg_type(),
            format!("type.{}", got.len() - 1).as_bytes()
        );
    }
    assert!(buf.is_empty());
    assert_eq!(got, sent);
    assert_eq!(splitter.counters().records, 50);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any messages, signed or not, come back unchanged whatever the read sizes.
    #[test]
    fn round_trip_in_random_reads(
        messages in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..600), 0u8..3),
            0..30,
        ),
        sizes in prop::collection::vec(1usize..700, 1..20),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (message, how) in &messages {
            let offset = stream.len() as u64;
            let signer = match how {
                0 => { encode_record(message, None, &mut stream).unwrap(); None }
                1 => { encode_record(message, Some(&ops_key()), &mut stream).unwrap(); Some("ops") }
                _ => { encode_record(message, Some(&dev_key()), &mut stream).unwrap(); Some("dev") }
            };
            expected.push(ok(offset, message, signer, stream.len() - offset as usize));
        }
        let events = run_chunked(&mut verifying_splitter(), &stream, &sizes);
        prop_assert_eq!(&events, &expected);
        let whole = run(&mut verifying_splitter(), &stream);
        prop_assert_eq!(&whole, &expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Corrupt data, resynchronisation, offsets

#[test]
fn checksummed_records_split_like_plain_ones_in_any_reads() {
    // The disk queue's records carry hekate's checksum field (15, fixed32); the splitter (and so
    // `hekate cat` and Heka) reads them as ordinary unsigned records and ignores the field, even
    // when the checksum is wrong.
    let messages: [&[u8]; 4] = [b"", b"one", &[0x1E; 200], &[7; 300]];
    let mut stream = Vec::new();
    let mut spans = Vec::new();
    for m in messages {
        let at = stream.len();
        encode_checksummed_record(m, 1024, &mut stream).unwrap();
        spans.push((at, stream.len() - at));
    }
    let (last, last_len) = spans[3];
    stream[last + last_len - 1] ^= 0xFF; // the checksum no longer matches
    let mut corrupted = messages[3].to_vec();
    corrupted[299] ^= 0xFF;
    let expected: Vec<Event> = messages[..3]
        .iter()
        .copied()
        .chain([&corrupted[..]])
        .zip(&spans)
        .map(|(m, &(at, len))| ok(at as u64, m, None, len))
        .collect();
    let mut splitter = HekaSplitter::new(1024);
    assert_eq!(run(&mut splitter, &stream), expected);
    assert_eq!(splitter.counters().records, 4);
    assert_eq!(splitter.counters().bad_header, 0);
    let mut chunked = HekaSplitter::new(1024);
    assert_eq!(run_chunked(&mut chunked, &stream, &[1, 2, 3, 5]), expected);
    // frame_at sees the same records, and which checksums hold.
    let verdicts: Vec<Option<bool>> = spans
        .iter()
        .map(|&(at, _)| match frame_at(&stream[at..], 1024) {
            FrameStatus::Complete(f) => f.checksum_matches(f.message(&stream[at..])),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(verdicts, [Some(true), Some(true), Some(true), Some(false)]);
}

#[test]
fn garbage_before_between_and_after_is_skipped_with_offsets() {
    let a = record(b"alpha");
    let b = record(b"bravo!");
    let mut stream = b"GARBAGE".to_vec(); // 0..7
    stream.extend_from_slice(&a); // 7..17
    stream.extend_from_slice(b"\x00\x01\x02"); // 17..20
    stream.extend_from_slice(&b); // 20..31
    stream.extend_from_slice(b"trailing junk"); // 31..44

    for sizes in [&[usize::MAX][..], &[1], &[3, 5], &[8]] {
        let mut splitter = HekaSplitter::default();
        let events = run_chunked(&mut splitter, &stream, sizes);
        assert_eq!(
            events,
            [
                Event::Skipped(region(0, 7, RegionCause::NoSeparator)),
                ok(7, b"alpha", None, 10),
                Event::Skipped(region(17, 3, RegionCause::NoSeparator)),
                ok(20, b"bravo!", None, 11),
                Event::Skipped(region(31, 13, RegionCause::NoSeparator)),
            ],
            "read sizes {sizes:?}"
        );
        let c = splitter.counters();
        assert_eq!((c.records, c.skipped_bytes, c.corrupt_regions), (2, 23, 3));
    }
    assert_eq!(
        region(31, 13, RegionCause::NoSeparator).to_string(),
        "skipped 13 bytes of corrupt data at offset 31 (no record separator)"
    );
}

#[test]
fn header_length_zero_is_skipped() {
    let mut stream = vec![0x1E, 0x00];
    stream.extend_from_slice(&record(b"ok"));
    let mut splitter = HekaSplitter::default();
    let events = run(&mut splitter, &stream);
    assert_eq!(
        events,
        [
            Event::Skipped(region(0, 2, RegionCause::EmptyHeader)),
            ok(2, b"ok", None, 7),
        ]
    );
    assert_eq!(splitter.counters().bad_header, 1);
}

#[test]
fn missing_unit_separator_is_skipped() {
    // H = 2 but the byte at 2 + H is not 0x1F.
    let mut stream = vec![0x1E, 0x02, 0x08, 0x02, 0x00, b'x', b'y'];
    stream.extend_from_slice(&record(b"ok"));
    let mut splitter = HekaSplitter::default();
    let events = run_chunked(&mut splitter, &stream, &[2]);
    assert_eq!(
        events,
        [
            Event::Skipped(region(0, 7, RegionCause::MissingUnitSeparator)),
            ok(7, b"ok", None, 7),
        ]
    );
    assert_eq!(splitter.counters().bad_header, 1);
}

#[test]
fn header_that_is_not_protobuf_is_skipped() {
    for header in [
        &[0x0A, 0x02][..],         // message_length with the bytes wire type
        &[0x18, 0x01],             // no message_length
        &[0x08, 0x80],             // truncated varint
        &[0x08, 0x02, 0x22, 0x09], // signer longer than the header
        &[0x08, 0x02, 0x0B, 0x0C], // a group
    ] {
        let mut stream = vec![0x1E, header.len() as u8];
        stream.extend_from_slice(header);
        stream.extend_from_slice(&[0x1F, b'h', b'i']);
        let bad_len = stream.len() as u64;
        stream.extend_from_slice(&record(b"ok"));
        let mut splitter = HekaSplitter::default();
        let events = run(&mut splitter, &stream);
        assert_eq!(
            events,
            [
                Event::Skipped(region(0, bad_len, RegionCause::BadHeader)),
                ok(bad_len, b"ok", None, 7),
            ],
            "header {header:02x?}"
        );
        assert_eq!(splitter.counters().bad_header, 1);
    }
}

#[test]
fn header_claiming_more_than_max_message_size_is_skipped() {
    let max = 100;
    let mut stream = Vec::new();
    encode_record_with_limit(&[b'x'; 101], None, 200, &mut stream).unwrap();
    let bad_len = stream.len() as u64;
    encode_record_with_limit(&[b'y'; 100], None, max, &mut stream).unwrap();

    let mut splitter = HekaSplitter::new(max);
    // The oversized header is rejected before its message arrives: no waiting for 101 bytes.
    let first = splitter.split(&stream[..6]);
    assert_eq!(first.consumed, 6);
    assert_eq!(first.outcome, SplitOutcome::NeedData);
    assert_eq!(splitter.counters().oversized, 1);

    let mut splitter = HekaSplitter::new(max);
    let events = run_chunked(&mut splitter, &stream, &[7]);
    assert_eq!(
        events,
        [
            Event::Skipped(region(0, bad_len, RegionCause::Oversized)),
            ok(bad_len, &[b'y'; 100], None, 105),
        ]
    );
    let c = splitter.counters();
    assert_eq!((c.oversized, c.bad_header, c.records), (1, 0, 1));
}

#[test]
fn message_exactly_at_max_message_size_passes_and_one_more_fails() {
    let max = 1000;
    let mut out = Vec::new();
    encode_record_with_limit(&[1; 1000], None, max, &mut out).unwrap();
    let err = encode_record_with_limit(&[1; 1001], None, max, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "message of 1001 bytes exceeds max_message_size 1000"
    );
    let err = encode_record(&[1; 65_537], None, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "message of 65537 bytes exceeds max_message_size 65536"
    );

    let mut splitter = HekaSplitter::new(max);
    assert_eq!(splitter.max_record_size(), 3 + 255 + 1000);
    let events = run(&mut splitter, &out);
    assert_eq!(events, [ok(0, &[1; 1000], None, out.len())]);

    let mut over = Vec::new();
    encode_record_with_limit(&[1; 1001], None, max + 1, &mut over).unwrap();
    let events = run(&mut HekaSplitter::new(max), &over);
    assert_eq!(
        events,
        [Event::Skipped(region(
            0,
            over.len() as u64,
            RegionCause::Oversized
        ))]
    );
}

#[test]
fn truncated_final_record_is_reported_at_finish() {
    let a = record(b"complete");
    let b = record(b"cut short by the end of the file");
    let mut stream = a.clone();
    stream.extend_from_slice(&b[..b.len() - 4]);

    let mut splitter = HekaSplitter::default();
    let events = run_chunked(&mut splitter, &stream, &[10]);
    let tail = (b.len() - 4) as u64;
    assert_eq!(
        events,
        [
            ok(0, b"complete", None, a.len()),
            Event::Truncated(region(a.len() as u64, tail, RegionCause::Truncated)),
        ]
    );
    let c = splitter.counters();
    assert_eq!(
        (c.truncated, c.corrupt_regions, c.skipped_bytes),
        (1, 0, tail)
    );
    assert_eq!(
        region(a.len() as u64, tail, RegionCause::Truncated).to_string(),
        format!("skipped a truncated record of {tail} bytes at offset 13")
    );

    // A stream that stops inside a header, and one that stops right after the separator.
    for cut in [1, 3] {
        let events = run(&mut HekaSplitter::default(), &b[..cut]);
        assert_eq!(
            events,
            [Event::Truncated(region(
                0,
                cut as u64,
                RegionCause::Truncated
            ))]
        );
    }
}

#[test]
fn records_inside_an_unfinished_tail_are_recovered_at_finish() {
    // A header whose length was corrupted to 5000 swallows what follows; at the end of the stream
    // the splitter resynchronises inside it instead of dropping the good record.
    let mut stream = vec![0x1E, 0x03, 0x08, 0x88, 0x27, 0x1F, b'?'];
    let good = record(b"good");
    stream.extend_from_slice(&good);
    stream.extend_from_slice(b"junk");

    let mut splitter = HekaSplitter::default();
    let events = run_chunked(&mut splitter, &stream, &[4]);
    assert_eq!(
        events,
        [
            Event::Skipped(region(0, 7, RegionCause::Truncated)),
            ok(7, b"good", None, good.len()),
            Event::Skipped(region(16, 4, RegionCause::NoSeparator)),
        ]
    );
}

#[test]
fn garbage_then_truncated_record_gives_two_regions() {
    let mut stream = b"xyz".to_vec();
    stream.extend_from_slice(&record(b"partial")[..6]);
    let events = run(&mut HekaSplitter::default(), &stream);
    assert_eq!(
        events,
        [
            Event::Skipped(region(0, 3, RegionCause::NoSeparator)),
            Event::Truncated(region(3, 6, RegionCause::Truncated)),
        ]
    );
}

#[test]
fn adjacent_bad_headers_and_garbage_form_one_region() {
    let mut stream = b"ab".to_vec();
    stream.extend_from_slice(&[0x1E, 0x00, 0x1E, 0x1E, 0x02, 0x08]); // H=0, H=0x1E, bad US
    stream.extend_from_slice(&[0x1E, 0x02, 0x08, 0x02, 0x00]);
    let bad_len = stream.len() as u64;
    // Long enough that the header claiming H = 0x1E can be checked (and fails) before the end.
    let good = record(&[b'k'; 40]);
    stream.extend_from_slice(&good);
    for sizes in [&[usize::MAX][..], &[1]] {
        let mut splitter = HekaSplitter::default();
        let events = run_chunked(&mut splitter, &stream, sizes);
        assert_eq!(
            events,
            [
                Event::Skipped(region(0, bad_len, RegionCause::NoSeparator)),
                ok(bad_len, &[b'k'; 40], None, good.len()),
            ]
        );
        let c = splitter.counters();
        assert_eq!((c.bad_header, c.corrupt_regions), (4, 1), "{sizes:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures

#[test]
fn md5_and_sha1_signed_records_verify_and_name_the_signer() {
    let mut stream = signed(b"from ops", &ops_key());
    let ops_len = stream.len();
    stream.extend_from_slice(&signed(b"from dev", &dev_key()));
    stream.extend_from_slice(&record(b"anonymous"));
    let mut splitter = verifying_splitter();
    let events = run(&mut splitter, &stream);
    let dev_len = signed(b"from dev", &dev_key()).len();
    assert_eq!(
        events,
        [
            ok(0, b"from ops", Some("ops"), ops_len),
            ok(ops_len as u64, b"from dev", Some("dev"), dev_len),
            ok((ops_len + dev_len) as u64, b"anonymous", None, 14),
        ]
    );
    assert_eq!(splitter.counters().records, 3);
}

#[test]
fn tampered_message_is_dropped_and_neighbours_survive() {
    let before = signed(b"before", &ops_key());
    let mut tampered = signed(b"transfer 100 coins", &ops_key());
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let after = signed(b"after", &dev_key());
    let stream = [before.clone(), tampered.clone(), after.clone()].concat();

    let mut splitter = verifying_splitter();
    let events = run_chunked(&mut splitter, &stream, &[13]);
    assert_eq!(
        events,
        [
            ok(0, b"before", Some("ops"), before.len()),
            Event::Rejected(Rejected {
                offset: before.len() as u64,
                len: tampered.len(),
                reason: RejectReason::BadSignature,
            }),
            ok(
                (before.len() + tampered.len()) as u64,
                b"after",
                Some("dev"),
                after.len()
            ),
        ]
    );
    let c = splitter.counters();
    assert_eq!(
        (c.records, c.signature_failures, c.skipped_bytes),
        (2, 1, 0)
    );

    // A tampered digest is caught the same way.
    let mut bad_digest = signed(b"x", &ops_key());
    let digest_at = bad_digest.len() - 3; // last digest byte: ... digest, 0x1F, 'x'
    bad_digest[digest_at] ^= 0x80;
    let events = run(&mut verifying_splitter(), &bad_digest);
    assert!(matches!(
        events[..],
        [Event::Rejected(Rejected {
            reason: RejectReason::BadSignature,
            ..
        })]
    ));
}

#[test]
fn unknown_signer_is_dropped_and_counted() {
    let stranger = SigningKey::new("eve", 1, HmacHashFunction::Md5, b"ops secret");
    let old_version = SigningKey::new("ops", 0, HmacHashFunction::Md5, b"ops secret");
    let stream = [
        signed(b"a", &stranger),
        record(b"plain"),
        signed(b"b", &old_version),
    ]
    .concat();
    let mut splitter = verifying_splitter();
    let events = run(&mut splitter, &stream);
    let reasons: Vec<_> = events
        .iter()
        .map(|e| match e {
            Event::Rejected(r) => Some(r.reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            Some(RejectReason::UnknownSigner),
            None,
            Some(RejectReason::UnknownSigner)
        ]
    );
    let c = splitter.counters();
    assert_eq!(
        (c.records, c.unknown_signer, c.signature_failures),
        (1, 2, 0)
    );

    // Without any trusted key, as in Heka, every signed record is from an unknown signer.
    let mut splitter = HekaSplitter::default();
    run(&mut splitter, &signed(b"a", &ops_key()));
    assert_eq!(splitter.counters().unknown_signer, 1);
}

#[test]
fn skip_authentication_passes_signed_records_unverified() {
    let mut tampered = signed(b"tampered", &ops_key());
    let last = tampered.len() - 1;
    tampered[last] ^= 0xFF;
    let stranger = signed(
        b"stranger",
        &SigningKey::new("eve", 9, HmacHashFunction::Sha1, b"k"),
    );
    let stream = [tampered, stranger].concat();

    let mut splitter = HekaSplitter::default().with_skip_authentication(true);
    let events = run(&mut splitter, &stream);
    assert_eq!(events.len(), 2);
    for e in &events {
        assert!(matches!(e, Event::Record { signer: None, .. }), "{e:?}");
    }
    let c = splitter.counters();
    assert_eq!(
        (c.records, c.unknown_signer, c.signature_failures),
        (2, 0, 0)
    );
}

#[test]
fn an_unsigned_header_naming_a_signer_is_not_attributed_to_it() {
    // hmac_signer and key version without an hmac: Heka would set the pack's signer; hekate
    // only names signers whose HMAC verified.
    let header = [0x08, 0x01, 0x22, 0x03, b'o', b'p', b's', 0x28, 0x01];
    let mut stream = vec![0x1E, header.len() as u8];
    stream.extend_from_slice(&header);
    stream.extend_from_slice(&[0x1F, b'!']);
    let events = run(&mut verifying_splitter(), &stream);
    assert_eq!(events, [ok(0, b"!", None, stream.len())]);
}

// ---------------------------------------------------------------------------------------------
// Any input: no panic, same answer whatever the read sizes, every byte accounted for

/// A piece of a test stream.
#[derive(Clone, Debug)]
enum Piece {
    Record(Vec<u8>, u8),
    Garbage(Vec<u8>),
    BadHeader(u8),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (prop::collection::vec(any::<u8>(), 0..300), 0u8..6).prop_map(|(m, s)| Piece::Record(m, s)),
        2 => prop::collection::vec(any::<u8>(), 1..40).prop_map(Piece::Garbage),
        1 => (0u8..4).prop_map(Piece::BadHeader),
    ]
}

/// Builds a stream from pieces and the events a correct splitter reports for it.
fn build(pieces: &[Piece], tail: Option<(Vec<u8>, usize)>) -> (Vec<u8>, Vec<Event>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut run: Option<Region> = None;
    let bad = |stream: &mut Vec<u8>, bytes: &[u8], cause, run: &mut Option<Region>| {
        match run {
            Some(r) => r.len += bytes.len() as u64,
            None => *run = Some(region(stream.len() as u64, bytes.len() as u64, cause)),
        }
        stream.extend_from_slice(bytes);
    };
    for p in pieces {
        match p {
            Piece::Garbage(g) => {
                let g: Vec<u8> = g
                    .iter()
                    .map(|&b| if b == RECORD_SEPARATOR { b'.' } else { b })
                    .collect();
                bad(&mut stream, &g, RegionCause::NoSeparator, &mut run);
            }
            Piece::BadHeader(kind) => {
                let (bytes, cause): (&[u8], _) = match kind {
                    0 => (&[0x1E, 0x00], RegionCause::EmptyHeader),
                    1 => (
                        &[0x1E, 0x02, 0x08, 0x01, 0x20, b'x'],
                        RegionCause::MissingUnitSeparator,
                    ),
                    2 => (
                        &[0x1E, 0x02, 0x18, 0x01, 0x1F, b'x'],
                        RegionCause::BadHeader,
                    ),
                    _ => (
                        &[0x1E, 0x04, 0x08, 0x80, 0x80, 0x08, 0x1F],
                        RegionCause::Oversized,
                    ),
                };
                bad(&mut stream, bytes, cause, &mut run);
            }
            Piece::Record(message, how) => {
                expected.extend(run.take().map(Event::Skipped));
                let offset = stream.len() as u64;
                let (key, signer, reject) = match how {
                    0 => (None, None, None),
                    1 => (Some(ops_key()), Some("ops"), None),
                    2 => (Some(dev_key()), Some("dev"), None),
                    3 => (
                        Some(SigningKey::new("eve", 1, HmacHashFunction::Md5, b"x")),
                        None,
                        Some(RejectReason::UnknownSigner),
                    ),
                    _ => (
                        Some(SigningKey::new("ops", 1, HmacHashFunction::Md5, b"wrong")),
                        None,
                        Some(RejectReason::BadSignature),
                    ),
                };
                encode_record(message, key.as_ref(), &mut stream).unwrap();
                let len = stream.len() - offset as usize;
                expected.push(match reject {
                    None => ok(offset, message, signer, len),
                    Some(reason) => Event::Rejected(Rejected {
                        offset,
                        len,
                        reason,
                    }),
                });
            }
        }
    }
    let tail_region = tail.map(|(message, cut)| {
        let full = record(&message);
        let cut = cut % full.len().max(1);
        let cut = cut.max(1);
        let offset = stream.len() as u64;
        stream.extend_from_slice(&full[..cut]);
        region(offset, cut as u64, RegionCause::Truncated)
    });
    expected.extend(run.take().map(Event::Skipped));
    expected.extend(tail_region.map(Event::Truncated));
    (stream, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Records survive garbage and bad headers around them; regions, offsets and rejections are
    /// exactly as built, whatever the read sizes.
    #[test]
    fn mixed_streams_split_as_built(
        pieces in prop::collection::vec(piece(), 0..25),
        tail in prop::option::of((
            prop::collection::vec(
                any::<u8>().prop_filter("no separators", |&b| b != RECORD_SEPARATOR && b != UNIT_SEPARATOR),
                1..100,
            ),
            any::<usize>(),
        )),
        sizes in prop::collection::vec(1usize..400, 1..10),
    ) {
        let (stream, expected) = build(&pieces, tail);
        let events = run_chunked(&mut verifying_splitter(), &stream, &sizes);
        prop_assert_eq!(&events, &expected);
        assert_partition(&events, stream.len());
    }

    /// Random bytes (with plenty of separators, and real records among them) never panic, every
    /// byte is accounted for, and the read sizes do not change the answer or the counters.
    #[test]
    fn random_bytes_are_split_the_same_in_any_reads(
        pieces in prop::collection::vec(
            prop_oneof![
                3 => prop::collection::vec(
                    prop_oneof![4 => any::<u8>(), 1 => Just(RECORD_SEPARATOR), 1 => Just(UNIT_SEPARATOR), 1 => 0u8..8],
                    0..200,
                ),
                1 => (prop::collection::vec(any::<u8>(), 0..300), any::<bool>()).prop_map(|(m, sign)| {
                    if sign { signed(&m, &ops_key()) } else { record(&m) }
                }),
            ],
            0..12,
        ),
        sizes in prop::collection::vec(1usize..300, 1..10),
        max in 0u32..400,
    ) {
        let bytes = pieces.concat();
        let mut whole = HekaSplitter::new(max).with_signers(trusted());
        let expected = run(&mut whole, &bytes);
        assert_partition(&expected, bytes.len());
        let mut chunked = HekaSplitter::new(max).with_signers(trusted());
        let events = run_chunked(&mut chunked, &bytes, &sizes);
        prop_assert_eq!(&events, &expected);
        prop_assert_eq!(whole.counters(), chunked.counters());
    }
}
