//! Generates the ABI from uapi/rvmx.h. bindgen cannot expand the _IOR()/_IOW()
//! ioctl macros, so each `#define RVMX_X _IO...` is restated as a constant
//! that clang evaluates (as the module's Kbuild does).
use std::{env, fs, path::PathBuf};

fn main() {
    let header = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../uapi/rvmx.h");
    let header = header.canonicalize().expect("uapi/rvmx.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let text = fs::read_to_string(&header).expect("read uapi/rvmx.h");
    let mut wrapper = format!("#include \"{}\"\n", header.display());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#define"), Some(name), Some(value)) = (words.next(), words.next(), words.next()) {
            if name.starts_with("RVMX_") && value.starts_with("_IO") {
                wrapper += &format!("const unsigned int RVMX_IOCTL_{name} = {name};\n");
            }
        }
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let bindings = bindgen::Builder::default()
        .header_contents("rvmx_wrapper.h", &wrapper)
        .allowlist_type("rvmx_.*")
        .allowlist_var("RVMX_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen on uapi/rvmx.h");
    let code = bindings.to_string().replace("RVMX_IOCTL_RVMX_", "RVMX_");
    fs::write(out.join("uapi.rs"), code).expect("write uapi.rs");
}
