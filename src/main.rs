fn main() {
    std::process::exit(neurite::cli::main());
}
