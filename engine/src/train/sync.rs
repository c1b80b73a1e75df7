//! An all-reduce for data-parallel replicas on threads of one process: each replica hands in
//! a vector and gets back the sum over all of them. It carries the few batch statistics a step
//! needs from the whole batch (the tokenizer's bit norms and codebook entropy, see
//! `tokenizer_sync.rs`), a few hundred floats a call, so a mutex and a condition variable are
//! all it takes. Burn 0.22's collective all-reduce (`burn::tensor::distributed`) runs on CUDA
//! only.
//!
//! A replica that panics marks the exchange failed as it unwinds ([`AbortGuard`]); replicas
//! waiting in it, or arriving later, panic with [`ReplicaAborted`] instead of waiting forever,
//! and [`super::parallel::per_device`] re-raises the first panic that is not that marker.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The panic payload of a replica stopped because another one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAborted;

#[derive(Debug, Default)]
struct Round {
    /// Rounds completed.
    done: u64,
    /// Replicas that handed in their vector this round.
    arrived: usize,
    /// This round's running sum (f64: the order of arrival does not change the result).
    sum: Vec<f64>,
    /// The last completed round's sum.
    result: Vec<f32>,
    failed: bool,
}

/// A sum over `parties` replicas, one round per call of [`Self::sum`] on each.
#[derive(Debug)]
pub struct AllReduce {
    parties: usize,
    round: Mutex<Round>,
    ready: Condvar,
}

impl AllReduce {
    /// An exchange between `parties` replicas (at least one).
    pub fn new(parties: usize) -> Self {
        Self { parties: parties.max(1), round: Mutex::new(Round::default()), ready: Condvar::new() }
    }

    /// Replicas taking part.
    pub fn parties(&self) -> usize {
        self.parties
    }

    fn lock(&self) -> MutexGuard<'_, Round> {
        // A panic inside this module's short critical sections cannot leave the state half
        // written; a poisoned lock is still consistent.
        self.round.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands in `values` and returns the elementwise sum of every replica's values this round
    /// (all replicas must hand in vectors of the same length, in the same order of calls).
    /// Blocks until every replica has handed in.
    ///
    /// # Panics
    /// With [`ReplicaAborted`] when another replica failed (see [`AbortGuard`]), and when the
    /// lengths differ (a bug in the caller: the replicas run the same code).
    pub fn sum(&self, values: &[f32]) -> Vec<f32> {
        let mut r = self.lock();
        if r.failed {
            drop(r);
            std::panic::panic_any(ReplicaAborted);
        }
        if r.arrived == 0 {
            r.sum = values.iter().map(|&v| f64::from(v)).collect();
        } else {
            assert_eq!(r.sum.len(), values.len(), "replicas handed in vectors of different lengths");
            for (s, &v) in r.sum.iter_mut().zip(values) {
                *s += f64::from(v);
            }
        }
        r.arrived += 1;
        if r.arrived == self.parties {
            r.result = r.sum.iter().map(|&s| s as f32).collect();
            r.arrived = 0;
            r.done += 1;
            self.ready.notify_all();
            return r.result.clone();
        }
        let round = r.done;
        while r.done == round && !r.failed {
            r = self.ready.wait(r).unwrap_or_else(PoisonError::into_inner);
        }
        if r.done == round {
            drop(r);
            std::panic::panic_any(ReplicaAborted);
        }
        // No later round can complete before this replica hands in again, so `result` is
        // still this round's.
        r.result.clone()
    }

    fn fail(&self) {
        self.lock().failed = true;
        self.ready.notify_all();
    }
}

/// Held by a replica while it runs: if the replica panics, dropping it during the unwind marks
/// the exchange failed and wakes the others.
pub struct AbortGuard<'a>(pub &'a AllReduce);

impl Drop for AbortGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_get_the_sum_of_every_round() {
        let sync = AllReduce::new(3);
        let out: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let sync = &sync;
                    s.spawn(move || (0..50).map(|round| sync.sum(&[i as f32, round as f32])).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for replica in &out {
            for (round, got) in replica.iter().enumerate() {
                assert_eq!(got, &vec![3.0, 3.0 * round as f32], "round {round}");
            }
        }
        // One party: its own values.
        assert_eq!(AllReduce::new(1).sum(&[2.0, 5.0]), vec![2.0, 5.0]);
    }

    #[test]
    fn a_failed_replica_stops_the_others_instead_of_hanging() {
        let sync = AllReduce::new(2);
        let results: Vec<std::thread::Result<Vec<f32>>> = std::thread::scope(|s| {
            let waiting = s.spawn(|| {
                let _guard = AbortGuard(&sync);
                sync.sum(&[1.0])
            });
            let failing = s.spawn(|| {
                let _guard = AbortGuard(&sync);
                if sync.parties() == 2 {
                    panic!("the replica's own error");
                }
                sync.sum(&[1.0])
            });
            vec![waiting.join(), failing.join()]
        });
        let waiting = results[0].as_ref().unwrap_err();
        assert!(waiting.downcast_ref::<ReplicaAborted>().is_some(), "the waiting replica stops with the marker");
        let failing = results[1].as_ref().unwrap_err();
        assert_eq!(failing.downcast_ref::<&str>(), Some(&"the replica's own error"));
        // Later calls fail at once.
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sync.sum(&[1.0]))).is_err());
    }
}
