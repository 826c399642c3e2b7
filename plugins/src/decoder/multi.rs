//! MultiDecoder: runs other decoders on each record, as Heka's MultiDecoder does.
//!
//! ```toml
//! [shipped]
//! type = "MultiDecoder"
//! subs = ["nginx_access", "anything"]
//! cascade_strategy = "first-wins"
//! log_sub_errors = false
//!
//! [nginx_access]
//! type = "PayloadRegexDecoder"
//! match_regex = '^(?P<RemoteIP>\S+) \S+ \S+ \[(?P<Timestamp>[^\]]+)\] "(?P<Method>[A-Z]+) (?P<Url>\S+)'
//! timestamp_layout = "02/Jan/2006:15:04:05 -0700"
//!
//! [nginx_access.message_fields]
//! Type = "nginx.access"
//! Method = "%Method%"
//!
//! [anything]
//! type = "PayloadRegexDecoder"
//! match_regex = '^(?P<TheData>.*)'
//!
//! [anything.message_fields]
//! Type = "unparsed"
//! ```
//!
//! - `first-wins`: each decoder of `subs` in turn gets the record, until one decodes it; its
//!   messages are the result.
//! - `all`: the decoders are applied in a chain: the first gets the record, each next one every
//!   message the previous step left (a decoder that fails on a message passes it on unchanged),
//!   so a PayloadRegexDecoder can parse and a ScribbleDecoder then tag the result.
//!
//! Either way the record fails (`All subdecoders failed.`: counted, and with the input's
//! `send_decode_failures` passed on with `decode_failure = true`) only when no decoder decoded
//! it. A decoder that produces no message counts as failing, as in Heka. After the first step
//! the decoders of `all` receive encoded messages: text decoders then read the message's
//! Payload and keep its headers and fields.
//!
//! `subs` names decoder sections of the same config; each runs its own instance per worker
//! core inside the MultiDecoder (a decoder used only as a sub is not used by itself). A name
//! that is not a decoder, and `subs` that lead back to the MultiDecoder (directly or through
//! another MultiDecoder), are refused when the config is checked, with the names.
//!
//! Report fields: `ProcessMessageCount-<sub>` and `ProcessMessageFailures-<sub>` for each sub,
//! `ProcessMessageFailures` for records no sub decoded, and each sub's own fields as
//! `<sub>.<field>`.
//!
//! Options: `subs` (required, at least one), `cascade_strategy` ("first-wins"),
//! `log_sub_errors` (false: log each sub's failure).

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, PluginType,
    RecordSource, ReportSink, options_of,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "MultiDecoder",
    source: include_str!("multi.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn first_wins() -> String {
    "first-wins".into()
}

/// MultiDecoder's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The decoder sections to run, in order.
    subs: Vec<String>,
    /// "first-wins" (stop at the first decoder that decodes the record) or "all" (apply every
    /// decoder, each to what the previous ones produced).
    #[serde(default = "first_wins")]
    cascade_strategy: String,
    /// Log every failure of a sub decoder.
    #[serde(default)]
    log_sub_errors: bool,
}

#[derive(Debug)]
struct MultiDecoderPlugin {
    name: String,
    subs: Vec<(String, Arc<dyn DecoderPlugin>)>,
    all: bool,
    log_sub_errors: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let name = section.name();
    if opts.subs.is_empty() {
        return Err(section.error_at_value(
            "subs",
            format!("MultiDecoder [{name}] needs at least one decoder in `subs`"),
        ));
    }
    let all = match opts.cascade_strategy.as_str() {
        "first-wins" => false,
        "all" => true,
        other => {
            return Err(section.error_at_value(
                "cascade_strategy",
                format!(
                    "unrecognized cascade strategy {other:?} of [{name}]: \"first-wins\" or \"all\""
                ),
            ));
        }
    };
    let mut subs = Vec::with_capacity(opts.subs.len());
    for sub in &opts.subs {
        if sub == name {
            return Err(section.error_at_value(
                "subs",
                format!("MultiDecoder [{name}] cannot contain itself"),
            ));
        }
        let Some(d) = ctx.decoder(sub) else {
            return Err(section.error_at_value(
                "subs",
                format!(
                    "MultiDecoder [{name}] uses `{sub}`, which is not a decoder section of this config"
                ),
            ));
        };
        subs.push((sub.clone(), d));
    }
    Ok(Built::Decoder(Arc::new(MultiDecoderPlugin {
        name: name.to_string(),
        subs,
        all,
        log_sub_errors: opts.log_sub_errors,
    })))
}

impl DecoderPlugin for MultiDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(MultiDecoder {
            name: self.name.clone(),
            subs: self
                .subs
                .iter()
                .map(|(n, d)| Sub {
                    name: n.clone(),
                    decoder: d.new_decoder(),
                    count: 0,
                    failures: 0,
                })
                .collect(),
            all: self.all,
            log_sub_errors: self.log_sub_errors,
            failures: 0,
            scratch: DecodedMessages::default(),
            current: DecodedMessages::default(),
            next: DecodedMessages::default(),
        })
    }
}

struct Sub {
    name: String,
    decoder: Box<dyn Decoder>,
    count: u64,
    failures: u64,
}

/// One running MultiDecoder (one per shard), with its own instance of every sub.
struct MultiDecoder {
    name: String,
    subs: Vec<Sub>,
    all: bool,
    log_sub_errors: bool,
    failures: u64,
    /// What one sub produced.
    scratch: DecodedMessages,
    /// `all`: the messages of the last step, and those of the step being taken.
    current: DecodedMessages,
    next: DecodedMessages,
}

impl Sub {
    /// Runs the sub on `record`; `Some(decoded)` when it produced something, with what it
    /// produced in `scratch` (the record itself for `Decoded::Record`). Messages a failing sub
    /// leaves (a sandbox's termination notice) go straight to `out`.
    fn run(
        &mut self,
        multi: &str,
        log: bool,
        record: &[u8],
        source: &RecordSource<'_>,
        scratch: &mut DecodedMessages,
        out: &mut DecodedMessages,
    ) -> bool {
        self.count += 1;
        scratch.clear();
        match self.decoder.decode(record, source, scratch) {
            Ok(Decoded::Record) => {
                scratch.clear();
                scratch.push_encoded(record);
                true
            }
            Ok(Decoded::Messages(n)) if n > 0 => true,
            outcome => {
                self.failures += 1;
                if let Err(e) = outcome {
                    for m in scratch.iter() {
                        out.push_encoded(m);
                    }
                    if log {
                        tracing::warn!(
                            "Decoder '{multi}': Subdecoder '{}' decode error: {e}",
                            self.name
                        );
                    }
                }
                false
            }
        }
    }
}

fn append(from: &DecodedMessages, to: &mut DecodedMessages) {
    for m in from.iter() {
        to.push_encoded(m);
    }
}

impl Decoder for MultiDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        let announced = out.len();
        if !self.all {
            for sub in &mut self.subs {
                if sub.run(
                    &self.name,
                    self.log_sub_errors,
                    record,
                    source,
                    &mut self.scratch,
                    out,
                ) {
                    append(&self.scratch, out);
                    return Ok(Decoded::Messages(out.len() - announced));
                }
            }
            self.failures += 1;
            return Err(DecodeError("All subdecoders failed.".into()));
        }
        // `all`: until a sub decodes the record, the pack is the record itself.
        let mut decoded = false;
        let as_message = RecordSource {
            message_bytes: true,
            ..*source
        };
        self.current.clear();
        for sub in &mut self.subs {
            if !decoded {
                if sub.run(
                    &self.name,
                    self.log_sub_errors,
                    record,
                    source,
                    &mut self.scratch,
                    out,
                ) {
                    decoded = true;
                    self.current.clear();
                    append(&self.scratch, &mut self.current);
                }
                continue;
            }
            self.next.clear();
            for m in self.current.iter() {
                if sub.run(
                    &self.name,
                    self.log_sub_errors,
                    m,
                    &as_message,
                    &mut self.scratch,
                    out,
                ) {
                    append(&self.scratch, &mut self.next);
                } else {
                    self.next.push_encoded(m);
                }
            }
            std::mem::swap(&mut self.current, &mut self.next);
        }
        if !decoded {
            self.failures += 1;
            return Err(DecodeError("All subdecoders failed.".into()));
        }
        append(&self.current, out);
        Ok(Decoded::Messages(out.len() - announced))
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        for sub in &self.subs {
            sink.int(
                &format!("ProcessMessageCount-{}", sub.name),
                sub.count as i64,
                "count",
            );
            sink.int(
                &format!("ProcessMessageFailures-{}", sub.name),
                sub.failures as i64,
                "count",
            );
            sub.decoder.report(&mut Prefixed {
                prefix: &sub.name,
                sink,
            });
        }
        sink.int("ProcessMessageFailures", self.failures as i64, "count");
    }
}

/// A report sink that names every field `<prefix>.<name>`.
struct Prefixed<'a> {
    prefix: &'a str,
    sink: &'a mut dyn ReportSink,
}

impl ReportSink for Prefixed<'_> {
    fn int(&mut self, name: &str, value: i64, representation: &str) {
        self.sink
            .int(&format!("{}.{name}", self.prefix), value, representation);
    }

    fn float(&mut self, name: &str, value: f64, representation: &str) {
        self.sink
            .float(&format!("{}.{name}", self.prefix), value, representation);
    }

    fn string(&mut self, name: &str, value: &str) {
        self.sink.string(&format!("{}.{name}", self.prefix), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::{build as build_config, build_doc_sample};
    use hekate_model::message::{Message, MessageView};

    const SRC: RecordSource<'static> = RecordSource {
        input: "in",
        hostname: "h",
        message_bytes: false,
        msg_type: None,
        fields: &[],
    };

    const INPUT: &str = "\n[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n";

    const SUBS: &str = r#"
[numbers]
type = "PayloadRegexDecoder"
match_regex = '^(?P<n>\d+)$'
[numbers.message_fields]
Type = "number"
"n||int" = "%n%"

[words]
type = "PayloadRegexDecoder"
match_regex = '^(?P<w>[a-z]+)$'
[words.message_fields]
Type = "word"

[tagged]
type = "PayloadRegexDecoder"
match_regex = '(?P<all>.*)'
[tagged.message_fields]
tag = "seen %all%"
"#;

    /// Builds `config` as hekate would and returns the decoder `name`.
    fn decoder(config: &str, name: &str) -> Box<dyn Decoder> {
        let toml = format!("{config}{INPUT}");
        let pipeline = build_config(&toml).unwrap();
        let p = pipeline
            .plugins
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no plugin {name}"));
        match &p.built {
            Built::Decoder(d) => d.new_decoder(),
            _ => panic!("{name} is not a decoder"),
        }
    }

    fn decode(d: &mut Box<dyn Decoder>, line: &str) -> Result<Vec<Message>, DecodeError> {
        let mut out = DecodedMessages::default();
        let n = match d.decode(line.as_bytes(), &SRC, &mut out)? {
            Decoded::Messages(n) => n,
            Decoded::Record => panic!("a payload record is no message"),
        };
        assert_eq!(n, out.len());
        Ok(out
            .iter()
            .map(|b| {
                MessageView::new(b).unwrap();
                Message::decode_bytes(b).unwrap()
            })
            .collect())
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("multi.rs"));
    }

    #[test]
    fn first_wins_takes_the_first_decoder_that_decodes() {
        // The MultiDecoder comes before its subs in the file: they are built first all the same.
        let config =
            format!("[m]\ntype = \"MultiDecoder\"\nsubs = [\"numbers\", \"words\"]\n{SUBS}");
        let mut d = decoder(&config, "m");
        let m = &decode(&mut d, "42\n").unwrap()[0];
        assert_eq!(m.r#type.as_deref(), Some("number"));
        assert_eq!(m.find_first_field("n").unwrap().value_integer, [42]);
        let m = &decode(&mut d, "hello").unwrap()[0];
        assert_eq!(m.r#type.as_deref(), Some("word"));
        assert_eq!(
            decode(&mut d, "Hello 42").unwrap_err().0,
            "All subdecoders failed."
        );
        let mut report = hekate_engine::plugin::FieldCollector::default();
        d.report(&mut report);
        let value = |n: &str| {
            report
                .fields
                .iter()
                .find(|f| f.name == n)
                .map(|f| format!("{:?}", f.value))
                .unwrap_or_default()
        };
        assert_eq!(value("ProcessMessageCount-numbers"), "Int(3)");
        assert_eq!(value("ProcessMessageFailures-numbers"), "Int(2)");
        assert_eq!(value("ProcessMessageCount-words"), "Int(2)");
        assert_eq!(value("ProcessMessageFailures"), "Int(1)");
        assert_eq!(value("numbers.NoMatchCount"), "Int(0)");
    }

    #[test]
    fn all_chains_every_decoder_over_what_the_previous_made() {
        let config = format!(
            "[m]\ntype = \"MultiDecoder\"\nsubs = [\"numbers\", \"words\", \"tagged\"]\ncascade_strategy = \"all\"\n{SUBS}"
        );
        let mut d = decoder(&config, "m");
        // numbers decodes; words fails on the message and passes it on; tagged adds a field.
        let msgs = decode(&mut d, "42").unwrap();
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(m.r#type.as_deref(), Some("number"));
        assert_eq!(m.find_first_field("n").unwrap().value_integer, [42]);
        assert_eq!(m.find_first_field("tag").unwrap().value_string, ["seen 42"]);
        assert_eq!(m.payload.as_deref(), Some("42"));
        assert_eq!(m.logger.as_deref(), Some("in"));
        // The first decoder fails, the second decodes the record itself.
        let m = &decode(&mut d, "abc").unwrap()[0];
        assert_eq!(m.r#type.as_deref(), Some("word"));
        assert_eq!(
            m.find_first_field("tag").unwrap().value_string,
            ["seen abc"]
        );
        // Nothing decodes: a failure.
        let config = format!(
            "[m]\ntype = \"MultiDecoder\"\nsubs = [\"numbers\", \"words\"]\ncascade_strategy = \"all\"\n{SUBS}"
        );
        let mut d = decoder(&config, "m");
        assert!(decode(&mut d, "A1").is_err());
    }

    #[test]
    fn nested_multi_decoders_build_in_dependency_order() {
        let config = format!(
            "[outer]\ntype = \"MultiDecoder\"\nsubs = [\"inner\", \"words\"]\n\n[inner]\ntype = \"MultiDecoder\"\nsubs = [\"numbers\"]\n{SUBS}"
        );
        let mut d = decoder(&config, "outer");
        assert_eq!(
            decode(&mut d, "7").unwrap()[0].r#type.as_deref(),
            Some("number")
        );
        assert_eq!(
            decode(&mut d, "x").unwrap()[0].r#type.as_deref(),
            Some("word")
        );
    }

    #[test]
    fn cycles_unknown_subs_and_bad_strategies_are_refused_with_the_names() {
        let err = |config: &str| build_config(&format!("{config}{SUBS}{INPUT}")).unwrap_err();
        let e = err(
            "[a]\ntype = \"MultiDecoder\"\nsubs = [\"b\"]\n[b]\ntype = \"MultiDecoder\"\nsubs = [\"words\", \"a\"]\n",
        );
        assert!(e.contains("a → b → a") || e.contains("b → a → b"), "{e}");
        assert!(e.contains("[a]") && e.contains("[b]"), "{e}");
        let e = err("[a]\ntype = \"MultiDecoder\"\nsubs = [\"a\"]\n");
        assert!(e.contains("a → a"), "{e}");
        let e = err("[a]\ntype = \"MultiDecoder\"\nsubs = [\"words\", \"nope\"]\n");
        assert!(e.contains("`nope`") && e.contains("[a]"), "{e}");
        let e = err("[a]\ntype = \"MultiDecoder\"\nsubs = [\"in\"]\n");
        assert!(e.contains("`in`"), "{e}");
        let e = err("[a]\ntype = \"MultiDecoder\"\nsubs = []\n");
        assert!(e.contains("at least one"), "{e}");
        let e =
            err("[a]\ntype = \"MultiDecoder\"\nsubs = [\"words\"]\ncascade_strategy = \"some\"\n");
        assert!(e.contains("cascade strategy"), "{e}");
        // An input using a MultiDecoder that failed is not reported again.
        let e = err(
            "[a]\ntype = \"MultiDecoder\"\nsubs = [\"nope\"]\n[in2]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\ndecoder = \"a\"\n",
        );
        assert_eq!(e.matches("nope").count(), 1, "{e}");
    }
}
