//! Flex's matrix product at the shapes of the training steps, in GFLOP/s: the tokenizer's
//! im2col products (`M = B T H W` rows, `K = 27 C_in`) and the generator's linears (`K = 128`).
//! `cargo run -p hitvideo-engine --example profile_gemm`
mod common;
use burn::prelude::*;
use common::time_ms;
fn main() {
    let dev = Device::flex();
    for &(m, k, n) in &[(16384, 864, 24), (16384, 288, 24), (24, 16384, 864), (2536, 128, 352), (2536, 128, 1024), (2536, 352, 128), (4096, 3456, 128)] {
        let a = Tensor::<2>::random([m, k], burn::tensor::Distribution::Default, &dev);
        let b = Tensor::<2>::random([k, n], burn::tensor::Distribution::Default, &dev);
        let ms = time_ms(|| {
            let _ = a.clone().matmul(b.clone()).slice([0..1, 0..1]).into_data();
        });
        println!("[{m}, {k}] x [{k}, {n}]: {ms:.2} ms ({:.0} GFLOP/s)", 2.0 * (m * k * n) as f64 / ms / 1e6);
    }
}
