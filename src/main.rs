//! The hoist command line: parses flags, calls the library, renders its
//! events and maps the result to an exit code.

mod cli;

// The static (musl) binary's allocator: see Cargo.toml.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
