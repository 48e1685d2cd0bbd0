// Links the system OpenBLAS (Debian: `apt-get install libopenblas-dev`, done by
// scripts/setup.sh), whose SGEMM is the fastest measured on this CPU for large products.
fn main() {
    println!("cargo:rustc-link-lib=openblas");
    println!("cargo:rerun-if-changed=build.rs");
}
