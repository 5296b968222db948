//! Builds the server clock shim (`shim/locksim_clock.c`) into a shared object that the
//! processes provider embeds and preloads into every `redis-server` it starts.

use std::path::PathBuf;

fn main() {
    let src = "shim/locksim_clock.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("liblocksim_clock.so");
    // The `cc` crate finds the C compiler the way cargo users expect (CC, the target's cc);
    // it builds static archives only, so the shared object is linked by its command.
    let compiler = cc::Build::new()
        .opt_level(2)
        .pic(true)
        .cargo_metadata(false)
        .get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-Wall", "-o"])
        .arg(&out)
        .arg(src)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("building the clock shim {src} failed ({s}): is libc6-dev installed?"),
        Err(e) => panic!("cannot run the C compiler for the clock shim {src}: {e} (install gcc)"),
    }
    println!("cargo:rustc-env=LOCKSIM_CLOCK_SHIM={}", out.display());
}
