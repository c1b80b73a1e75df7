//! What the training device has, beside a memory estimate: on the CPU the machine's available
//! memory (`MemAvailable` of `/proc/meminfo`, Linux); a GPU's memory is not checked (wgpu does
//! not report how much an adapter has). The comparison is a warning only: a run still starts.

/// Memory the training device offers, as the engine found it when it answered an estimate.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceMemory {
    /// The CPU: bytes of memory available now.
    Available(u64),
    /// Not checked; the text says why (a GPU, or `/proc/meminfo` unreadable).
    Unchecked(String),
}

const MIB: f64 = 1048576.0;

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => n.checked_mul(1024),
        Some(_) => None,
    }
}

/// What the device of the engine thread has: the machine's available memory for the CPU,
/// nothing (with the reason) for a GPU.
pub fn device_memory(is_gpu: bool) -> DeviceMemory {
    if is_gpu {
        return DeviceMemory::Unchecked("GPU memory is not checked (wgpu does not report how much the adapter has)".into());
    }
    match std::fs::read_to_string("/proc/meminfo") {
        Ok(text) => match parse_mem_available(&text) {
            Some(b) => DeviceMemory::Available(b),
            None => DeviceMemory::Unchecked("available memory not checked (/proc/meminfo has no MemAvailable line)".into()),
        },
        Err(e) => DeviceMemory::Unchecked(format!("available memory not checked (/proc/meminfo unreadable: {e})")),
    }
}

/// The note shown beside an estimate of `bytes`, and whether it is a warning (the estimate
/// is more than the memory available).
pub fn memory_note(bytes: u64, memory: &DeviceMemory) -> (String, bool) {
    match memory {
        DeviceMemory::Available(avail) if bytes > *avail => (
            format!(
                "warning: more than the {:.0} MiB of memory available now; training may swap or stop — lower the batch, \
                 choose a smaller preset or close other programs",
                *avail as f64 / MIB
            ),
            true,
        ),
        DeviceMemory::Available(avail) => (format!("({:.0} MiB available now)", *avail as f64 / MIB), false),
        DeviceMemory::Unchecked(why) => (format!("({why})"), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_and_estimates_over_it_warn() {
        let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    2048000 kB\n";
        assert_eq!(parse_mem_available(text), Some(2048000 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 5 kB\n"), None);
        assert_eq!(parse_mem_available("MemAvailable: lots\n"), None);
        let avail = DeviceMemory::Available(2000 * 1048576);
        let (note, warn) = memory_note(1500 * 1048576, &avail);
        assert!(!warn && note == "(2000 MiB available now)", "{note}");
        let (note, warn) = memory_note(2500 * 1048576, &avail);
        assert!(warn && note.starts_with("warning: more than the 2000 MiB of memory available now"), "{note}");
        let (note, warn) = memory_note(u64::MAX, &DeviceMemory::Unchecked("GPU memory is not checked".into()));
        assert!(!warn && note.contains("GPU memory is not checked"), "{note}");
        // On this (Linux) machine the CPU's memory is read.
        if cfg!(target_os = "linux") {
            assert!(matches!(device_memory(false), DeviceMemory::Available(b) if b > 0));
        }
        assert!(matches!(device_memory(true), DeviceMemory::Unchecked(_)));
    }
}
