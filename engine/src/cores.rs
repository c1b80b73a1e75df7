//! The CPU's cores split among workers. Flex runs each op in the rayon pool of the thread that
//! calls it (its products through gemm's `Parallelism::Rayon(0)`, which takes that pool's
//! size), so a worker whose job runs inside a pool of its own uses its share of the cores and no
//! more. Flex's ops on this project's networks are small enough that one thread each on part
//! of a batch beats every thread on the whole batch (docs/benchmarks.md, sessions 17 and 19):
//! the trainers' CPU replicas (`train::parallel`) and batched tokenizer inference
//! (`tokenizer::split`) both run that way.

use std::sync::OnceLock;

use burn::prelude::*;

/// Workers a batched CPU call is split over by default.
pub const CPU_WORKERS: usize = 2;

/// The rayon thread pools could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not start the CPU workers' threads: {0}")]
pub struct CoresError(String);

/// One rayon pool per worker, the cores shared evenly among them.
pub struct CoreShares {
    pools: Vec<rayon::ThreadPool>,
}

impl CoreShares {
    /// `workers` pools sharing the threads of rayon's global pool (`RAYON_NUM_THREADS`, else
    /// one per core) evenly, at least one each.
    pub fn new(workers: usize) -> Result<Self, CoresError> {
        Self::with_threads(workers, rayon::current_num_threads())
    }

    /// `workers` pools sharing `threads` threads evenly, at least one each.
    pub fn with_threads(workers: usize, threads: usize) -> Result<Self, CoresError> {
        let each = (threads / workers.max(1)).max(1);
        let pools = (0..workers.max(1))
            .map(|i| rayon::ThreadPoolBuilder::new().num_threads(each).thread_name(move |t| format!("cpu-replica-{i}.{t}")).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CoresError(e.to_string()))?;
        Ok(Self { pools })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.pools.len()
    }

    /// Threads each worker computes on.
    pub fn threads_each(&self) -> usize {
        self.pools.first().map_or(1, rayon::ThreadPool::current_num_threads)
    }

    /// Runs `job` on worker `i`'s share of the cores.
    pub fn run<T: Send>(&self, i: usize, job: impl FnOnce() -> T + Send) -> T {
        self.pools[i % self.pools.len()].install(job)
    }
}

/// Runs `jobs` on scoped threads, job `i` on share `i` of the cores where `cores` is given,
/// and returns each job's outcome in order (a panicking job gives its panic).
pub fn run_scoped<T: Send, F: FnOnce() -> T + Send>(jobs: Vec<F>, cores: Option<&CoreShares>) -> Vec<std::thread::Result<T>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(i, job)| {
                s.spawn(move || match cores {
                    Some(c) => c.run(i, job),
                    None => job(),
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    })
}

/// The process's shares for batched inference on `device`: [`CPU_WORKERS`] workers on the
/// CPU without autodiff when rayon has at least that many threads, `None` elsewhere (a GPU,
/// a training graph, or a single core). Built once; its threads sleep between calls.
pub fn inference_shares(device: &Device) -> Option<&'static CoreShares> {
    static SHARES: OnceLock<Option<CoreShares>> = OnceLock::new();
    if !crate::device::is_flex(device) || crate::device::is_autodiff(device) {
        return None;
    }
    SHARES
        .get_or_init(|| {
            if rayon::current_num_threads() < CPU_WORKERS {
                return None;
            }
            match CoreShares::new(CPU_WORKERS) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!("{e}; batched inference runs on one pool");
                    None
                }
            }
        })
        .as_ref()
}

/// Sizes of `workers` parts of `items` items, as even as possible, larger ones first, no
/// empty part (fewer parts when `items < workers`).
pub fn part_sizes(items: usize, workers: usize) -> Vec<usize> {
    let n = workers.clamp(1, items.max(1));
    (0..n).map(|i| items / n + usize::from(i < items % n)).filter(|&s| s > 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_batch_evenly() {
        assert_eq!(part_sizes(8, 2), vec![4, 4]);
        assert_eq!(part_sizes(7, 2), vec![4, 3]);
        assert_eq!(part_sizes(1, 2), vec![1]);
        assert_eq!(part_sizes(5, 1), vec![5]);
        assert!(part_sizes(0, 2).is_empty());
    }

    #[test]
    fn inference_shares_only_on_the_cpu_without_autodiff() {
        assert!(inference_shares(&Device::flex().autodiff()).is_none());
        let two = rayon::current_num_threads() >= CPU_WORKERS;
        assert_eq!(inference_shares(&Device::flex()).map(CoreShares::workers), two.then_some(CPU_WORKERS));
    }
}
