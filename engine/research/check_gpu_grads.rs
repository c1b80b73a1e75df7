//! Which piece of the tokenizer's encoder has different gradients on WGPU than on Flex? (The
//! GPU test found the encoder's first convolution and two norm parameters off by ~75% on
//! lavapipe while the forward pass matched.) Runs each piece alone, forward and backward, on
//! both devices with the same weights and inputs and prints the relative differences.
//! `cargo run -p hitvideo-engine --example check_gpu_grads` (needs a wgpu adapter; lavapipe
//! takes a few minutes).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::ops::PadMode;
use hitvideo_engine::device::{self, DeviceChoice};
use hitvideo_engine::tokenizer::blocks::{CausalConv3d, frame_norm, group_norm};

/// One piece to compare: its name, and the same function on the CPU and on the GPU copy.
type Case = (&'static str, Box<dyn Fn(Tensor<5>) -> Tensor<5>>, Box<dyn Fn(Tensor<5>) -> Tensor<5>>);

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32")
}

fn rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

fn input(shape: [usize; 5], device: &Device) -> Tensor<5> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.7).collect();
    Tensor::<5>::from_data(TensorData::new(v, shape), device).require_grad()
}

/// Gradient of `sum(f(x) * w)` with respect to `x` (a fixed weighting, so every output
/// element matters), and the output.
fn grad_of(device: &Device, shape: [usize; 5], f: &dyn Fn(Tensor<5>) -> Tensor<5>) -> (Vec<f32>, Vec<f32>) {
    let x = input(shape, device);
    let y = f(x.clone());
    let n: usize = y.dims().iter().product();
    let w: Vec<f32> = (0..n).map(|i| (i * 104729 % 997) as f32 / 498.5 - 1.0).collect();
    let w = Tensor::<5>::from_data(TensorData::new(w, y.dims()), device);
    let out = values(y.clone());
    let g = (y * w).sum().backward();
    (out, values(x.grad(&g).expect("input gradient")))
}

/// Every parameter gradient of `m` in `grads`, flattened in visiting order.
struct Grads<'a>(&'a GradientsParams, Vec<f32>);

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.1.extend(self.0.get::<D>(param.id).map(values).unwrap_or_default());
    }
}

/// The parameter gradients of `sum(m(x) * w)` (the same weighting as `grad_of`).
fn param_grads<M: Module>(device: &Device, shape: [usize; 5], m: &M, f: &dyn Fn(&M, Tensor<5>) -> Tensor<5>) -> Vec<f32> {
    let x = input(shape, device);
    let y = f(m, x);
    let n: usize = y.dims().iter().product();
    let w: Vec<f32> = (0..n).map(|i| (i * 104729 % 997) as f32 / 498.5 - 1.0).collect();
    let w = Tensor::<5>::from_data(TensorData::new(w, y.dims()), device);
    let g = GradientsParams::from_grads((y * w).sum().backward(), m);
    let mut v = Grads(&g, Vec::new());
    m.visit(&mut v);
    v.1
}

fn main() {
    let gpu = device::select(DeviceChoice::Gpu).expect("a wgpu adapter");
    println!("GPU: {}", gpu.description);
    let (cpu, gpu) = (Device::flex().autodiff(), gpu.device.autodiff());
    cpu.seed(3);
    let shape = [2, 3, 8, 16, 16];
    let conv = CausalConv3d::new(3, 8, 3, [2, 2, 2], &cpu);
    let conv_gpu = conv.clone().fork(&gpu);
    for stride in [[2, 2, 2], [1, 2, 2], [1, 1, 1]] {
        let c = CausalConv3d::new(3, 8, 3, stride, &cpu);
        let cg = c.clone().fork(&gpu);
        let fc = |m: &CausalConv3d, x: Tensor<5>| m.forward(x);
        let (a, b) = (param_grads(&cpu, shape, &c, &fc), param_grads(&gpu, shape, &cg, &fc));
        println!("causal conv {stride:?}: weight and bias gradients {:.2e} (relative)", rel(&a, &b));
    }
    let norm = group_norm(8, &cpu);
    let norm_gpu = norm.clone().fork(&gpu);
    let cases: Vec<Case> = vec![
        ("edge pad in time", Box::new(|x| x.pad([(1, 0), (0, 0), (0, 0)], PadMode::Edge)), Box::new(|x| x.pad([(1, 0), (0, 0), (0, 0)], PadMode::Edge))),
        ("causal conv, stride 2x2x2", Box::new(move |x| conv.forward(x)), Box::new(move |x| conv_gpu.forward(x))),
        (
            "frame group norm (8 channels)",
            Box::new(move |x| frame_norm(&norm, x.repeat_dim(1, 3).narrow(1, 0, 8))),
            Box::new(move |x| frame_norm(&norm_gpu, x.repeat_dim(1, 3).narrow(1, 0, 8))),
        ),
    ];
    for (name, on_cpu, on_gpu) in &cases {
        let (yc, gc) = grad_of(&cpu, shape, on_cpu.as_ref());
        let (yg, gg) = grad_of(&gpu, shape, on_gpu.as_ref());
        println!("{name:32} forward {:.2e}, input gradient {:.2e} (relative)", rel(&yc, &yg), rel(&gc, &gg));
    }
}
