//! Synchronized batch norm (PyTorch's `SyncBatchNorm`): the statistics of a global batch
//! split over processes, assembled from each part's sums, forward and backward. The op
//! itself is [`Tensor::batch_norm_synced`]; the arithmetic it shares with batch norm is in
//! `super::norm`.

use super::norm::Mode;
use crate::tensor::Tensor;

/// How a synchronized batch norm combines its statistics with those of the other processes
/// that share one global batch (data-parallel ranks): `crate::distributed` implements it
/// over MPI. Every process must call it the same number of times in the same order.
pub trait StatsSync: Send + Sync {
    /// Sums `values` over every process, in place.
    fn all_reduce_sum(&self, values: &mut [f64]);
    /// This process's weight in the global loss: its share of the global batch (its rows
    /// over the batch's), by which its loss's gradient is scaled in the sum over processes.
    fn loss_weight(&self) -> f64;
}

/// The mean and biased variance per channel over every process's part, and the global
/// count, from this part's `mean`, `var` and `count`: the parts' counts, sums and sums of
/// squares added in f64 (`var = E[x²] - mean²`).
pub(super) fn global_stats(
    sync: &dyn StatsSync,
    mean: &[f32],
    var: &[f32],
    count: usize,
) -> (Vec<f32>, Vec<f32>, usize) {
    let c = mean.len();
    let n = count as f64;
    let mut sums = vec![0.0f64; 1 + 2 * c]; // [count, Σx per channel, Σx² per channel]
    sums[0] = n;
    for ch in 0..c {
        let (m, v) = (mean[ch] as f64, var[ch] as f64);
        sums[1 + ch] = n * m;
        sums[1 + c + ch] = n * (v + m * m);
    }
    sync.all_reduce_sum(&mut sums);
    let total = sums[0];
    let global_mean: Vec<f64> = (0..c).map(|ch| sums[1 + ch] / total).collect();
    let global_var = (0..c)
        .map(|ch| (sums[1 + c + ch] / total - global_mean[ch].powi(2)).max(0.0) as f32)
        .collect();
    let global_mean = global_mean.iter().map(|&m| m as f32).collect();
    (global_mean, global_var, total.round() as usize)
}

/// The means of `dy · xhat` and of `dy` over the global batch of `total` values per
/// channel, in this part's units: the parts' sums `dweight` and `dbias` weighted by each
/// part's loss weight `w` (which makes them the global loss's), summed over the parts,
/// divided by `total` and by this part's `w` again.
pub(super) fn global_means(
    sync: &dyn StatsSync,
    dweight: &[f32],
    dbias: &[f32],
    total: usize,
) -> (Vec<f32>, Vec<f32>) {
    let c = dweight.len();
    let w = sync.loss_weight();
    let mut sums: Vec<f64> = dweight.iter().chain(dbias).map(|&s| w * s as f64).collect();
    sync.all_reduce_sum(&mut sums);
    let scale = 1.0 / (total as f64 * w);
    let means = |part: &[f64]| part.iter().map(|&s| (s * scale) as f32).collect();
    (means(&sums[..c]), means(&sums[c..]))
}

impl Tensor {
    /// Batch norm in training mode with the statistics of a global batch that this one is a
    /// part of (PyTorch's `SyncBatchNorm`): the per-channel mean and variance over every
    /// process's rows (`sync` sums the parts), and in the backward the gradient through
    /// those statistics summed likewise, so that every process computes what one process
    /// on the whole batch would, up to the order of the float sums. The ReLU is fused after
    /// it when `relu`. The running statistics take the global ones. The gradients of
    /// `weight` and `bias` stay this part's (the data-parallel sum adds them up).
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_synced(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        momentum: f32,
        eps: f32,
        relu: bool,
        sync: std::sync::Arc<dyn StatsSync>,
    ) -> Tensor {
        let stats = (running_mean, running_var, momentum);
        self.batch_norm_impl(weight, bias, stats, Mode::Synced(sync), eps, relu)
    }
}

/// The synchronization of a process alone: the sums are its own, its weight 1.
pub(super) struct Alone;

impl StatsSync for Alone {
    fn all_reduce_sum(&self, _: &mut [f64]) {}
    fn loss_weight(&self) -> f64 {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::assert_close;

    /// `parts` threads standing in for ranks: each adds its values into a shared sum, waits
    /// for the others, and reads the total back.
    struct Threads {
        parts: usize,
        sum: std::sync::Mutex<(Vec<f64>, usize)>,
        barrier: std::sync::Barrier,
        weights: Vec<f64>,
    }

    /// One thread's view of [`Threads`].
    struct Part(std::sync::Arc<Threads>, usize);

    impl StatsSync for Part {
        fn all_reduce_sum(&self, values: &mut [f64]) {
            let t = &self.0;
            {
                let mut s = t.sum.lock().unwrap();
                if s.1 == 0 {
                    s.0 = vec![0.0; values.len()];
                }
                s.0.iter_mut().zip(values.iter()).for_each(|(a, v)| *a += v);
                s.1 += 1;
            }
            t.barrier.wait();
            values.copy_from_slice(&t.sum.lock().unwrap().0);
            if t.barrier.wait().is_leader() {
                t.sum.lock().unwrap().1 = 0; // Ready for the next sum.
            }
            t.barrier.wait();
        }
        fn loss_weight(&self) -> f64 {
            self.0.weights[self.1]
        }
    }

    /// One part's output, input, weight and bias gradients, running mean and variance.
    type PartResult = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

    #[test]
    fn batch_norm_synced_over_parts_of_a_batch_equals_batch_norm_of_the_whole() {
        // A batch of 7 in parts of 4 and 3 (unequal shares), each part's loss a mean over
        // its rows weighted 4/7 and 3/7: outputs, input gradients (in the global loss's
        // units), running statistics and summed parameter gradients equal the whole batch's.
        crate::tensor::rng::manual_seed(5);
        let x = Tensor::randn(&[7, 3, 2, 2], 0.5, 2.0);
        let t = Tensor::randn(&[7, 3, 2, 2], 0.0, 1.0); // a target, for a loss with curvature
        let w = Tensor::rand(&[3], 0.5, 1.5).requires_grad_();
        let b = Tensor::randn(&[3], 0.0, 1.0).requires_grad_();
        for relu in [false, true] {
            let (rm, rv) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
            let xw = x.detach().requires_grad_();
            let op = if relu {
                Tensor::batch_norm_relu
            } else {
                Tensor::batch_norm
            };
            let y = op(
                &xw,
                Some(&w),
                Some(&b),
                Some(&rm),
                Some(&rv),
                true,
                0.1,
                1e-5,
            );
            y.sub(&t).pow(2.0).mean_all().backward().unwrap();
            let (want_y, want_dx) = (y.to_vec(), xw.grad().unwrap().to_vec());
            let (want_dw, want_db) = (w.grad().unwrap().to_vec(), b.grad().unwrap().to_vec());
            w.set_grad(None);
            b.set_grad(None);

            let shared = std::sync::Arc::new(Threads {
                parts: 2,
                sum: std::sync::Mutex::new((Vec::new(), 0)),
                barrier: std::sync::Barrier::new(2),
                weights: vec![4.0 / 7.0, 3.0 / 7.0],
            });
            let rows = [0..4, 4..7];
            let results: Vec<PartResult> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..shared.parts)
                    .map(|p| {
                        let (shared, rows) = (shared.clone(), rows[p].clone());
                        let (x, t) = (
                            x.narrow(0, rows.start, rows.len()),
                            t.narrow(0, rows.start, rows.len()),
                        );
                        let (w, b) = (w.detach().requires_grad_(), b.detach().requires_grad_());
                        scope.spawn(move || {
                            let (rm, rv) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
                            let xp = x.contiguous().requires_grad_();
                            let sync = std::sync::Arc::new(Part(shared.clone(), p));
                            let y = xp.batch_norm_synced(
                                Some(&w),
                                Some(&b),
                                Some(&rm),
                                Some(&rv),
                                0.1,
                                1e-5,
                                relu,
                                sync,
                            );
                            y.sub(&t.contiguous())
                                .pow(2.0)
                                .mean_all()
                                .backward()
                                .unwrap();
                            let weight = shared.weights[p] as f32;
                            let scaled = |g: Tensor| {
                                g.to_vec().iter().map(|v| v * weight).collect::<Vec<f32>>()
                            };
                            (
                                y.to_vec(),
                                scaled(xp.grad().unwrap()),
                                scaled(w.grad().unwrap()),
                                scaled(b.grad().unwrap()),
                                rm.to_vec(),
                                rv.to_vec(),
                            )
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let cat = |f: fn(&PartResult) -> &Vec<f32>| {
                results
                    .iter()
                    .flat_map(|r| f(r).clone())
                    .collect::<Vec<f32>>()
            };
            let sum = |f: fn(&PartResult) -> &Vec<f32>| {
                (0..3)
                    .map(|c| results.iter().map(|r| f(r)[c]).sum())
                    .collect::<Vec<f32>>()
            };
            assert_close(&cat(|r| &r.0), &want_y, 1e-5);
            assert_close(&cat(|r| &r.1), &want_dx, 1e-5);
            assert_close(&sum(|r| &r.2), &want_dw, 1e-5);
            assert_close(&sum(|r| &r.3), &want_db, 1e-5);
            for r in &results {
                assert_close(&r.4, &rm.to_vec(), 1e-6);
                assert_close(&r.5, &rv.to_vec(), 1e-6);
            }
        }
    }
}
