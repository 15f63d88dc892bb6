//! The hoist command line: parses flags, calls the library, renders its
//! events and maps the result to an exit code.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
