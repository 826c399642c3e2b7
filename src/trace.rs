//! `hekate trace`: sample records through a configured input's splitter and decoder, and every
//! filter's and output's matcher on each message, saying why a message goes where.

use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hekate_config::Category;
use hekate_engine::plugin::{Built, TraceOrigin, Traced, trace};
use hekate_engine::runtime::Pipeline;
use hekate_model::message::MessageView;

use crate::{run, show};

/// Runs `hekate trace`.
pub fn run(config: &Path, input: Option<&str>, samples: &[PathBuf]) -> ExitCode {
    let registry = hekate_plugins::registry();
    let pipeline = match run::load(Some(config), &registry) {
        Ok((_, pipeline)) => pipeline,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match trace_samples(&pipeline, input, samples, &mut out)
        .and_then(|()| out.flush().map_err(|e| e.to_string()))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hekate trace: {e}");
            ExitCode::FAILURE
        }
    }
}

fn trace_samples(
    pipeline: &Pipeline,
    input: Option<&str>,
    samples: &[PathBuf],
    out: &mut impl Write,
) -> Result<(), String> {
    let inputs: Vec<_> = pipeline
        .plugins
        .iter()
        .filter_map(|p| match &p.built {
            Built::Input(i) => i.stream_spec().map(|s| (p, s)),
            _ => None,
        })
        .collect();
    let names = || {
        inputs
            .iter()
            .map(|(p, _)| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (info, (spec, msg_type)) = match input {
        Some(name) => inputs.iter().find(|(p, _)| p.name == name).ok_or_else(|| {
            format!(
                "no input `{name}` with a splitter in the config (inputs: {})",
                names()
            )
        })?,
        None if inputs.len() == 1 => &inputs[0],
        None if inputs.is_empty() => return Err("the config has no input with a splitter".into()),
        None => return Err(format!("which input? --input one of: {}", names())),
    };
    let routes: Vec<_> = pipeline
        .plugins
        .iter()
        .filter(|p| matches!(p.category, Category::Filter | Category::Output))
        .filter_map(|p| p.route.as_ref().map(|r| (p, r)))
        .collect();
    let origin = TraceOrigin {
        logger: &info.name,
        hostname: &pipeline.global.hostname,
        msg_type: *msg_type,
    };
    let w = |e: io::Error| e.to_string();
    let mut n = 0;
    for sample in samples {
        let data = if sample.as_os_str() == "-" {
            let mut data = Vec::new();
            io::stdin()
                .read_to_end(&mut data)
                .map_err(|e| format!("stdin: {e}"))?;
            data
        } else {
            std::fs::read(sample).map_err(|e| format!("{}: {e}", sample.display()))?
        };
        for traced in trace(spec, origin, &data) {
            match traced {
                Traced::Skipped { bytes, at_end } => writeln!(
                    out,
                    "skipped {bytes} bytes{}\n",
                    if at_end {
                        " at the end (an incomplete record)"
                    } else {
                        " (not a valid record)"
                    }
                )
                .map_err(w)?,
                Traced::Rejected => {
                    writeln!(out, "a record was rejected (bad or unknown signature)\n")
                        .map_err(w)?
                }
                Traced::Record {
                    record,
                    messages,
                    failure,
                } => {
                    n += 1;
                    if spec.splitter.use_message_bytes() {
                        writeln!(out, "record {n} ({} bytes, framed)", record.len()).map_err(w)?;
                    } else {
                        writeln!(
                            out,
                            "record {n} ({} bytes): {}",
                            record.len(),
                            preview(&record)
                        )
                        .map_err(w)?;
                    }
                    if let Some(why) = &failure {
                        writeln!(out, "  decode failed: {why}").map_err(w)?;
                    }
                    if messages.is_empty() {
                        writeln!(out, "  no message (dropped)\n").map_err(w)?;
                    }
                    for (i, bytes) in messages.iter().enumerate() {
                        let view = MessageView::new(bytes)
                            .map_err(|e| format!("the decoder made an invalid message: {e}"))?;
                        writeln!(out, "  message {}:", i + 1).map_err(w)?;
                        let mut text = Vec::new();
                        show::write_text(&mut text, &view).map_err(w)?;
                        for line in String::from_utf8_lossy(&text).lines() {
                            writeln!(out, "    {line}").map_err(w)?;
                        }
                        writeln!(out, "  routes:").map_err(w)?;
                        for (p, (matcher, signer)) in &routes {
                            let verdict = match matcher.explain(&view) {
                                None if signer.is_some() => format!(
                                    "no    (matches, but needs a message signed by `{}`)",
                                    signer.as_deref().unwrap_or_default()
                                ),
                                None => "yes".to_owned(),
                                Some(term) => format!("no    first failed: {term}"),
                            };
                            writeln!(
                                out,
                                "    {:<24} {:<6} {verdict}",
                                p.name,
                                match p.category {
                                    Category::Filter => "filter",
                                    _ => "output",
                                }
                            )
                            .map_err(w)?;
                        }
                        writeln!(out).map_err(w)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A record as text, cut at 120 characters.
fn preview(record: &[u8]) -> String {
    let text = String::from_utf8_lossy(record);
    let text = text.trim_end_matches(['\n', '\r']);
    let escaped: String = text.escape_debug().collect();
    match escaped.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}
