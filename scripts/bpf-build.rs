//! The build script of the diagnostic crates under scripts/ (bench/tool,
//! kernels/bpfload), each a workspace of its own: compiles every
//! src/NAME.bpf.c of the crate to $OUT_DIR/NAME.bpf.o with the libbpf
//! headers libbpf-sys installs and netio's own kernel struct declarations
//! (probes/src/bpf), which programs written to match netio's include.
use std::path::PathBuf;
use std::process::Command;

/// probes/src/bpf, from the crate's directory (scripts/<dir>/<crate>).
const NETIO_BPF: &str = "../../../probes/src/bpf";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let include = std::env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its headers");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let mut sources: Vec<PathBuf> = std::fs::read_dir("src")
        .expect("read src/")
        .map(|e| e.expect("read src/").path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".bpf.c")))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no src/*.bpf.c to compile");
    for src in &sources {
        let name = src.file_name().unwrap().to_str().unwrap();
        let object = out.join(name.replace(".bpf.c", ".bpf.o"));
        let status = Command::new(&clang)
            .args([
                "-O2",
                "-g",
                "-target",
                "bpf",
                "-D__TARGET_ARCH_x86",
                "-Wall",
            ])
            .arg(format!("-I{include}"))
            .arg(format!("-I{NETIO_BPF}"))
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(&object)
            .status()
            .expect("run clang (apt-get install clang)");
        assert!(status.success(), "clang failed on {}", src.display());
        println!("cargo:rerun-if-changed={}", src.display());
    }
    println!("cargo:rerun-if-changed=src");
    for h in ["kernel_types.h", "netio.h"] {
        println!("cargo:rerun-if-changed={NETIO_BPF}/{h}");
    }
    println!("cargo:rerun-if-env-changed=CLANG");
}
