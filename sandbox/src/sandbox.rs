//! [`Sandbox`]: one Lua 5.1 state running one Heka plugin script.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use hekate_model::message::{Field, Message};
use mlua::chunk::ChunkMode;
use mlua::ffi::{self, lua_Debug, lua_State};
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value, Variadic};

use crate::abort::aborts;
use crate::config::{PluginType, SandboxConfig, ScriptSource};
use crate::error::{SandboxError, Terminated};
use crate::host::SandboxHost;
use crate::lua_util::{error_text, loc};
use crate::memory::MemoryAccount;
use crate::modules::{BUILTINS_KEY, LOADED_KEY, ModuleConfig};
use crate::state::{CallScope, MessageRef, Shared};
use crate::strlib::Charged;
use crate::{api, cfunc, preserve, read, strlib, time_util};

/// What a successful `process_message` / `timer_event` call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Status 0.
    Ok,
    /// Encoders: status -2, no output and not an error.
    Skip,
    /// A negative status: the message failed (ProcessMessageFailures++), the sandbox runs on.
    Failed {
        /// The status the script returned.
        status: i32,
        /// The optional error message it returned.
        message: Option<String>,
    },
    /// The host aborted an injection (shutdown); the sandbox is not terminated, so its data can
    /// still be preserved.
    Aborted,
}

/// Whether a sandbox still runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxStatus {
    /// Calls are accepted.
    Running,
    /// A limit was broken, the script failed or returned a fatal status; calls are refused.
    Terminated(String),
}

/// Counters for Heka's sandbox report fields (reference §7.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxStats {
    /// Bytes in use (Lua heap + circular buffers).
    pub memory: usize,
    /// Peak of `memory`, sampled after each call.
    pub max_memory: usize,
    /// Largest payload buffer seen.
    pub max_output: usize,
    /// `process_message` calls.
    pub process_message_count: u64,
    /// `process_message` calls that returned a negative status.
    pub process_message_failures: u64,
    /// `timer_event` calls.
    pub timer_event_count: u64,
    /// Messages (or encoder outputs) handed to the host.
    pub inject_message_count: u64,
    /// Most Lua instructions one `process_message` or `timer_event` call ran, counted in steps
    /// of [`INSTRUCTION_STEP`] (a call shorter than one step counts 0), with the steps of the
    /// pattern matcher of `string.find`, `match`, `gmatch` and `gsub` and of LPeg's matching
    /// machine counted as instructions.
    pub max_instructions: u64,
}

/// The instruction-count hook fires every this many instructions (fewer when the limit is
/// closer), which is the resolution of [`SandboxStats::max_instructions`].
pub const INSTRUCTION_STEP: u32 = 1000;

/// Without an instruction limit (inputs, `instruction_limit = 0`) the hook still fires every this
/// many instructions, to see whether SIGUSR2 aborted the sandbox.
const ABORT_CHECK_STEP: u32 = 100_000;

/// The termination reason of a sandbox aborted by SIGUSR2.
const ABORTED_BY_SIGNAL: &str = "aborted by SIGUSR2";

/// Instructions counted in the running call. Only one sandbox call runs at a time on a thread,
/// so one counter per thread serves every sandbox on it.
#[derive(Clone, Copy, Default)]
struct Budget {
    /// A call runs under the hook (outside one, e.g. while preserved data is restored, the
    /// string functions charge nothing).
    active: bool,
    /// Instructions counted so far (at each hook), plus the string and LPeg matchers' steps.
    used: u32,
    /// The count the hook was last set to fire after.
    step: u32,
    /// The call's limit (0: none).
    limit: u32,
    /// [`aborts`](crate::abort_all) when the sandbox was created: a different count aborts the call.
    abort_mark: u64,
}

thread_local! {
    static BUDGET: Cell<Budget> = Cell::new(Budget::default());
}

/// One Lua sandbox; see the crate docs for the lifecycle.
///
/// The sandbox is `!Send`: it lives on the core that runs it.
pub struct Sandbox {
    lua: Lua,
    shared: Rc<Shared>,
    /// The main Lua thread, for the instruction-count hook.
    state: *mut lua_State,
    plugin_type: PluginType,
    instruction_limit: u32,
    /// [`aborts`](crate::abort_all) at creation (SIGUSR2 aborts sandboxes that exist).
    abort_mark: u64,
    max_process_inject: u32,
    max_timer_inject: u32,
    process_fn: Option<Function>,
    timer_fn: Option<Function>,
    preservation: Option<PathBuf>,
    terminated: Option<String>,
    stats: SandboxStats,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("name", &self.shared.name)
            .field("plugin_type", &self.plugin_type)
            .field("terminated", &self.terminated)
            .finish_non_exhaustive()
    }
}

/// The count hook: counts the instructions of the running call and raises once it runs more
/// than instruction_limit VM instructions.
unsafe extern "C-unwind" fn instruction_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    let mut b = BUDGET.with(Cell::get);
    if aborts() != b.abort_mark {
        // SAFETY: as below.
        unsafe { raise_from_hook(l, c"aborted by SIGUSR2") }
    }
    if b.limit == 0 {
        // no limit: only watching for an abort
        return;
    }
    if b.used < b.limit {
        b.used = b.used.saturating_add(b.step);
        if b.used < b.limit {
            b.step = INSTRUCTION_STEP.min(b.limit - b.used);
            BUDGET.with(|c| c.set(b));
            let n = c_int::try_from(b.step).unwrap_or(c_int::MAX);
            // SAFETY: lua_sethook neither allocates nor raises; `l` is the running state.
            unsafe { ffi::lua_sethook(l, Some(instruction_hook), ffi::LUA_MASKCOUNT, n) };
            return;
        }
        BUDGET.with(|c| c.set(b));
    }
    // SAFETY: called by Lua on a live state.
    unsafe { raise_from_hook(l, c"instruction_limit exceeded") }
}

/// Charges `steps` of the string matcher ([`crate::strlib`]) or of LPeg's matching machine
/// (`csrc/lpeg/lpvm.c`) to the running call's budget, and says whether the matcher may go on.
/// When it may not, the hook is set to fire at the next instruction, so that a `pcall` around
/// the string or LPeg function cannot swallow the error the matcher raises: the hook raises it
/// again.
pub(crate) fn charge(l: *mut lua_State, steps: u32) -> Charged {
    let mut b = BUDGET.with(Cell::get);
    if !b.active {
        return Charged::Go;
    }
    let verdict = if aborts() != b.abort_mark {
        Charged::Aborted
    } else if b.limit == 0 {
        return Charged::Go;
    } else {
        b.used = b.used.saturating_add(steps);
        BUDGET.with(|c| c.set(b));
        if b.used < b.limit {
            return Charged::Go;
        }
        Charged::LimitExceeded
    };
    // SAFETY: lua_sethook neither allocates nor raises; `l` is the running state.
    unsafe { ffi::lua_sethook(l, Some(instruction_hook), ffi::LUA_MASKCOUNT, 1) };
    verdict
}

/// Raises `what` at the running Lua function. From now on every instruction raises, so a pcall
/// in the script cannot swallow it: the error propagates to the entry point.
///
/// # Safety
/// Called from the instruction hook on the live state `l`.
unsafe fn raise_from_hook(l: *mut lua_State, what: &std::ffi::CStr) -> ! {
    // SAFETY: forwarded; nothing with a destructor is alive in this frame.
    unsafe {
        ffi::lua_sethook(l, Some(instruction_hook), ffi::LUA_MASKCOUNT, 1);
        // Level 0 inside a hook is the running Lua function: report where it was stopped.
        ffi::luaL_where(l, 0);
        ffi::lua_pushstring(l, what.as_ptr());
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

/// Makes errors raised by Rust functions (mlua wraps them in userdata) plain strings for
/// `pcall`/`xpcall`, as they are under hekad.
const PCALL_SHIM: &str = r#"
local errstr, raw_pcall, raw_xpcall = ...
local function fix(ok, ...)
  if ok then return ok, ... end
  return false, errstr((...))
end
pcall = function(f, ...) return fix(raw_pcall(f, ...)) end
xpcall = function(f, h) return raw_xpcall(f, function(e) return h(errstr(e)) end) end
"#;

impl Sandbox {
    /// Builds a sandbox: sets up the environment for `plugin_type`, runs the script's global
    /// code under the limits, then restores preserved data when configured.
    pub fn new(
        source: ScriptSource,
        plugin_type: PluginType,
        name: impl Into<String>,
        config: SandboxConfig,
    ) -> Result<Self, SandboxError> {
        let name = name.into();
        let (chunk_name, code) = match source {
            ScriptSource::Source { name, code } => (format!("@{name}"), code.into_bytes()),
            ScriptSource::File(path) => {
                let code = std::fs::read(&path).map_err(|source| SandboxError::ReadScript {
                    path: path.clone(),
                    source,
                })?;
                (format!("@{}", path.display()), code)
            }
        };
        let strict = plugin_type.is_strict();
        let mut libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::OS;
        if !strict {
            libs |= StdLib::IO;
        }
        let lua = Lua::new_with(libs, LuaOptions::default())
            .map_err(|e| SandboxError::Init(e.to_string()))?;
        let account = MemoryAccount::new(config.memory_limit);
        lua.set_app_data(account.clone());
        let shared = Rc::new(Shared::new(
            plugin_type,
            name,
            config.hostname.clone(),
            config.output_limit,
            config.config.clone(),
            account,
        ));
        // SAFETY: exec_raw runs the closure in protected mode; it only reads the state pointer.
        let state = unsafe {
            let mut state: *mut lua_State = std::ptr::null_mut();
            lua.exec_raw::<()>((), |l| state = l)
                .map_err(|e| SandboxError::Init(e.to_string()))?;
            state
        };
        let modules = ModuleConfig::new(&config.module_directory, config.output_limit);
        setup_environment(&lua, &shared, plugin_type, modules)
            .map_err(|e| SandboxError::Init(error_text(&e)))?;
        if config.memory_limit > 0 {
            lua.set_memory_limit(config.memory_limit)
                .map_err(|e| SandboxError::Init(e.to_string()))?;
        }
        let mut sb = Sandbox {
            lua,
            shared,
            state,
            plugin_type,
            instruction_limit: config.instruction_limit,
            abort_mark: aborts(),
            max_process_inject: config.max_process_inject,
            max_timer_inject: config.max_timer_inject,
            process_fn: None,
            timer_fn: None,
            preservation: config
                .preserve_data
                .then_some(config.preservation_path)
                .flatten(),
            terminated: None,
            stats: SandboxStats::default(),
        };

        sb.set_hook(true);
        let loaded = sb
            .lua
            .load(&code[..])
            .set_name(chunk_name)
            .set_mode(ChunkMode::Text)
            .into_function()
            .and_then(|f| f.call::<()>(()));
        sb.set_hook(false);
        if let Err(e) = loaded {
            return Err(SandboxError::Load(sb.describe_error(&e)));
        }
        if let Some(path) = sb.preservation.clone() {
            sb.restore(&path)?;
        }
        let globals = sb.lua.globals();
        sb.process_fn = globals
            .raw_get::<Option<Function>>("process_message")
            .ok()
            .flatten();
        sb.timer_fn = globals
            .raw_get::<Option<Function>>("timer_event")
            .ok()
            .flatten();
        sb.sample_memory();
        Ok(sb)
    }

    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The plugin type.
    pub fn plugin_type(&self) -> PluginType {
        self.plugin_type
    }

    /// Running or terminated (with the reason).
    pub fn status(&self) -> SandboxStatus {
        match &self.terminated {
            None => SandboxStatus::Running,
            Some(r) => SandboxStatus::Terminated(r.clone()),
        }
    }

    /// True when the script defines `timer_event` (required iff ticker_interval > 0).
    pub fn has_timer_event(&self) -> bool {
        self.timer_fn.is_some()
    }

    /// True when the script defines `process_message`.
    pub fn has_process_message(&self) -> bool {
        self.process_fn.is_some()
    }

    /// Report counters.
    pub fn stats(&self) -> SandboxStats {
        let mut s = self.stats.clone();
        s.memory = self.memory_in_use();
        s.max_memory = s.max_memory.max(s.memory);
        s.max_output = self.shared.max_output.get();
        s.inject_message_count = self.shared.injected.get();
        s
    }

    fn memory_in_use(&self) -> usize {
        self.lua.used_memory() + self.shared.account.external.get()
    }

    fn sample_memory(&mut self) {
        let m = self.memory_in_use();
        if m > self.stats.max_memory {
            self.stats.max_memory = m;
        }
    }

    /// Installs (or removes) the instruction-count hook, resetting the count. Inputs run
    /// without an instruction limit; the hook then only watches for SIGUSR2's abort.
    fn set_hook(&self, on: bool) {
        if on {
            let limit = if self.plugin_type == PluginType::Input {
                0
            } else {
                self.instruction_limit
            };
            let step = match limit {
                0 => ABORT_CHECK_STEP,
                l => INSTRUCTION_STEP.min(l),
            };
            BUDGET.with(|c| {
                c.set(Budget {
                    active: true,
                    used: 0,
                    step,
                    limit,
                    abort_mark: self.abort_mark,
                })
            });
            let n = c_int::try_from(step).unwrap_or(c_int::MAX);
            // SAFETY: lua_sethook neither allocates nor raises; `state` is the live main thread.
            unsafe { ffi::lua_sethook(self.state, Some(instruction_hook), ffi::LUA_MASKCOUNT, n) };
        } else {
            BUDGET.with(|c| {
                let mut b = c.get();
                b.active = false;
                c.set(b);
            });
            // SAFETY: as above.
            unsafe { ffi::lua_sethook(self.state, None, 0, 0) };
        }
    }

    /// After a call under the hook: records how many instructions it ran.
    fn count_instructions(&mut self) {
        if self.instruction_limit > 0 {
            let used = u64::from(BUDGET.with(Cell::get).used.min(self.instruction_limit));
            self.stats.max_instructions = self.stats.max_instructions.max(used);
        }
    }

    fn describe_error(&self, e: &mlua::Error) -> String {
        if is_memory_error(e) {
            return "memory_limit exceeded".into();
        }
        error_text(e)
    }

    fn terminate(&mut self, reason: String) -> Terminated {
        self.terminated = Some(reason.clone());
        self.set_hook(false);
        Terminated { reason }
    }

    fn refresh_memory_limit(&self) {
        let account = &self.shared.account;
        if account.dirty.replace(false) && account.limit > 0 {
            let _ = self.lua.set_memory_limit(account.lua_limit());
        }
    }

    /// Runs `process_message()` for `msg`.
    ///
    /// For decoders and encoders, a message changed with `write_message` is available from
    /// [`take_written_message`](Self::take_written_message) afterwards.
    pub fn process_message<'m>(
        &mut self,
        msg: impl Into<MessageRef<'m>>,
        host: &mut dyn SandboxHost,
    ) -> Result<Outcome, Terminated> {
        self.run_process_message(Some(msg.into()), host)
    }

    /// Runs an input's `process_message()`, its long-running entry point (no current message,
    /// no instruction limit). It returns when the script returns, or with
    /// [`Outcome::Aborted`] once the host answers an injection with [`InjectError::Aborted`]
    /// (shutdown).
    ///
    /// [`InjectError::Aborted`]: crate::InjectError::Aborted
    pub fn run_input(&mut self, host: &mut dyn SandboxHost) -> Result<Outcome, Terminated> {
        self.run_process_message(None, host)
    }

    /// A global function of the script, looked up again when it was not defined at load time.
    fn entry_point(&mut self, timer: bool) -> Option<&Function> {
        let (slot, name) = if timer {
            (&mut self.timer_fn, "timer_event")
        } else {
            (&mut self.process_fn, "process_message")
        };
        if slot.is_none() {
            *slot = self
                .lua
                .globals()
                .raw_get::<Option<Function>>(name)
                .ok()
                .flatten();
        }
        slot.as_ref()
    }

    fn run_process_message(
        &mut self,
        msg: Option<MessageRef<'_>>,
        host: &mut dyn SandboxHost,
    ) -> Result<Outcome, Terminated> {
        const F: &str = "process_message";
        if let Some(r) = &self.terminated {
            return Err(Terminated { reason: r.clone() });
        }
        if aborts() != self.abort_mark {
            return Err(self.terminate(format!("{F}() {ABORTED_BY_SIGNAL}")));
        }
        if self.entry_point(false).is_none() {
            return Err(self.terminate(format!("{F}() function was not found")));
        }
        self.stats.process_message_count += 1;
        let limit = if self.plugin_type == PluginType::Filter {
            self.max_process_inject
        } else {
            0
        };
        self.refresh_memory_limit();
        let result = {
            let _scope = CallScope::enter(&self.shared, msg, host, limit);
            self.set_hook(true);
            // Called by reference: a clone of the function would take and release a slot of
            // Lua's reference table on every message.
            let r = self
                .process_fn
                .as_ref()
                .map(|f| f.call::<(Value, Value)>(()))
                .expect("looked up above");
            self.set_hook(false);
            r
        };
        if self.plugin_type != PluginType::Input {
            self.count_instructions();
        }
        self.sample_memory();
        let fatal = self.shared.fatal.borrow_mut().take();
        if let Some(fatal) = fatal {
            return Err(self.terminate(format!("{F}() {fatal}")));
        }
        let (status, message) = match result {
            Ok(r) => r,
            Err(e) => {
                let text = self.describe_error(&e);
                if self.shared.aborted.get() || text.ends_with("aborted") {
                    return Ok(Outcome::Aborted);
                }
                return Err(self.terminate(format!("{F}() {text}")));
            }
        };
        let status = match status {
            Value::Integer(i) => i as f64,
            Value::Number(d) => d,
            _ => return Err(self.terminate(format!("{F}() must return a numeric error code"))),
        };
        let message = match message {
            Value::Nil => None,
            Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            _ => {
                return Err(
                    self.terminate(format!("{F}() must return a nil or string error message"))
                );
            }
        };
        let status = status as i32;
        match status {
            0 => Ok(Outcome::Ok),
            s if s > 0 => Err(self.terminate(match message {
                Some(m) => format!("{F}() returned fatal error code {s}: {m}"),
                None => format!("{F}() returned fatal error code {s}"),
            })),
            -2 if self.plugin_type == PluginType::Encoder => Ok(Outcome::Skip),
            s => {
                self.stats.process_message_failures += 1;
                Ok(Outcome::Failed { status: s, message })
            }
        }
    }

    /// The message as changed by `write_message` during the last `process_message`, if it was
    /// changed (decoders: pass it on instead of the original; encoders: encode it).
    pub fn take_written_message(&mut self) -> Option<Message> {
        self.shared.written.borrow_mut().take()
    }

    /// Runs `timer_event(ns)`, then a full garbage collection.
    pub fn timer_event(
        &mut self,
        ns: i64,
        host: &mut dyn SandboxHost,
    ) -> Result<Outcome, Terminated> {
        const F: &str = "timer_event";
        if let Some(r) = &self.terminated {
            return Err(Terminated { reason: r.clone() });
        }
        if aborts() != self.abort_mark {
            return Err(self.terminate(format!("{F}() {ABORTED_BY_SIGNAL}")));
        }
        let Some(func) = self.entry_point(true).cloned() else {
            return Err(self.terminate(format!("{F}() function was not found")));
        };
        self.stats.timer_event_count += 1;
        let limit = if self.plugin_type == PluginType::Filter {
            self.max_timer_inject
        } else {
            0
        };
        self.refresh_memory_limit();
        let result = {
            let _scope = CallScope::enter(&self.shared, None, host, limit);
            self.set_hook(true);
            let r = func.call::<()>(ns as f64);
            self.set_hook(false);
            r
        };
        self.count_instructions();
        self.sample_memory();
        let _ = self.lua.gc_collect();
        let fatal = self.shared.fatal.borrow_mut().take();
        if let Some(fatal) = fatal {
            return Err(self.terminate(format!("{F}() {fatal}")));
        }
        match result {
            Ok(()) => Ok(Outcome::Ok),
            Err(e) => {
                let text = self.describe_error(&e);
                if self.shared.aborted.get() || text.ends_with("aborted") {
                    return Ok(Outcome::Aborted);
                }
                Err(self.terminate(format!("{F}() {text}")))
            }
        }
    }

    /// Tables that are part of the environment, not script data.
    fn environment_tables(&self) -> Vec<*const c_void> {
        let mut skip = vec![self.lua.globals().to_pointer()];
        for key in [BUILTINS_KEY, LOADED_KEY] {
            if let Ok(t) = self.lua.named_registry_value::<Table>(key) {
                skip.push(t.to_pointer());
                for (_, v) in t.pairs::<Value, Value>().flatten() {
                    if let Value::Table(t) = v {
                        skip.push(t.to_pointer());
                    }
                }
            }
        }
        skip
    }

    /// Writes the global data to the preservation file (shutdown). Refused for a terminated
    /// sandbox, whose state may be inconsistent.
    pub fn preserve(&mut self) -> Result<(), SandboxError> {
        let Some(path) = self.preservation.clone() else {
            return Err(SandboxError::PreservationDisabled);
        };
        if let Some(r) = &self.terminated {
            return Err(SandboxError::Terminated(r.clone()));
        }
        let err = |reason: String| SandboxError::Preserve {
            path: path.clone(),
            reason,
        };
        let version = match self.lua.globals().raw_get::<Value>("_PRESERVATION_VERSION") {
            Ok(Value::Integer(i)) => i,
            Ok(Value::Number(d)) => d as i64,
            _ => 0,
        };
        let skip = self.environment_tables();
        let text = preserve::serialize(&self.lua.globals(), &skip, version)
            .map_err(|e| err(error_text(&e)))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let tmp = path.with_extension("data.tmp");
        std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))
    }

    fn restore(&mut self, path: &Path) -> Result<(), SandboxError> {
        let code = match std::fs::read(path) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(SandboxError::Restore {
                    path: path.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        // Restoring may run long on big data; only the memory limit applies.
        let r = self
            .lua
            .load(&code[..])
            .set_name(format!("@{}", path.display()))
            .set_mode(ChunkMode::Text)
            .into_function()
            .and_then(|f| f.call::<()>(()));
        r.map_err(|e| SandboxError::Restore {
            path: path.to_owned(),
            reason: self.describe_error(&e),
        })
    }

    /// Runs a Lua snippet in the sandbox's global environment (tests and tools).
    #[doc(hidden)]
    pub fn eval<R: mlua::FromLuaMulti>(&self, code: &str) -> mlua::Result<R> {
        self.lua.load(code).set_mode(ChunkMode::Text).eval()
    }
}

fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory_error(cause),
        mlua::Error::RuntimeError(s) => s.starts_with("not enough memory"),
        _ => false,
    }
}

fn setup_environment(
    lua: &Lua,
    shared: &Rc<Shared>,
    plugin_type: PluginType,
    modules: ModuleConfig,
) -> mlua::Result<()> {
    let g = lua.globals();
    let strict = plugin_type.is_strict();

    // Library tables `require` hands out, captured before the script can touch them.
    let builtins = lua.create_table()?;
    for name in ["string", "table", "math", "os", "io", "coroutine"] {
        if let Value::Table(t) = g.raw_get::<Value>(name)? {
            builtins.raw_set(name, t)?;
        }
    }
    builtins.raw_set("_G", &g)?;
    // string.find, match, gmatch and gsub within the instruction limit and SIGUSR2's reach.
    strlib::install(lua, &g.raw_get::<Table>("string")?)?;
    lua.set_named_registry_value(BUILTINS_KEY, builtins)?;
    lua.set_named_registry_value(LOADED_KEY, lua.create_table()?)?;

    // The sandbox's local time zone is UTC.
    let os: Table = g.raw_get("os")?;
    os.raw_set(
        "date",
        lua.create_function(|lua, a| loc(lua, time_util::os_date(lua, a)))?,
    )?;
    // SAFETY: a plain lua_CFunction.
    os.raw_set("time", unsafe { lua.create_c_function(cfunc::os_time)? })?;
    os.raw_set(
        "difftime",
        lua.create_function(|lua, a| loc(lua, time_util::os_difftime(lua, a)))?,
    )?;

    let removed: &[&str] = if strict {
        &[
            "collectgarbage",
            "coroutine",
            "dofile",
            "load",
            "loadfile",
            "loadstring",
            "newproxy",
            "print",
            "module",
            "package",
        ]
    } else {
        &[
            "dofile",
            "load",
            "loadfile",
            "loadstring",
            "print",
            "module",
            "package",
        ]
    };
    for name in removed {
        g.raw_set(*name, Value::Nil)?;
    }
    let os_removed: &[&str] = if strict {
        &[
            "getenv",
            "execute",
            "exit",
            "remove",
            "rename",
            "setlocale",
            "tmpname",
        ]
    } else {
        &["exit", "setlocale"]
    };
    for name in os_removed {
        os.raw_set(*name, Value::Nil)?;
    }

    // Errors from Rust functions reach pcall as plain strings.
    let errstr = lua.create_function(|lua, v: Value| {
        Ok(match v {
            Value::Error(e) => Value::String(lua.create_string(error_text(&e))?),
            other => other,
        })
    })?;
    let pcall: Value = g.raw_get("pcall")?;
    let xpcall: Value = g.raw_get("xpcall")?;
    lua.load(PCALL_SHIM)
        .set_name("=pcall")
        .call::<()>((errstr, pcall, xpcall))?;

    let strict_modules = strict;
    g.raw_set(
        "require",
        lua.create_function(move |lua, v: Value| {
            loc(
                lua,
                crate::modules::require(lua, &modules, strict_modules, v),
            )
        })?,
    )?;

    let s = shared.clone();
    g.raw_set(
        "read_config",
        lua.create_function(move |lua, v: Value| {
            let name = loc(lua, crate::lua_util::check_string(&v, 1, "read_config"))?;
            read::read_config(lua, &s, &name)
        })?,
    )?;
    g.raw_set(
        "decode_message",
        lua.create_function(|lua, v: Value| loc(lua, api::decode_message(lua, v)))?,
    )?;
    if plugin_type.can_read() {
        // SAFETY: `shared` is kept alive by the Sandbox (and the closures below) for as long as
        // the Lua state exists.
        let rm = unsafe { cfunc::create(lua, Rc::as_ptr(shared), cfunc::read_message)? };
        g.raw_set("read_message", rm)?;
        let s = shared.clone();
        g.raw_set(
            "read_next_field",
            lua.create_function(move |lua, ()| read::read_next_field(lua, &s))?,
        )?;
    }
    if plugin_type.can_inject_message() {
        // SAFETY: as for read_message.
        let im = unsafe { cfunc::create(lua, Rc::as_ptr(shared), cfunc::inject_message)? };
        g.raw_set("inject_message", im)?;
    }
    if plugin_type.can_inject_payload() {
        let s = shared.clone();
        g.raw_set(
            "inject_payload",
            lua.create_function(move |lua, a: Variadic<Value>| {
                loc(lua, api::inject_payload(&s, a))
            })?,
        )?;
        let s = shared.clone();
        g.raw_set(
            "add_to_payload",
            lua.create_function(move |lua, a: Variadic<Value>| {
                loc(lua, api::add_to_payload(&s, a))
            })?,
        )?;
    }
    if plugin_type.can_write() {
        let s = shared.clone();
        g.raw_set(
            "write_message",
            lua.create_function(move |lua, a: Variadic<Value>| {
                loc(lua, api::write_message(&s, a))
            })?,
        )?;
    }
    Ok(())
}

/// The `heka.sandbox-terminated` message announcing that plugin `plugin_name` stopped for
/// `reason` (Logger `hekad`, Field `plugin`, Payload = reason).
pub fn termination_message(plugin_name: &str, reason: &str) -> Message {
    let mut m = Message::new_now();
    m.r#type = Some("heka.sandbox-terminated".into());
    m.logger = Some("hekad".into());
    m.payload = Some(reason.into());
    m.fields.push(Field::string("plugin", plugin_name));
    m
}
