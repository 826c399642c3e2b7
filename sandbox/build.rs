//! Compiles, against the headers of mlua's vendored Lua 5.1 (`DEP_LUA_INCLUDE`, from mlua-sys):
//! `csrc/hekate_strlib.c` (Lua 5.1.5's pattern matcher with a step budget) and LPeg 1.0.2
//! (`csrc/lpeg/`, vendored from Debian's `lua-lpeg` 1.0.2-2, its matching machine with the same
//! step budget, `csrc/hekate_budget.h`). No system library is needed.

use std::env;

/// LPeg's C files (`lpprint.c` is empty unless `LPEG_DEBUG` is defined, as in Debian's build).
const LPEG: &[&str] = &["lpcap.c", "lpcode.c", "lpprint.c", "lptree.c", "lpvm.c"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc");
    let include = env::var_os("DEP_LUA_INCLUDE")
        .expect("mlua-sys (vendored Lua 5.1) gives its headers' directory as DEP_LUA_INCLUDE");
    // One archive: LPeg's matching machine calls hekate_charge in hekate_strlib.c.
    let mut build = cc::Build::new();
    build
        .file("csrc/hekate_strlib.c")
        .files(LPEG.iter().map(|f| format!("csrc/lpeg/{f}")))
        .include(include)
        .include("csrc")
        .warnings(true)
        // LPeg's two deliberate fall-throughs ("go through") are not in a form gcc recognises
        .flag_if_supported("-Wno-implicit-fallthrough")
        // optimised in every profile, as mlua's Lua is: a matcher step must cost no more than
        // the VM instruction it is charged as
        .opt_level(2);
    build.compile("hekate_csrc");
}
