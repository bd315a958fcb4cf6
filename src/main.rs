//! The `switchboard` binary: everything lives in the library's `cli` module.

/// mimalloc rather than the system allocator: every SIP message allocates
/// a few dozen small strings, and glibc's malloc spent about a fifth of the
/// registrar's CPU under load (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchboard::cli::main()
}
