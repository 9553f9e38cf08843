fn main() {
    // The target triple is only known to Cargo; `sonic doctor` reports it at run time.
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=SONIC_TARGET_TRIPLE={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
