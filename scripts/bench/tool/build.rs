//! Compiles the baseline programs (src/empty.bpf.c) for `bench-empty`, with the
//! libbpf headers libbpf-sys installs.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/empty.bpf.c";
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let include = std::env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its headers");
    let status = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()))
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            "-Wall",
        ])
        .arg(format!("-I{include}"))
        // netio's kernel struct declarations, for the stage programs.
        .arg("-I../../../probes/src/bpf")
        .arg("-I/usr/include/x86_64-linux-gnu")
        .args(["-c", src, "-o"])
        .arg(out.join("empty.bpf.o"))
        .status()
        .expect("run clang (apt-get install clang)");
    assert!(status.success(), "clang failed on {src}");
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=../../../probes/src/bpf/kernel_types.h");
    println!("cargo:rerun-if-env-changed=CLANG");
}
