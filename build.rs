//! Compiles the BPF programs (bpf/*.bpf.c) with clang -target bpf into OUT_DIR.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut sources: Vec<PathBuf> = std::fs::read_dir("bpf")
        .expect("bpf/ directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    println!("cargo:rerun-if-changed=bpf");
    for src in sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let name = src
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".bpf.c", ".bpf.o");
        let status = Command::new("clang")
            .args(["-O2", "-g", "-Wall", "-target", "bpf"])
            .args(["-I/usr/include/x86_64-linux-gnu", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(out.join(&name))
            .status()
            .unwrap_or_else(|e| panic!("running clang for {} (install clang and libbpf-dev: scripts/install-deps): {e}", src.display()));
        assert!(status.success(), "clang failed on {}", src.display());
    }
}
