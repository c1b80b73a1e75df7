//! Mixed-precision training: f16 or bf16 compute over fp32 master weights.
//!
//! Burn 0.22 has no autocast. A half-precision run first makes the half type the device's
//! default float type ([`configure`], before any tensor exists), so every tensor the models
//! create on their own (constants, masks, running statistics) is in it; the trainers then keep
//! the parameters themselves as fp32 leaves ([`master_weights`]) and each step computes with a
//! copy whose parameters are casts of them ([`compute_copy`]: `Param::map` keeps each
//! parameter's id, and a cast is differentiable, its gradient cast back to f32). Gradients are
//! read from the master model, so they, the AdamW state and the checkpoints stay fp32. f16 needs loss scaling
//! ([`LossScaler`]: the loss is multiplied before the backward pass and the gradients divided
//! after; a step whose gradients overflow is skipped and the scale halved); bf16 has f32's range
//! and runs unscaled. The CPU trains in f32: Flex computes f16 element by element through f32,
//! so it would only be slower.

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::FloatDType;

/// The compute precision of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32 throughout (the default, and the only choice on the CPU).
    #[default]
    F32,
    /// f16 compute with dynamic loss scaling.
    F16,
    /// bf16 compute (f32's exponent range: no loss scaling).
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Self::F32, Self::F16, Self::Bf16];

    /// The compute dtype, `None` for fp32.
    pub fn half(self) -> Option<FloatDType> {
        match self {
            Self::F32 => None,
            Self::F16 => Some(FloatDType::F16),
            Self::Bf16 => Some(FloatDType::BF16),
        }
    }

    /// Whether this precision can run on `device`: fp32 anywhere; f16 and bf16 on GPUs whose
    /// backend computes in them (`gpu`: the device is not the CPU).
    pub fn check(self, device: &Device, gpu: bool) -> Result<(), String> {
        let Some(dtype) = self.half() else { return Ok(()) };
        if !gpu {
            return Err(format!("--precision {self} is for GPUs; the CPU trains in f32 (Flex computes {self} through f32, only slower)"));
        }
        if !device.supports_dtype(dtype) {
            return Err(format!(
                "--precision {self}: this GPU's backend does not compute in {self}; use f32{}",
                if self == Self::Bf16 { " or f16" } else { "" }
            ));
        }
        Ok(())
    }
}

/// A precision name that is none of `f32`, `f16`, `bf16`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision '{0}': use f32, f16 or bf16")]
pub struct UnknownPrecision(pub String);

impl FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Self::F32),
            "f16" | "fp16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            other => Err(UnknownPrecision(other.to_string())),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

/// Makes `precision`'s half type the default float type of `device` (nothing for fp32). Burn
/// fixes a device's defaults when its first tensor is made, so this must run before the
/// models are built (the CLI calls it first thing).
pub fn configure(device: &Device, precision: Precision) -> Result<(), String> {
    let Some(dtype) = precision.half() else { return Ok(()) };
    let mut d = device.clone();
    d.configure(dtype).map_err(|e| format!("--precision {precision}: cannot set the device's float type ({e:?}); it must be set before any tensor is made"))
}

/// Checks that `device` computes in `precision` by default (see [`configure`]).
pub fn check_configured(device: &Device, precision: Precision) -> Result<(), super::tokenizer::TrainError> {
    let expected = precision.half().unwrap_or(FloatDType::F32);
    let actual = device.settings().float_dtype;
    if actual != expected {
        return Err(super::tokenizer::TrainError::Invalid(format!(
            "precision {precision}: the device's default float type is {actual:?}; call precision::configure before building the trainer"
        )));
    }
    Ok(())
}

/// The fp32 master copy of `model`'s parameters as fresh leaves (same ids), for a model built
/// on a device whose default float type is half ([`configure`]); the identity in fp32.
pub fn master_weights<M: Module>(model: M, precision: Precision) -> M {
    if precision.half().is_none() {
        return model;
    }
    model.map(&mut Master)
}

struct Master;

impl ModuleMapper for Master {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let grad = t.is_require_grad();
            let t = t.cast(FloatDType::F32).detach();
            if grad { t.require_grad() } else { t }
        })
    }
}

struct Cast(FloatDType);

impl ModuleMapper for Cast {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        // Buffers (running statistics) are shared with the master model and stay fp32; the
        // layers that read them cast them to their input's type.
        param.map(|t| if t.is_require_grad() { t.cast(dtype) } else { t })
    }
}

/// The model a step computes with: `model` itself in fp32, otherwise a copy whose parameters
/// are differentiable casts of `model`'s (same parameter ids; gradients are taken from
/// `model`).
pub fn compute_copy<M: Module>(model: &M, precision: Precision) -> M {
    match precision.half() {
        None => model.clone(),
        Some(dtype) => model.clone().map(&mut Cast(dtype)),
    }
}

/// Casts a compute tensor to `precision` (inputs) — the identity in fp32.
pub fn to_compute<const D: usize>(x: Tensor<D>, precision: Precision) -> Tensor<D> {
    match precision.half() {
        None => x,
        Some(dtype) => x.cast(dtype),
    }
}

/// Casts a loss back to f32 (the identity in fp32).
pub fn to_f32<const D: usize>(x: Tensor<D>, precision: Precision) -> Tensor<D> {
    match precision.half() {
        None => x,
        Some(_) => x.cast(FloatDType::F32),
    }
}

/// Dynamic loss scaling for f16 (PyTorch's `GradScaler` rule): start at 2^16, halve on a
/// step whose gradients overflow (the step is skipped), double after `growth_interval` good
/// steps. Unused (a scale of 1) for f32 and bf16.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    pub scale: f32,
    good_steps: usize,
    pub growth_interval: usize,
}

impl LossScaler {
    pub fn new(precision: Precision) -> Self {
        let scale = if precision == Precision::F16 { 65536.0 } else { 1.0 };
        Self { scale, good_steps: 0, growth_interval: 2000 }
    }

    /// Whether losses are scaled at all.
    pub fn active(&self) -> bool {
        self.scale != 1.0 || self.good_steps > 0
    }

    /// Divides `grads` (of `module`) by the scale; returns them and whether all are finite
    /// (read once, from the sum of their absolute values).
    pub fn unscale<M: Module>(&self, grads: GradientsParams, module: &M) -> (GradientsParams, bool) {
        let mut v = Unscale { grads, inv: 1.0 / self.scale, total: None };
        module.visit(&mut v);
        let finite = v.total.is_none_or(|t| t.into_scalar::<f32>().is_finite());
        (v.grads, finite)
    }

    /// Updates the scale after a step: halved after an overflow, doubled after enough good
    /// steps.
    pub fn update(&mut self, finite: bool) {
        if !finite {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
        } else {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                self.scale = (self.scale * 2.0).min(2f32.powi(24));
                self.good_steps = 0;
            }
        }
    }
}

struct Unscale {
    grads: GradientsParams,
    inv: f32,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for Unscale {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let g = if self.inv == 1.0 { g } else { g.mul_scalar(self.inv) };
            let size = g.clone().abs().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + size,
                None => size,
            });
            self.grads.register::<D>(param.id, g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precisions_and_keeps_the_cpu_on_f32() {
        assert_eq!("BF16".parse::<Precision>(), Ok(Precision::Bf16));
        assert_eq!("fp16".parse::<Precision>(), Ok(Precision::F16));
        assert!("f8".parse::<Precision>().unwrap_err().to_string().contains("f32, f16 or bf16"));
        let cpu = Device::flex();
        assert!(Precision::F32.check(&cpu, false).is_ok());
        assert!(Precision::F16.check(&cpu, false).unwrap_err().contains("for GPUs"));
    }

    #[test]
    fn the_scaler_halves_on_overflow_and_grows_after_good_steps() {
        let mut s = LossScaler::new(Precision::F16);
        s.growth_interval = 2;
        s.update(false);
        assert_eq!(s.scale, 32768.0);
        s.update(true);
        s.update(true);
        assert_eq!(s.scale, 65536.0);
        assert_eq!(LossScaler::new(Precision::Bf16).scale, 1.0);
    }
}
