//! Frame timing and the debug panel (View → Debug panel, or F12): frame interval and UI time,
//! the device, the engine's queue and the slots.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use eframe::egui;

use super::jobs::{EngineHandle, Event, ModelStatus};

/// Frames kept for statistics.
const WINDOW: usize = 240;

/// Summary of recent frames, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameStats {
    pub frames: u64,
    /// Time between the starts of consecutive frames.
    pub interval_mean: f64,
    pub interval_max: f64,
    /// Time spent building the UI in one frame.
    pub ui_mean: f64,
    pub ui_p95: f64,
    pub ui_max: f64,
}

/// Collects frame times and shows the debug panel.
#[derive(Default)]
pub struct DebugPanel {
    frames: u64,
    last_start: Option<Instant>,
    intervals: VecDeque<f64>,
    ui_times: VecDeque<f64>,
    last_event: Option<(Instant, String)>,
    events: u64,
}

fn push(q: &mut VecDeque<f64>, v: f64) {
    if q.len() == WINDOW {
        q.pop_front();
    }
    q.push_back(v);
}

impl DebugPanel {
    /// Call at the start of a frame; returns the start time for [`Self::frame_end`].
    pub fn frame_start(&mut self) -> Instant {
        let now = Instant::now();
        if let Some(prev) = self.last_start {
            push(&mut self.intervals, ms(now - prev));
        }
        self.last_start = Some(now);
        self.frames += 1;
        now
    }

    pub fn frame_end(&mut self, started: Instant) {
        push(&mut self.ui_times, ms(started.elapsed()));
    }

    pub fn on_event(&mut self, e: &Event) {
        self.events += 1;
        let text = match e {
            Event::Train { update, .. } => format!("{update:?}"),
            other => format!("{other:?}"),
        };
        self.last_event = Some((Instant::now(), text.chars().take(120).collect()));
    }

    pub fn stats(&self) -> FrameStats {
        let mean = |q: &VecDeque<f64>| if q.is_empty() { 0.0 } else { q.iter().sum::<f64>() / q.len() as f64 };
        let max = |q: &VecDeque<f64>| q.iter().copied().fold(0.0, f64::max);
        let mut sorted: Vec<f64> = self.ui_times.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let p95 = sorted.get((sorted.len() * 95 / 100).min(sorted.len().saturating_sub(1))).copied().unwrap_or(0.0);
        FrameStats {
            frames: self.frames,
            interval_mean: mean(&self.intervals),
            interval_max: max(&self.intervals),
            ui_mean: mean(&self.ui_times),
            ui_p95: p95,
            ui_max: max(&self.ui_times),
        }
    }

    pub fn ui(&self, ui: &mut egui::Ui, device: &str, models: &ModelStatus, engine: &EngineHandle) {
        let s = self.stats();
        ui.heading("Debug");
        ui.label(format!(
            "frames {}; frame interval mean {:.1} ms (max {:.1}); UI time mean {:.2} ms, p95 {:.2}, max {:.2}",
            s.frames, s.interval_mean, s.interval_max, s.ui_mean, s.ui_p95, s.ui_max
        ));
        ui.label(format!("device: {device}"));
        ui.label(format!("tokenizer: {}; generator: {}", models.tokenizer.as_deref().unwrap_or("none"), models.generator.as_deref().unwrap_or("none")));
        let queue: Vec<String> = engine.pending().iter().map(|p| format!("#{} {}{}", p.id, p.task, if p.started { " (running)" } else { "" })).collect();
        ui.label(format!("engine: {}", if queue.is_empty() { "idle".to_string() } else { queue.join(", ") }));
        let sl = engine.slots();
        ui.label(format!(
            "slots: clip v{}, tokens v{}, sweep v{}, train strip v{}",
            sl.clip.version(),
            sl.tokens.version(),
            sl.sweep.version(),
            sl.train_strip.version()
        ));
        if let Some((at, text)) = &self.last_event {
            ui.label(format!("{} events; last {:.1} s ago: {text}", self.events, at.elapsed().as_secs_f64()));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
