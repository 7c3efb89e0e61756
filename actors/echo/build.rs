//! A 14 KiB stack instead of Rust's default 1 MiB. Echo's deepest path
//! (decoding a request, building the reply) needs a few KiB. With
//! `--stack-first` the stack ends at 14 KiB, so its top page also holds the
//! start of the data, and the data and the arena's first allocations share
//! the next page: an idle, once-called instance keeps two 4 KiB pages of its
//! memory resident (`wascc-bench density --mappings` shows it; 16 KiB here
//! costs a third page).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=14336");
    }
}
