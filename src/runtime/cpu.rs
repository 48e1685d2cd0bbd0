//! Which SIMD kernels this CPU runs. The hand-written micro-kernels come in two widths:
//! AVX2 + FMA (8 lanes, 16 registers) and AVX-512 (16 lanes, 32 registers); other CPUs
//! take the portable paths (the GEMM library, plain loops).

/// Whether the AVX2 + FMA micro-kernels can run on this CPU (x86-64 with both).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A width of micro-kernels. [`Isa::best`] picks the widest the CPU has; the environment
/// variable `NEURITE_SIMD=avx2` keeps AVX2 on an AVX-512 CPU (to compare the two on one
/// machine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 (F).
    Avx512,
}

impl Isa {
    /// The widest kernels this CPU runs (`None`: neither, use the portable paths).
    pub fn best() -> Option<Isa> {
        static BEST: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let avx2_only = std::env::var("NEURITE_SIMD").is_ok_and(|v| v == "avx2");
            Isa::available()
                .into_iter()
                .rfind(|&isa| !avx2_only || isa == Isa::Avx2)
        })
    }

    /// Whether [`Isa::best`] is AVX-512.
    pub fn avx512() -> bool {
        Isa::best() == Some(Isa::Avx512)
    }

    /// Whether this CPU runs this width's kernels.
    pub fn runs(self) -> bool {
        Isa::available().contains(&self)
    }

    /// Every width this CPU runs, narrowest first (the tests run each).
    pub fn available() -> Vec<Isa> {
        let mut all = Vec::new();
        if available() {
            all.push(Isa::Avx2);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Isa::Avx512);
            }
        }
        all
    }
}
