//! Gradient clipping by global norm (`torch.nn.utils.clip_grad_norm_`).

use crate::kernels::vector;
use crate::tensor::Tensor;

/// Scales all gradients so that their joint L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f32) -> f32 {
    let grads: Vec<Tensor> = params.iter().filter_map(|p| p.grad()).collect();
    let total: f64 = grads
        .iter()
        .map(|g| g.with_slice(|s| vector::dot(s, s) as f64))
        .sum();
    let norm = total.sqrt() as f32;
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        for g in &grads {
            g.with_slice_mut(|s| s.iter_mut().for_each(|v| *v *= scale));
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_the_joint_norm() {
        let a = Tensor::zeros(&[1]).requires_grad_();
        let b = Tensor::zeros(&[1]).requires_grad_();
        a.set_grad(Some(Tensor::from_vec(vec![3.0], &[1])));
        b.set_grad(Some(Tensor::from_vec(vec![4.0], &[1])));
        let n = clip_grad_norm(&[a.clone(), b.clone()], 1.0);
        assert!((n - 5.0).abs() < 1e-6);
        assert!((a.grad().unwrap().item() - 0.6).abs() < 1e-5);
        assert!((b.grad().unwrap().item() - 0.8).abs() < 1e-5);
    }
}
