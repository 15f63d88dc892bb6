fn main() {
    std::process::exit(hoist::cli::main());
}
