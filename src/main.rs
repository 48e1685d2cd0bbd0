fn main() {
    // Rust ignores SIGPIPE, so a print to a closed pipe (`neurite bench --json | head -1`)
    // panicked. Like other Unix tools, end quietly when the reader goes away.
    #[cfg(unix)]
    // SAFETY: restores a signal's default disposition at start-up, before any other thread
    // exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(neurite::cli::main());
}
