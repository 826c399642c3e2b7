//! State shared between a [`Sandbox`](crate::Sandbox) and the Lua functions it registers.
//!
//! The current message and the host are borrowed only for the duration of one call. They are
//! kept here as raw pointers, set by [`CallScope::enter`] and cleared when the scope drops, so
//! the API functions (registered once, `'static`) can reach them without a per-call closure.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::rc::Rc;

use hekate_model::message::{Message, MessageView};

use crate::config::{ConfigValue, PluginType};
use crate::host::SandboxHost;
use crate::memory::MemoryAccount;
use crate::raw_table::Scratch;

/// The message a call reads: a zero-copy view or an owned message.
#[derive(Clone, Copy, Debug)]
pub enum MessageRef<'a> {
    /// A view over encoded bytes (the hot path).
    View(&'a MessageView<'a>),
    /// An owned message.
    Owned(&'a Message),
}

impl<'a> From<&'a MessageView<'a>> for MessageRef<'a> {
    fn from(v: &'a MessageView<'a>) -> Self {
        MessageRef::View(v)
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(m: &'a Message) -> Self {
        MessageRef::Owned(m)
    }
}

/// Lifetime-erased [`MessageRef`].
#[derive(Clone, Copy)]
pub(crate) enum CurrentPtr {
    None,
    View(*const MessageView<'static>),
    Owned(*const Message),
}

pub(crate) struct Shared {
    pub(crate) plugin_type: PluginType,
    pub(crate) name: String,
    pub(crate) hostname: String,
    pub(crate) output_limit: usize,
    pub(crate) config: HashMap<String, ConfigValue>,
    pub(crate) account: Rc<MemoryAccount>,

    current: Cell<CurrentPtr>,
    host: Cell<Option<NonNull<dyn SandboxHost + 'static>>>,
    /// The copy made by the first `write_message` of a call (copy-on-write).
    pub(crate) written: RefCell<Option<Message>>,
    /// Encoding of `written` / an owned current message, for `read_message("raw")`.
    pub(crate) raw_cache: RefCell<Option<Vec<u8>>>,
    pub(crate) next_field: Cell<usize>,
    pub(crate) payload: RefCell<Vec<u8>>,
    pub(crate) inject_count: Cell<u32>,
    pub(crate) inject_limit: Cell<u32>,
    /// An error that terminates the sandbox even if the script catches it.
    pub(crate) fatal: RefCell<Option<String>>,
    /// The host aborted an injection (shutdown).
    pub(crate) aborted: Cell<bool>,
    pub(crate) max_output: Cell<usize>,
    pub(crate) injected: Cell<u64>,
    /// An error text parked by a C function before it raises it.
    pub(crate) error_text: RefCell<String>,
    /// Buffers of the table encoder.
    pub(crate) scratch: RefCell<Scratch>,
}

impl Shared {
    pub(crate) fn new(
        plugin_type: PluginType,
        name: String,
        hostname: String,
        output_limit: usize,
        config: HashMap<String, ConfigValue>,
        account: Rc<MemoryAccount>,
    ) -> Self {
        Shared {
            plugin_type,
            name,
            hostname,
            output_limit,
            config,
            account,
            current: Cell::new(CurrentPtr::None),
            host: Cell::new(None),
            written: RefCell::new(None),
            raw_cache: RefCell::new(None),
            next_field: Cell::new(0),
            payload: RefCell::new(Vec::new()),
            inject_count: Cell::new(0),
            inject_limit: Cell::new(0),
            fatal: RefCell::new(None),
            aborted: Cell::new(false),
            max_output: Cell::new(0),
            injected: Cell::new(0),
            error_text: RefCell::new(String::new()),
            scratch: RefCell::new(Scratch::default()),
        }
    }

    /// The message of the current call: the written copy if any, else what the host passed.
    ///
    /// # Safety
    /// The result must not outlive the current API function invocation, and `written` must not
    /// be mutably borrowed while it is alive.
    pub(crate) unsafe fn message(&self) -> Option<MessageRef<'_>> {
        // SAFETY: `written` is only replaced by write_message, never while a MessageRef from this
        // function is alive (caller contract).
        if let Some(m) = unsafe { &*self.written.as_ptr() } {
            return Some(MessageRef::Owned(m));
        }
        // SAFETY: forwarded caller contract.
        unsafe { self.original_message() }
    }

    /// The message the host passed to the current call (ignoring any written copy).
    ///
    /// # Safety
    /// The result must not outlive the current API function invocation.
    pub(crate) unsafe fn original_message(&self) -> Option<MessageRef<'_>> {
        match self.current.get() {
            CurrentPtr::None => None,
            // SAFETY: set by CallScope for the duration of the call only.
            CurrentPtr::View(p) => Some(MessageRef::View(unsafe { &*p })),
            CurrentPtr::Owned(p) => Some(MessageRef::Owned(unsafe { &*p })),
        }
    }

    /// Runs `f` with the host of the current call; `None` outside a call.
    pub(crate) fn with_host<R>(&self, f: impl FnOnce(&mut dyn SandboxHost) -> R) -> Option<R> {
        let host = self.host.take()?;
        // SAFETY: the pointer was set by CallScope from a `&mut` that lives for the whole call;
        // taking it out of the cell for the duration of `f` prevents a second `&mut` (reentrant
        // use from within `f` sees no host).
        let r = f(unsafe { &mut *host.as_ptr() });
        self.host.set(Some(host));
        Some(r)
    }

    /// The current time according to the host (the system clock outside a call).
    pub(crate) fn now_ns(&self) -> i64 {
        self.with_host(|h| h.now_ns())
            .unwrap_or_else(crate::host::system_now_ns)
    }
}

/// Installs the message and host of one call into [`Shared`] and removes them on drop.
pub(crate) struct CallScope<'s> {
    shared: &'s Shared,
}

impl<'s> CallScope<'s> {
    pub(crate) fn enter(
        shared: &'s Shared,
        msg: Option<MessageRef<'_>>,
        host: &mut dyn SandboxHost,
        inject_limit: u32,
    ) -> Self {
        let current = match msg {
            None => CurrentPtr::None,
            Some(MessageRef::View(v)) => CurrentPtr::View((v as *const MessageView<'_>).cast()),
            Some(MessageRef::Owned(m)) => CurrentPtr::Owned(m),
        };
        shared.current.set(current);
        let host: NonNull<dyn SandboxHost + '_> = NonNull::from(host);
        // SAFETY: only the lifetime bound is erased; the pointer is removed in Drop, before the
        // borrow it came from ends.
        let host: NonNull<dyn SandboxHost + 'static> = unsafe { std::mem::transmute(host) };
        shared.host.set(Some(host));
        *shared.written.borrow_mut() = None;
        *shared.raw_cache.borrow_mut() = None;
        shared.next_field.set(0);
        shared.inject_count.set(0);
        shared.inject_limit.set(inject_limit);
        *shared.fatal.borrow_mut() = None;
        shared.aborted.set(false);
        CallScope { shared }
    }
}

impl Drop for CallScope<'_> {
    fn drop(&mut self) {
        self.shared.current.set(CurrentPtr::None);
        self.shared.host.set(None);
        *self.shared.raw_cache.borrow_mut() = None;
    }
}
