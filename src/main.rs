//! The `hotspot` binary: everything lives in the library; see `cli/`.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    hotspot::cli::main()
}
