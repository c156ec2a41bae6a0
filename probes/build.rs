//! Compiles the kernel programs and generates their typed skeleton.
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/netio.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            "-I/usr/include/x86_64-linux-gnu",
            "-Wall",
            "-Wno-unused-function",
        ])
        .build_and_generate(out.join("netio.skel.rs"))
        .expect("compiling src/bpf/netio.bpf.c (needs clang; see README.md)");
    println!("cargo:rerun-if-changed=src/bpf");
}
