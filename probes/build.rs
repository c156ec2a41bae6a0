//! Compiles the kernel programs and generates their typed skeleton.
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/netio.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            // v3 for the atomic exchange and compare-exchange of the socket
            // path (Linux 5.12+; 5.10 loads the same object because the
            // loader turns that path off and the verifier drops it).
            "-mcpu=v3",
            "-I/usr/include/x86_64-linux-gnu",
            "-Wall",
            "-Wno-unused-function",
        ])
        .build_and_generate(out.join("netio.skel.rs"))
        .expect("compiling src/bpf/netio.bpf.c (needs clang; see README.md)");
    println!("cargo:rerun-if-changed=src/bpf");
}
