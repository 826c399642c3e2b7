//! Compiles `csrc/hekate_strlib.c` (Lua 5.1.5's pattern matcher with a step budget) against
//! the headers of mlua's vendored Lua (`DEP_LUA_INCLUDE`, from mlua-sys), and links LPeg from
//! Debian's `lua-lpeg-dev` (`liblua5.1-lpeg.a`, built against the Lua 5.1 ABI that mlua's
//! vendored Lua 5.1.5 also has). `HEKATE_LPEG_LIB_DIR` overrides the search.

use std::env;
use std::path::{Path, PathBuf};

const LIB: &str = "lua5.1-lpeg";

fn main() {
    println!("cargo:rerun-if-env-changed=HEKATE_LPEG_LIB_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/hekate_strlib.c");
    let include = env::var_os("DEP_LUA_INCLUDE")
        .expect("mlua-sys (vendored Lua 5.1) gives its headers' directory as DEP_LUA_INCLUDE");
    cc::Build::new()
        .file("csrc/hekate_strlib.c")
        .include(include)
        .warnings(true)
        // optimised in every profile, as mlua's Lua is: a matcher step must cost no more than
        // the VM instruction it is charged as
        .opt_level(2)
        .compile("hekate_strlib");
    let file = format!("lib{LIB}.a");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = env::var("HEKATE_LPEG_LIB_DIR") {
        candidates.push(dir.into());
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        other => other,
    };
    candidates.push(Path::new("/usr/lib").join(multiarch));
    candidates.push("/usr/lib".into());
    candidates.push("/usr/local/lib".into());
    match candidates.iter().find(|d| d.join(&file).is_file()) {
        Some(dir) => {
            println!("cargo:rerun-if-changed={}", dir.join(&file).display());
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=static={LIB}");
        }
        None => {
            let searched: Vec<String> =
                candidates.iter().map(|d| d.display().to_string()).collect();
            panic!(
                "{file} not found (searched {}). Install LPeg for Lua 5.1: `apt-get install lua-lpeg-dev`, \
                 or set HEKATE_LPEG_LIB_DIR to the directory holding {file}.",
                searched.join(", ")
            );
        }
    }
}
