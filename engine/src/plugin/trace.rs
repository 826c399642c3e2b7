//! Records through an input's splitter and decoder, synchronously and without a running
//! pipeline: what `hekate trace` shows. The same splitter, decoder and payload-message code as
//! [`RecordStream`](super::RecordStream), without the router.

use super::kinds::{Decoded, DecodedMessages, RecordSource, SplitOutcome};
use super::stream::{PayloadOrigin, StreamSpec, encode_payload_message};
use hekate_model::message::MessageView;

/// What became of a piece of the input.
#[derive(Debug)]
pub enum Traced {
    /// A record, and the messages it became (encoded). `failure` says why the decoder refused
    /// it; the messages are then what the input routes anyway (with `send_decode_failures`,
    /// the record as a payload flagged `decode_failure`).
    Record {
        /// The record as the splitter cut it.
        record: Vec<u8>,
        /// The messages routed for it, encoded.
        messages: Vec<Vec<u8>>,
        /// The decoder's error, if it failed.
        failure: Option<String>,
    },
    /// A well-framed record the splitter refused (bad or unknown signature).
    Rejected,
    /// Bytes the splitter skipped: garbage between records, or an incomplete record at the end.
    Skipped {
        /// How many.
        bytes: u64,
        /// At the end of the input (an incomplete last record).
        at_end: bool,
    },
}

/// Who the input says messages built from payloads come from.
#[derive(Debug, Clone, Copy)]
pub struct TraceOrigin<'a> {
    /// Logger: the input's name (or its stream's).
    pub logger: &'a str,
    /// Hostname.
    pub hostname: &'a str,
    /// The Type the input gives such messages, if any.
    pub msg_type: Option<&'a str>,
}

/// Splits `data` (a whole stream, ended) with `spec`'s splitter and decodes every record with
/// its decoder, as the input would.
pub fn trace(spec: &StreamSpec, origin: TraceOrigin<'_>, data: &[u8]) -> Vec<Traced> {
    let mut splitter = spec.splitter.new_splitter(spec.signers.as_ref());
    let mut decoder = spec.decoder.as_ref().map(|d| d.new_decoder());
    let message_bytes = spec.splitter.use_message_bytes();
    let protobuf = spec.decoder.as_ref().is_some_and(|d| d.is_protobuf())
        || (spec.decoder.is_none() && message_bytes);
    let payload_origin = PayloadOrigin {
        logger: origin.logger,
        msg_type: origin.msg_type,
        severity: None,
        hostname: origin.hostname,
        fields: &[],
        timestamp: hekate_model::writer::now_ns(),
    };
    let payload = |record: &[u8], failure: Option<bool>| {
        let mut out = Vec::new();
        encode_payload_message(&mut out, record, &payload_origin, failure);
        out
    };
    let mut traced = Vec::new();
    let mut start = 0;
    let mut eof = false;
    loop {
        let rest = &data[start..];
        if rest.is_empty() {
            break;
        }
        let step = if eof {
            splitter.finish(rest)
        } else {
            splitter.split(rest)
        };
        start += step.consumed;
        if step.skipped > 0 {
            traced.push(Traced::Skipped {
                bytes: step.skipped,
                at_end: eof,
            });
        }
        match step.outcome {
            SplitOutcome::Record { bytes, .. } => {
                let (messages, failure) = if protobuf {
                    match MessageView::new(bytes) {
                        Ok(_) => (vec![bytes.to_vec()], None),
                        Err(e) => (Vec::new(), Some(e.to_string())),
                    }
                } else if let Some(decoder) = &mut decoder {
                    let mut out = DecodedMessages::default();
                    let source = RecordSource {
                        input: origin.logger,
                        hostname: origin.hostname,
                        message_bytes,
                        msg_type: origin.msg_type,
                        fields: &[],
                    };
                    match decoder.decode(bytes, &source, &mut out) {
                        Ok(Decoded::Record) => (vec![bytes.to_vec()], None),
                        Ok(Decoded::Messages(_)) => {
                            (out.iter().map(<[u8]>::to_vec).collect(), None)
                        }
                        Err(e) => (out.iter().map(<[u8]>::to_vec).collect(), Some(e.0)),
                    }
                } else {
                    (vec![payload(bytes, None)], None)
                };
                let mut messages = messages;
                if failure.is_some() && spec.send_decode_failures {
                    messages.push(payload(bytes, Some(true)));
                }
                traced.push(Traced::Record {
                    record: bytes.to_vec(),
                    messages,
                    failure,
                });
            }
            SplitOutcome::Rejected => traced.push(Traced::Rejected),
            SplitOutcome::NeedData => {
                if eof {
                    if start < data.len() {
                        traced.push(Traced::Skipped {
                            bytes: (data.len() - start) as u64,
                            at_end: true,
                        });
                    }
                    break;
                }
                eof = true;
                continue;
            }
        }
        if step.consumed == 0 && !eof {
            eof = true;
        } else if step.consumed == 0 {
            break;
        }
    }
    traced
}
