//! Compiles the tc BPF programs in bpf/*.bpf.c with Debian's clang (`-target bpf`) into OUT_DIR,
//! where src/bpf includes them. Without clang the objects are left empty: the BPF modes then
//! say they are unavailable (scripts/install-deps installs clang, llvm and libbpf-dev).

use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["veth_redirect", "netkit", "waterfall"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=bpf");
    let clang = std::env::var("NSLAT_CLANG").unwrap_or_else(|_| "clang".into());
    let arch_include = format!(
        "/usr/include/{}-linux-gnu",
        std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into())
    );
    for p in PROGRAMS {
        let src = format!("bpf/{p}.bpf.c");
        let obj = out.join(format!("{p}.bpf.o"));
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args([
                "-O2",
                "-g",
                "-Wall",
                "-target",
                "bpf",
                "-I",
                &arch_include,
                "-c",
                &src,
                "-o",
            ])
            .arg(&obj)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{clang} failed on {src} ({s})"),
            Err(e) => {
                println!(
                    "cargo:warning=cannot run {clang} ({e}): the BPF modes will be unavailable; install clang, llvm and libbpf-dev (scripts/install-deps)"
                );
                std::fs::write(&obj, b"").expect("writing an empty BPF object");
            }
        }
    }
}
