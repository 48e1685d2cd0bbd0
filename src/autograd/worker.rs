//! The kernel pool's driver ([`crate::runtime::threads::run_on_worker`]) with this thread's
//! gradient mode carried over: the runtime knows nothing of autograd, so the grad-mode flag,
//! which is per thread, is handed across here.

use super::{is_grad_enabled, no_grad};

/// Runs `f` on one of the kernel pool's worker threads and returns its result, with the
/// caller's gradient mode (inside [`no_grad`], `f` runs without recording too). Every
/// parallel kernel that `f` starts then begins on that worker at once instead of waking the
/// pool from outside; the `neurite` command runs each subcommand this way, and a program of
/// its own should run its loop of training steps inside one call.
pub fn run_on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let grad = is_grad_enabled();
    crate::runtime::threads::run_on_worker(move || if grad { f() } else { no_grad(f) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_keeps_the_callers_grad_mode_and_still_splits_products() {
        let grad = no_grad(|| run_on_worker(is_grad_enabled));
        assert!(!grad, "no_grad carries over to the driver");
        assert!(run_on_worker(is_grad_enabled));
        // A product started by the driver gives the reference's values.
        let (m, k, n) = (96, 80, 112);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
        let g = crate::kernels::gemm::Gemm::new(m, n, k);
        let mut want = vec![0.0; m * n];
        crate::kernels::gemm::sgemm_reference(g, &a, &b, &mut want);
        let got = run_on_worker(|| {
            let mut c = vec![0.0; m * n];
            crate::kernels::gemm::sgemm(g, &a, &b, &mut c);
            c
        });
        assert_eq!(got, want);
    }
}
