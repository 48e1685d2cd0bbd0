//! OpenBLAS's choice of kernels for this CPU, checked once and corrected when it is wrong.
//!
//! A `DYNAMIC_ARCH` OpenBLAS (Debian's `libopenblas0-pthread`, 0.3.21 on bookworm) picks its
//! kernels when it is loaded, from the CPU's family and model numbers. A model newer than the
//! library (Intel's Emerald Rapids, family 6 model 207, on this project's VM) is not in its
//! table and gets the oldest x86-64 kernels, Prescott's (SSE3): `neurite bench gemm` ran
//! 1024³ at 39 GFLOP/s with them against 210-216 with SkylakeX's on the same machine. The
//! library's own remedy is the environment variable `OPENBLAS_CORETYPE`, read only at load.
//!
//! [`ensure_fast_kernels`] does the same from inside the process: when the CPU has AVX-512
//! (or AVX2 + FMA) but OpenBLAS runs kernels older than that width, it selects SkylakeX's (or
//! Haswell's) kernel table through the library's `gotoblas_dynamic_quit` and
//! `gotoblas_dynamic_init`, with `OPENBLAS_CORETYPE` set for the moment of the call. A user's
//! own `OPENBLAS_CORETYPE` is left alone, and so is an OpenBLAS without those entry points (a
//! build for one CPU): the symbols are looked up at run time, never linked.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

/// What [`ensure_fast_kernels`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlasCore {
    /// The kernel family OpenBLAS chose when it was loaded (`None`: it cannot say).
    pub loaded: Option<String>,
    /// The family it runs now: `loaded`, or the one selected instead.
    pub running: Option<String>,
}

impl BlasCore {
    /// Whether the kernel family was replaced.
    pub fn replaced(&self) -> bool {
        self.loaded != self.running
    }
}

/// Families whose kernels use AVX-512 (OpenBLAS's names, compared without case).
const AVX512_FAMILIES: [&str; 3] = ["skylakex", "cooperlake", "sapphirerapids"];
/// Families whose kernels use at least AVX2 + FMA.
const AVX2_FAMILIES: [&str; 5] = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"];

/// The family to select instead of `loaded` on a CPU with (`avx512`, `avx2`), or `None` when
/// `loaded` already uses the widest kernels the CPU runs.
pub fn better_family(loaded: &str, avx512: bool, avx2: bool) -> Option<&'static str> {
    let is = |set: &[&str]| set.iter().any(|f| f.eq_ignore_ascii_case(loaded.trim()));
    if avx512 && !is(&AVX512_FAMILIES) {
        Some("SKYLAKEX")
    } else if avx2 && !avx512 && !is(&AVX2_FAMILIES) {
        Some("HASWELL")
    } else {
        None
    }
}

/// Checks OpenBLAS's kernel family once per process and replaces it when the CPU runs wider
/// kernels than the ones chosen (see the module docs). Every OpenBLAS call of neurite goes
/// through this first; `neurite`'s `main` calls it before any thread starts.
pub fn ensure_fast_kernels() -> &'static BlasCore {
    static CORE: OnceLock<BlasCore> = OnceLock::new();
    CORE.get_or_init(select)
}

/// The C function `name` of the loaded libraries, if one is there.
fn symbol(name: &str) -> Option<*mut libc::c_void> {
    let name = CString::new(name).ok()?;
    // SAFETY: `dlsym` with the default scope and a NUL-terminated name only reads.
    let ptr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!ptr.is_null()).then_some(ptr)
}

/// OpenBLAS's name of the kernel family it runs.
fn corename() -> Option<String> {
    let f = symbol("openblas_get_corename")?;
    // SAFETY: `openblas_get_corename` takes nothing and returns a static C string.
    let name = unsafe {
        let f: extern "C" fn() -> *const libc::c_char = std::mem::transmute(f);
        let p = f();
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    name
}

fn select() -> BlasCore {
    let loaded = corename();
    let unchanged = BlasCore {
        loaded: loaded.clone(),
        running: loaded.clone(),
    };
    if std::env::var_os("OPENBLAS_CORETYPE").is_some() {
        return unchanged;
    }
    let Some(target) = loaded
        .as_deref()
        .and_then(|l| better_family(l, cpu_has_avx512(), crate::runtime::cpu::available()))
    else {
        return unchanged;
    };
    let (Some(quit), Some(init)) = (
        symbol("gotoblas_dynamic_quit"),
        symbol("gotoblas_dynamic_init"),
    ) else {
        return unchanged;
    };
    // The library reads the family from this variable inside `gotoblas_dynamic_init`; it is
    // removed again right after, so child processes see the environment they were given.
    std::env::set_var("OPENBLAS_CORETYPE", target);
    // SAFETY: both take and return nothing; `quit` clears the kernel table pointer and `init`
    // sets it from `OPENBLAS_CORETYPE` and runs that table's parameter setup, as at load.
    // No OpenBLAS call runs meanwhile: neurite's calls all wait on `ensure_fast_kernels`.
    unsafe {
        let quit: extern "C" fn() = std::mem::transmute(quit);
        let init: extern "C" fn() = std::mem::transmute(init);
        quit();
        init();
    }
    std::env::remove_var("OPENBLAS_CORETYPE");
    BlasCore {
        loaded,
        running: corename(),
    }
}

/// Whether the CPU runs OpenBLAS's AVX-512 kernels (F, VL, BW and DQ, as its SkylakeX ones).
fn cpu_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_families_are_replaced_by_the_widest_the_cpu_runs() {
        assert_eq!(better_family("Prescott", true, true), Some("SKYLAKEX"));
        assert_eq!(better_family("Haswell", true, true), Some("SKYLAKEX"));
        assert_eq!(better_family("Prescott", false, true), Some("HASWELL"));
        assert_eq!(better_family("Sandybridge", false, true), Some("HASWELL"));
        // Already as wide as the CPU, or nothing wider to offer.
        assert_eq!(better_family("SkylakeX", true, true), None);
        assert_eq!(better_family("Cooperlake", true, true), None);
        assert_eq!(better_family("Haswell", false, true), None);
        assert_eq!(better_family("Zen", false, true), None);
        assert_eq!(better_family("Prescott", false, false), None);
    }

    #[test]
    fn openblas_runs_kernels_as_wide_as_the_cpu() {
        let core = ensure_fast_kernels();
        let Some(running) = core.running.as_deref() else {
            return; // an OpenBLAS that cannot name its kernels: nothing to check
        };
        if std::env::var_os("OPENBLAS_CORETYPE").is_none() {
            assert_eq!(
                better_family(running, cpu_has_avx512(), crate::runtime::cpu::available()),
                None,
                "OpenBLAS runs {running} kernels (loaded: {:?})",
                core.loaded
            );
        }
        // The products are still right after a replacement.
        let (m, n, k) = (70, 90, 110);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let mut fast = vec![0.0; m * n];
        let mut slow = vec![0.0; m * n];
        let g = super::super::Gemm::new(m, n, k);
        // SAFETY: the buffers hold the dense product's elements.
        unsafe { super::super::sgemm_on_this_thread(g, a.as_ptr(), b.as_ptr(), fast.as_mut_ptr()) };
        super::super::sgemm_reference(g, &a, &b, &mut slow);
        assert_eq!(fast, slow, "integer-valued products are exact");
    }
}
