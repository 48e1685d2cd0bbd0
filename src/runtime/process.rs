//! Process-wide settings made once at start-up.

/// Restores the default action of `SIGPIPE` (end the process). Rust ignores the signal, so
/// a print to a closed pipe (`neurite bench --json | head -1`) panicked; like other Unix
/// tools, the command ends quietly when its reader goes away. Call it first in `main`,
/// before any other thread exists.
pub fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with `SIG_DFL` only resets the disposition of one signal; called at
    // start-up before other threads exist, it races with no other signal set-up.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
