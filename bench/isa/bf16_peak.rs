// Peak rate of 512-bit f32 FMAs against bf16 dot products (VDPBF16PS, AVX512-BF16) on one
// core: 24 independent accumulators, 20 million iterations each (issue 24: is bf16
// arithmetic faster than f32 on this CPU?). Standalone, not part of the crate:
//
//     rustc -O -C target-cpu=native bench/isa/bf16_peak.rs -o /tmp/bf16_peak && /tmp/bf16_peak
//
// A FLOP is a multiply or an add: an f32 FMA on 16 lanes is 32, a bf16 dot product on 32
// pairs accumulated into 16 f32 lanes is 64. Needs a CPU with avx512f and avx512bf16.
use std::arch::x86_64::*;
use std::time::Instant;

#[target_feature(enable = "avx512f")]
unsafe fn fma_loop(n: usize) -> f32 {
    let a = _mm512_set1_ps(1.0000001);
    let b = _mm512_set1_ps(0.9999999);
    let mut acc = [_mm512_setzero_ps(); 24];
    for _ in 0..n {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(a, b, *r);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc { s = _mm512_add_ps(s, r); }
    _mm512_reduce_add_ps(s)
}

#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn bf16_loop(n: usize) -> f32 {
    let x = _mm512_set1_ps(1.0);
    let a = _mm512_cvtne2ps_pbh(x, x);
    let b = _mm512_cvtne2ps_pbh(x, x);
    let mut acc = [_mm512_setzero_ps(); 24];
    for _ in 0..n {
        for r in acc.iter_mut() {
            *r = _mm512_dpbf16_ps(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc { s = _mm512_add_ps(s, r); }
    _mm512_reduce_add_ps(s)
}

fn main() {
    if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")) {
        eprintln!("this CPU has no AVX512-BF16: nothing to compare");
        std::process::exit(1);
    }
    let n = 20_000_000;
    for round in 0..3 {
        let t = Instant::now();
        let s = unsafe { fma_loop(n) };
        let f = t.elapsed().as_secs_f64();
        let flops_f32 = (n * 24 * 16 * 2) as f64 / f / 1e9;
        let t = Instant::now();
        let s2 = unsafe { bf16_loop(n) };
        let b = t.elapsed().as_secs_f64();
        let flops_bf16 = (n * 24 * 32 * 2) as f64 / b / 1e9;
        println!("round {round}: f32 FMA {flops_f32:.1} GFLOP/s, bf16 dot {flops_bf16:.1} GFLOP/s, ratio {:.2} ({s} {s2})", flops_bf16 / flops_f32);
    }
}
