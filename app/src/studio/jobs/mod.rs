//! The studio's engine side: one thread owns the Burn device and the models; the UI talks to
//! it through typed [`Command`]s and [`Event`]s and reads large results from latest-value
//! [`Slots`]. Nothing in this module uses egui; the UI passes a waker that asks for a repaint
//! whenever an event is sent.

mod error;
mod generate;
mod memory;
mod payload;
mod protocol;
mod slot;
mod tokens;
mod train;
mod train_generator;
mod worker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use hitvideo_engine::device::DeviceChoice;

pub use hitvideo_engine::eval::sweep::{AxisValues, SweepAxis, SweepCell};
pub use memory::{DeviceMemory, memory_note};
pub use payload::{ClipPayload, LayerTokens, MaskView, Masks, SlotName, Slots, SweepPayload, TokenPayload, TrainStrip};
pub use protocol::{
    Command, DataChoice, DecodeRequest, Event, GenerateRequest, Job, JobId, ModelStatus, Outcome, RunPreset, SweepRequest, Task, TokenRequest, TokenSource,
    TrainRequest, TrainUpdate,
};
pub use slot::Slot;

/// Called by the engine thread after every event (the UI passes `ctx.request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A job the UI has submitted and not yet seen finish.
#[derive(Debug, Clone)]
pub struct PendingJob {
    pub id: JobId,
    pub task: &'static str,
    pub started: bool,
    cancel: Arc<AtomicBool>,
}

/// The UI's end of the engine thread.
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    rx: mpsc::Receiver<Event>,
    slots: Slots,
    next: JobId,
    pending: Vec<PendingJob>,
    /// Events made on this side (the thread is gone), delivered by the next `poll`.
    local: VecDeque<Event>,
    thread: Option<JoinHandle<()>>,
    /// The engine thread's end of the event channel is gone (reported once).
    stopped: bool,
}

/// Why a job cannot finish once the engine thread is gone.
const STOPPED: &str = "the engine thread stopped unexpectedly, so this job cannot finish; restart the studio (your settings are kept)";

impl EngineHandle {
    /// Starts the engine thread on `device` (chosen on that thread; the answer comes as an
    /// [`Event::Device`]).
    pub fn spawn(device: DeviceChoice, waker: Waker) -> Self {
        let (tx, cmd_rx) = mpsc::channel();
        let (ev_tx, rx) = mpsc::channel();
        let slots = Slots::default();
        let worker_slots = slots.clone();
        let thread =
            std::thread::Builder::new().name("hitvideo-engine".into()).spawn(move || worker::Worker::new(ev_tx, waker, worker_slots).run(&cmd_rx)).ok();
        let mut handle = Self::from_parts(tx, rx, slots, thread);
        if handle.thread.is_none() {
            handle.local.push_back(Event::Device("the engine thread could not be started; restart the studio".into()));
        }
        handle.send(Command::SetDevice(device));
        handle
    }

    fn from_parts(tx: mpsc::Sender<Command>, rx: mpsc::Receiver<Event>, slots: Slots, thread: Option<JoinHandle<()>>) -> Self {
        Self { tx, rx, slots, next: 1, pending: Vec::new(), local: VecDeque::new(), thread, stopped: false }
    }

    fn send(&mut self, cmd: Command) -> bool {
        let ok = self.tx.send(cmd).is_ok();
        if !ok {
            self.local.push_back(Event::Device("the engine thread has stopped; restart the studio".into()));
        }
        ok
    }

    /// Queues `task`; returns its job id.
    pub fn submit(&mut self, task: Task) -> JobId {
        let id = self.next;
        self.next += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        let name = task.name();
        if self.send(Command::Run(Job { id, cancel: Arc::clone(&cancel) }, Box::new(task))) {
            self.pending.push(PendingJob { id, task: name, started: false, cancel });
        } else {
            self.local.push_back(Event::Finished { job: id, outcome: Outcome::Failed("the engine thread has stopped; restart the studio".into()) });
        }
        id
    }

    /// Switches the compute device.
    pub fn set_device(&mut self, choice: DeviceChoice) {
        self.send(Command::SetDevice(choice));
    }

    /// Asks job `id` to stop (a queued job is dropped when its turn comes).
    pub fn cancel(&self, id: JobId) {
        if let Some(p) = self.pending.iter().find(|p| p.id == id) {
            p.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Jobs submitted and not finished, oldest first.
    pub fn pending(&self) -> &[PendingJob] {
        &self.pending
    }

    /// Whether job `id` is queued or running.
    pub fn is_pending(&self, id: JobId) -> bool {
        self.pending.iter().any(|p| p.id == id)
    }

    /// The latest-value slots.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Every event since the last call, in order (call once per frame). When the engine
    /// thread has gone (it panicked outside a job), every pending job finishes as failed with
    /// a message saying so, instead of showing "running" forever.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut out: Vec<Event> = self.local.drain(..).collect();
        loop {
            match self.rx.try_recv() {
                Ok(e) => out.push(e),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    if !self.stopped {
                        self.stopped = true;
                        out.push(Event::Device("the engine thread has stopped; restart the studio".into()));
                        out.push(Event::Warning {
                            job: None,
                            text: "the engine thread stopped unexpectedly and every queued or running job failed; restart the studio (your settings are kept)"
                                .into(),
                        });
                    }
                    let finished: Vec<JobId> = out.iter().filter_map(|e| if let Event::Finished { job, .. } = e { Some(*job) } else { None }).collect();
                    for p in self.pending.iter().filter(|p| !finished.contains(&p.id)) {
                        out.push(Event::Finished { job: p.id, outcome: Outcome::Failed(STOPPED.into()) });
                    }
                    break;
                }
            }
        }
        for e in &out {
            match e {
                Event::Started { job, .. } => {
                    if let Some(p) = self.pending.iter_mut().find(|p| p.id == *job) {
                        p.started = true;
                    }
                }
                Event::Finished { job, .. } => self.pending.retain(|p| p.id != *job),
                _ => {}
            }
        }
        out
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        for p in &self.pending {
            p.cancel.store(true, Ordering::Relaxed);
        }
        let _ = self.tx.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            // Jobs check their cancel flag between steps, so this is normally one step. A job
            // that ignores it (a long single engine call) is left behind after a bounded wait:
            // the window closes, and the process ends the thread. Checkpoints and exports are
            // written atomically, so nothing saved is lost by that.
            let deadline = std::time::Instant::now() + SHUTDOWN_WAIT;
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!("the engine thread did not stop within {SHUTDOWN_WAIT:?}; closing without waiting for it");
            }
        }
    }
}

/// How long closing the studio waits for the engine thread to finish its current step.
pub const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_never_waits_on_a_job_that_ignores_cancel() {
        let (tx, _commands) = mpsc::channel();
        let (_events, rx) = mpsc::channel::<Event>();
        // An engine thread busy in one long call that never looks at its cancel flag.
        let stuck = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(60)));
        let h = EngineHandle::from_parts(tx, rx, Slots::default(), Some(stuck));
        let t = std::time::Instant::now();
        drop(h);
        assert!(t.elapsed() < SHUTDOWN_WAIT + std::time::Duration::from_secs(2), "closing took {:?}", t.elapsed());
    }

    #[test]
    fn a_dead_engine_thread_fails_every_pending_job_once() {
        let (tx, _commands) = mpsc::channel();
        let (events, rx) = mpsc::channel::<Event>();
        let mut h = EngineHandle::from_parts(tx, rx, Slots::default(), None);
        let a = h.submit(Task::LoadTokenizer("a".into()));
        let b = h.submit(Task::LoadTokenizer("b".into()));
        let _ = events.send(Event::Started { job: a, task: "load tokenizer" });
        let _ = events.send(Event::Finished { job: a, outcome: Outcome::Done("ok".into()) });
        drop(events);
        let out = h.poll();
        let failed: Vec<JobId> = out
            .iter()
            .filter_map(|e| match e {
                Event::Finished { job, outcome: Outcome::Failed(m) } if m.contains("restart the studio") => Some(*job),
                _ => None,
            })
            .collect();
        assert_eq!(failed, vec![b], "{out:?}");
        assert!(h.pending().is_empty());
        assert!(out.iter().any(|e| matches!(e, Event::Device(d) if d.contains("stopped"))));
        assert!(out.iter().any(|e| matches!(e, Event::Warning { job: None, text } if text.contains("restart the studio"))), "a notice for the user");
        assert!(h.poll().is_empty(), "the stop is reported once");
    }
}
