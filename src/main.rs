fn main() {
    std::process::exit(migsim::cli::main());
}
