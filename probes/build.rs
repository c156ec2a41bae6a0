//! Compiles the kernel programs and generates their typed skeleton.
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/netio.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let obj = out.join("netio.bpf.o");
    SkeletonBuilder::new()
        .source(SRC)
        .obj(&obj)
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
    // The object's identity: pinned programs and maps are adopted only by
    // a netio built from the same object (pin.rs).
    let bytes = std::fs::read(&obj).expect("reading the compiled object");
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    println!("cargo:rustc-env=NETIO_OBJECT_HASH={hash:016x}");
}
