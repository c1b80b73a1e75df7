//! Tensor operations the engine defines itself, each with its own backward pass, through Burn's
//! backend-extension API (`Tensor::try_into_primitive` and the autodiff `Backward` trait).
//! Every op keeps Burn's mathematics and falls back to Burn's own op wherever it is not
//! measured faster.

pub mod attention;
pub mod conv;
