fn main() {
    neurite::runtime::process::default_sigpipe();
    std::process::exit(neurite::cli::main());
}
