//! hekate's Lua sandbox: Heka's Lua API on a Lua 5.1 state, so that existing Heka Lua
//! decoders, filters and encoders run unmodified.
//!
//! # Lifecycle
//!
//! ```text
//! Sandbox::new(script, plugin type, name, SandboxConfig)
//!   ├─ environment for the plugin type (reference §5.2, §5.4), limits installed
//!   ├─ the script's global code runs (under the limits)
//!   └─ preserved data restored (preserve_data)
//! process_message(msg, host) / timer_event(ns, host)   ← any number of times
//!   └─ Ok(Outcome) | Err(Terminated)  → build termination_message(name, reason), stop feeding it
//! preserve()                                           ← on shutdown
//! ```
//!
//! # Example
//!
//! ```
//! use hekate_model::message::{Message, MessageView};
//! use hekate_sandbox::{Outcome, PluginType, Sandbox, SandboxConfig, ScriptSource, VecHost};
//!
//! let script = r#"
//!     count = 0
//!     function process_message()
//!         count = count + 1
//!         inject_message({Type = "seen", Payload = read_message("Type")})
//!         return 0
//!     end"#;
//! let mut sb = Sandbox::new(
//!     ScriptSource::source("counter.lua", script),
//!     PluginType::Filter,
//!     "Counter",
//!     SandboxConfig::default(),
//! )?;
//! let mut m = Message::new_now();
//! m.r#type = Some("nginx.access".into());
//! let bytes = m.to_bytes();
//! let mut host = VecHost::new();
//! assert_eq!(sb.process_message(&MessageView::new(&bytes)?, &mut host), Ok(Outcome::Ok));
//! let injected = host.messages();
//! assert_eq!(injected[0].r#type.as_deref(), Some("heka.sandbox.seen"));
//! assert_eq!(injected[0].logger.as_deref(), Some("Counter"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Host interface
//!
//! Each call gets the message to read — a zero-copy [`MessageView`](hekate_model::message::MessageView)
//! (hot path) or an owned [`Message`](hekate_model::message::Message), see [`MessageRef`] — and a
//! [`SandboxHost`], borrowed for that call only. The host receives each injected message as its
//! complete protobuf encoding (Uuid and Timestamp filled in; in filters the `heka.sandbox.` Type
//! prefix, Logger and Hostname applied), encoded straight from the Lua table into a buffer the
//! sandbox reuses, so the runtime copies it into its own message buffer and routes it with a
//! `MessageView`. The host can refuse a message ([`InjectError`]); the refusal becomes the script's
//! Lua error, as in hekad. `read_message` reads straight from the view; neither side allocates
//! per message on these paths. Decoders and encoders that call `write_message` work on a copy of
//! the message, available after the call from [`Sandbox::take_written_message`] (a decoder that
//! injected nothing passes that copy, or the original, on). Inputs run their long-lived
//! `process_message` with [`Sandbox::run_input`].
//!
//! A `Sandbox` is `!Send`: it lives on the core that runs it.
//!
//! # Limits
//!
//! `memory_limit` (Lua heap + circular buffers, hyperloglogs, bloom and cuckoo filters),
//! `instruction_limit` (per call: VM instructions through the count hook, plus the steps of the
//! pattern matcher of `string.find`, `match`, `gmatch` and `gsub`, which is Lua 5.1.5's own with
//! a step counter, `csrc/hekate_strlib.c`, and the steps of LPeg's matching machine, LPeg 1.0.2
//! built from `csrc/lpeg/` with the same counter), `output_limit` (payload buffer, injected message,
//! `cjson.encode`), `max_process_inject` / `max_timer_inject` (filters). Breaking a limit, an
//! uncaught Lua error, a fatal (> 0) or non-numeric status terminates the sandbox: every later
//! call returns the same [`Terminated`]. [`abort_all`] (SIGUSR2) is checked at the same points.
//!
//! Out of reach of both is LPeg's pattern compiler (`lpeg.P` on a grammar, a new pattern's first
//! match), exponential for grammars whose rules start with the rule below in both alternatives.
//!
//! # Modules
//!
//! `require` gives `string`, `table`, `math`, `os` (restricted, UTC), `lpeg` and `re` (LPeg 1.0.2,
//! vendored from Debian's `lua-lpeg` 1.0.2-2), `cjson`, `struct` (binary pack/unpack, v0.2 as Heka
//! builds it), `circular_buffer`, `hyperloglog`, `bloom_filter`, `cuckoo_filter`, `sax`, and
//! `<name>.lua` files from the `;`-separated `module_directory`. Bytecode is never loaded.

#![warn(missing_docs)]

mod abort;
mod api;
mod bloom_filter;
mod cfunc;
mod circular_buffer;
mod cjson;
mod config;
mod cuckoo_filter;
mod error;
mod host;
mod hyperloglog;
mod lua_literal;
mod lua_util;
mod memory;
mod message_table;
mod modules;
mod number;
mod preserve;
mod raw_table;
mod read;
mod sandbox;
mod sax;
mod state;
mod strlib;
mod struct_lib;
mod time_util;

pub use abort::abort_all;
pub use circular_buffer::{Aggregation, CircularBuffer, Format};
pub use config::{ConfigValue, PluginType, SandboxConfig, ScriptSource, preservation_file_name};
pub use error::{InjectError, SandboxError, Terminated};
pub use host::{SandboxHost, VecHost, system_now_ns};
pub use number::{format_g, number_string, write_number};
pub use sandbox::{
    INSTRUCTION_STEP, Outcome, Sandbox, SandboxStats, SandboxStatus, termination_message,
};
pub use state::MessageRef;
