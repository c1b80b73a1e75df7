//! The C allocator's settings for tensor work (issue 22).
//!
//! Flex allocates every tensor it produces. With glibc's defaults, buffers of more than 128 KiB
//! (nearly every activation) come from `mmap` and go back to the system when freed, or the top
//! of the heap is trimmed, so the next step touches fresh pages again: about 9,000 page faults
//! per `tiny` tokenizer step and 10% of its CPU time in the kernel. Serving blocks up to 32 MiB
//! from the heap and keeping up to 512 MiB of freed memory for reuse removes nearly all of them
//! (docs/benchmarks.md, session 15: training runs 5-9% shorter, peak memory a few MB higher).

/// The largest block served from the heap instead of `mmap` (glibc's maximum on 64-bit).
pub const MMAP_THRESHOLD: i32 = 32 << 20;
/// Freed memory kept at the top of the heap before it is returned to the system.
pub const TRIM_THRESHOLD: i32 = 512 << 20;
/// Extra memory requested each time the heap grows.
pub const TOP_PAD: i32 = 64 << 20;

/// glibc's environment variables for the same settings: when one is set, the user's choice
/// stands and nothing is changed.
pub const ENV_OVERRIDES: [&str; 3] = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"];

/// What [`tune_for_tensors`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocTuning {
    /// The settings above are in effect.
    Applied,
    /// A `MALLOC_*` variable is set: the user's settings stand.
    UserSettings,
    /// Not glibc (or glibc refused a value): the allocator's defaults stand.
    Unavailable,
}

/// Applies the settings above. Call it once at the start of `main`, before other threads start.
pub fn tune_for_tensors() -> AllocTuning {
    if ENV_OVERRIDES.iter().any(|v| std::env::var_os(v).is_some()) {
        return AllocTuning::UserSettings;
    }
    apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn apply() -> AllocTuning {
    let set = |param, value| {
        // SAFETY: `mallopt` only changes glibc's allocator parameters (it takes the arena lock);
        // each value is within the range glibc documents for its parameter.
        unsafe { libc::mallopt(param, value) == 1 }
    };
    if set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) && set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) && set(libc::M_TOP_PAD, TOP_PAD) {
        AllocTuning::Applied
    } else {
        AllocTuning::Unavailable
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> AllocTuning {
    AllocTuning::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_accepts_the_settings() {
        if ENV_OVERRIDES.iter().any(|v| std::env::var_os(v).is_some()) {
            assert_eq!(tune_for_tensors(), AllocTuning::UserSettings);
        } else if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(tune_for_tensors(), AllocTuning::Applied);
        } else {
            assert_eq!(tune_for_tensors(), AllocTuning::Unavailable);
        }
    }
}
