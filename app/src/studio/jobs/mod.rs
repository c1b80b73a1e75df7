//! The studio's engine side: one thread owns the Burn device and the models; the UI talks to
//! it through typed [`Command`]s and [`Event`]s and reads large results from latest-value
//! [`Slots`]. Nothing in this module uses egui; the UI passes a waker that asks for a repaint
//! whenever an event is sent.

mod generate;
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

pub use payload::{ClipPayload, LayerTokens, MaskView, Masks, Slots, SweepCell, SweepPayload, TokenPayload, TrainStrip};
pub use protocol::{
    Command, DataChoice, Event, GenerateRequest, Job, JobId, ModelStatus, Outcome, SweepRequest, Task, TokenRequest, TokenSource, TrainRequest,
    TrainUpdate,
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
}

impl EngineHandle {
    /// Starts the engine thread on `device` (chosen on that thread; the answer comes as an
    /// [`Event::Device`]).
    pub fn spawn(device: DeviceChoice, waker: Waker) -> Self {
        let (tx, cmd_rx) = mpsc::channel();
        let (ev_tx, rx) = mpsc::channel();
        let slots = Slots::default();
        let worker_slots = slots.clone();
        let thread = std::thread::Builder::new()
            .name("hitvideo-engine".into())
            .spawn(move || worker::Worker::new(ev_tx, waker, worker_slots).run(&cmd_rx))
            .ok();
        let mut handle = Self { tx, rx, slots, next: 1, pending: Vec::new(), local: VecDeque::new(), thread };
        if handle.thread.is_none() {
            handle.local.push_back(Event::Device("the engine thread could not be started; restart the studio".into()));
        }
        handle.send(Command::SetDevice(device));
        handle
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

    /// Every event since the last call, in order (call once per frame).
    pub fn poll(&mut self) -> Vec<Event> {
        let mut out: Vec<Event> = self.local.drain(..).collect();
        out.extend(self.rx.try_iter());
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
            // Jobs check their cancel flag between steps, so this waits for one step at most.
            let _ = t.join();
        }
    }
}
