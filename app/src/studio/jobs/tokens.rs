//! The tokens view's job: the loaded (or the general) tokenizer runs a clip through the
//! engine's `service::tokens::tokenize` (per-layer tokens, decodes from the k coarsest layers,
//! redundancy masks), and the result goes to the tokens slot.

use hitvideo_engine::service::tokens::{self, MaskOptions, TokenizeError};

use super::payload::{SlotName, TokenPayload};
use super::protocol::{Event, Job, Outcome, TokenRequest, TokenSource};
use super::worker::Worker;

pub(super) fn tokenize(w: &mut Worker, job: &Job, req: TokenRequest) -> Outcome {
    // Files and clips through the general tokenizer (made for real footage) when asked and
    // loaded; generated tokens through the tokenizer that made them.
    let general = if req.general && !matches!(req.source, TokenSource::Generated { .. }) { w.general.as_ref() } else { None };
    let Some(tok) = general.or(w.tokenizer.as_ref()) else {
        return Outcome::Failed(
            "no tokenizer loaded: open a tokenizer checkpoint folder (Open tokenizer…) or press \
             \"Use untrained tiny models\" to try the pipeline"
                .into(),
        );
    };
    let mask = MaskOptions { cap: req.cap, tolerance: req.tolerance, fill: req.fill };
    let view = match tokens::tokenize(&tok.model, &tok.cfg, req.source, &mask, &w.device, &job.cancel) {
        Ok(v) => v,
        Err(e @ TokenizeError::Cancelled { .. }) => return Outcome::Cancelled(e.to_string()),
        Err(TokenizeError::Failed(e)) => return Outcome::Failed(e),
    };
    let summary = format!(
        "{}: {} layers, {} tokens; PSNR from all layers {:.2} dB",
        view.label,
        view.layers.len(),
        view.layers.iter().map(|l| l.ids.len()).sum::<usize>(),
        view.psnr.last().copied().unwrap_or(f64::NAN)
    );
    let tokenizer = tok.label.clone();
    w.slots.tokens.put(TokenPayload { job: job.id, tokenizer, view });
    w.emit(Event::Payload { job: job.id, slot: SlotName::Tokens });
    Outcome::Done(summary)
}
