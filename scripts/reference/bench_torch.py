#!/usr/bin/env python3
"""The PyTorch peer of `hitvideo bench`: the shipped networks, built in PyTorch, timed the same way.

What it replicates (issue 22, "training throughput at PyTorch's level on the same network"): the
engine's `tiny` tokenizer (or `small`) and the `tiny` generator exactly as `hitvideo bench`
constructs them (engine/src/bench/{tokenizer,generator}.rs), layer for layer, with the same
parameter counts (the `tiny` tokenizer 775,922, the `tiny` generator with its small text encoder
1,996,384; both are printed and checked):

- tokenizer (engine/src/tokenizer/): causal 3D convolutions (past-only time padding that repeats
  the first frame, zero padding in space), per-frame group norm + SiLU, strided encoder stages,
  causal compressors/expanders with ResNet blocks between the four LFQ layers, 1x1x1 projections,
  per-bit normalization before the sign (batch statistics in training, running ones otherwise),
  LFQ with a straight-through sign, commitment, sample entropy and the codebook entropy computed
  exactly in groups of at most 9 bits, and the sub-pixel (depth-to-space) decoder;
- its training step (engine/src/train/tokenizer.rs, the bench's settings): L1 + 4 x squared
  error + 0.25 x commitment + 0.1 x (sample entropy - codebook entropy), all layers, no
  discriminator, AdamW (betas 0.9/0.99, eps 1e-8, weight decay 1e-4, lr 1e-3 with 50 warm-up
  steps and a cosine to 5%) with each parameter's gradient clipped to norm 1;
- generator (engine/src/generator/): width 128, 4 Llama blocks (RMSNorm, 4-head attention with
  3D RoPE on the finest grid and a causal mask that hides padded prefix keys, SwiGLU of width
  352), a prefix of the prompt's features (left-padded) + BOS, global text conditioning, a
  learned unconditional prefix, one input embedding and one output head per token layer, and
  the small text encoder (hashed words, 2 pre-LN blocks) trained jointly;
- its training step (engine/src/train/generator.rs): per-layer cross-entropy weighted 2,2,2,1,
  token dropout 0.1, condition dropout 0.1, AdamW (0.9/0.95, eps 1e-8, weight decay 0.01, lr
  1e-3 with 100 warm-up steps) with each parameter's gradient clipped to norm 1, on random ids
  drawn as the bench's synthetic token cache draws them;
- generation of one sequence (308 video tokens, batch 1, CFG off) with and without a KV-cache,
  and one clip with CFG 7.5 (text encoding, generation as one batch of 2 rows, tokenizer decode).

It prints one JSON object with the keys `hitvideo bench` writes (`data` is null: the Rust bench's
video-decoding and synthetic-rendering figures are not network throughput), plus
`framework`, `torch_version`, `parameters` and the other keys listed in `extra_keys`.
Each figure is taken as the Rust bench takes it: tokenizer inference is the median of
`--repeat` runs after one warm-up, a tokenizer training step the mean of `--train-steps` steps
after one warm-up step, generation the best of `--repeat` runs (the run without the cache once),
a generator training step the best of `--repeat` steps after one warm-up step.

Run it from the repository root:

    python3 -m venv /work/venv-ref
    /work/venv-ref/bin/pip install -r scripts/reference/requirements-bench.txt
    /work/venv-ref/bin/python scripts/reference/bench_torch.py --repeat 5 --batch 8 --train-steps 5 --threads 2

and measure the ratio side by side, on the same machine, in the same hour, with nothing else
running, against

    hitvideo --device cpu bench --repeat 5 --batch 8 --train-steps 5

(`--threads` should equal the threads Burn uses: all cores, 2 on the project's machine). Timings
taken while anything else uses the CPUs (a cargo build) mean nothing.
"""

import argparse
import json
import math
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# Parameter counts of the Rust networks as `hitvideo bench` builds them (Module::num_params):
# tiny's as measured (shared/notes/cpu-profile-2026-12.md); small's counted by hand from
# engine/src/tokenizer/{config,model,blocks}.rs (bit-norm running statistics are not parameters,
# the mask embeddings are).
RUST_PARAMETERS = {"tokenizer:tiny": 775_922, "tokenizer:small": 2_411_032, "generator:tiny": 1_996_384}

# ---------------------------------------------------------------------------------------------
# Tokenizer presets (engine/src/tokenizer/config.rs). Layers coarsest first: (t, h, w, bits).
# Every preset sets bit_norm and subpixel_decoder.
# ---------------------------------------------------------------------------------------------
TOKENIZER_PRESETS = {
    "tiny": dict(frames=16, height=32, width=32, fps=8.0, patch=(1, 1), channels=[32, 32], latent=32,
                 layers=[(1, 2, 2, 5), (1, 4, 4, 6), (2, 4, 4, 8), (4, 8, 8, 10)], blocks_per_stage=0),
    "small": dict(frames=16, height=64, width=64, fps=8.0, patch=(1, 1), channels=[48, 96], latent=32,
                  layers=[(1, 4, 4, 6), (1, 8, 8, 8), (2, 8, 8, 8), (4, 16, 16, 10)], blocks_per_stage=1),
}

GROUP_BITS = 9  # lfq.rs: joint code distribution computed exactly within groups of 9 bits
MASK_EMBED_BITS_GAIN = 32.0


def temporal_stages(cfg):
    """How many of the first encoder stages also halve time (TokenizerConfig::temporal_stages)."""
    frames = cfg["frames"] // cfg["patch"][0]
    finest_t = cfg["layers"][-1][0]
    k = 0
    while (frames >> k) > finest_t and k < len(cfg["channels"]):
        k += 1
    return k


def group_norm(channels):
    """Group norm with up to 8 groups that divide the channels (blocks.rs)."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels, eps=1e-5)


def frame_norm(norm, x):
    """Group norm of each frame on its own: [B, C, T, H, W] -> same (blocks.rs frame_norm)."""
    b, c, t, h, w = x.shape
    y = norm(x.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, c, h, w).transpose(1, 2)


def norm_act(norm, x):
    return F.silu(frame_norm(norm, x))


class CausalConv3d(nn.Module):
    """A 3D conv that never looks at future frames: `kernel_t - stride_t` past frames of padding
    repeating the first frame, zero padding of `kernel // 2` in space (done by the convolution
    itself here; Burn pads explicitly, the result is the same)."""

    def __init__(self, c_in, c_out, kernel, stride):
        super().__init__()
        self.pad_t = max(kernel - stride[0], 0)
        p = kernel // 2
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride=tuple(stride), padding=(0, p, p))

    def forward(self, x):
        if self.pad_t > 0:
            x = F.pad(x, (0, 0, 0, 0, self.pad_t, 0), mode="replicate")
        return self.conv(x)


class ResBlock(nn.Module):
    """Pre-activation ResNet block: GN, SiLU, causal conv, GN, SiLU, causal conv (+ 1x1x1 skip)."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = CausalConv3d(c_in, c_out, 3, (1, 1, 1))
        self.norm2 = group_norm(c_out)
        self.conv2 = CausalConv3d(c_out, c_out, 3, (1, 1, 1))
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x):
        h = self.conv1(F.silu(frame_norm(self.norm1, x)))
        h = self.conv2(F.silu(frame_norm(self.norm2, h)))
        return (self.skip(x) if self.skip is not None else x) + h


def upsample(x, f):
    """Nearest-neighbour upsampling by integer factors (t, h, w)."""
    if tuple(f) == (1, 1, 1):
        return x
    return F.interpolate(x, scale_factor=tuple(float(v) for v in f), mode="nearest")


def space_to_depth(x, pt, ps):
    if pt == 1 and ps == 1:
        return x
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // pt, pt, h // ps, ps, w // ps, ps).permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(b, c * pt * ps * ps, t // pt, h // ps, w // ps)


def depth_to_space(x, pt, ps):
    """[B, C pt ps², T, H, W] -> [B, C, T pt, H ps, W ps] (blocks.rs depth_to_space)."""
    if pt == 1 and ps == 1:
        return x
    b, cp, t, h, w = x.shape
    c = cp // (pt * ps * ps)
    x = x.reshape(b, c, pt, ps, ps, t, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(b, c, t * pt, h * ps, w * ps)


class DownStage(nn.Module):
    def __init__(self, c_in, c_out, stride, blocks):
        super().__init__()
        self.down = CausalConv3d(c_in, c_out, 3, stride)
        self.norm = group_norm(c_out)
        self.blocks = nn.ModuleList(ResBlock(c_out, c_out) for _ in range(blocks))

    def forward(self, x):
        h = norm_act(self.norm, self.down(x))
        for b in self.blocks:
            h = b(h)
        return h


class UpStage(nn.Module):
    """Sub-pixel decoder stage: conv at the coarse grid to f_t f_h f_w times the channels, then
    depth-to-space; every stage but the last then has GN + SiLU and ResNet blocks."""

    def __init__(self, c_in, c_out, factor, last, blocks):
        super().__init__()
        self.factor = factor
        self.conv = CausalConv3d(c_in, c_out * factor[0] * factor[1] * factor[2], 3, (1, 1, 1))
        self.norm = None if last else group_norm(c_out)
        self.blocks = nn.ModuleList(ResBlock(c_out, c_out) for _ in range(0 if last else blocks))

    def forward(self, x):
        h = depth_to_space(self.conv(x), self.factor[0], self.factor[1])
        if self.norm is not None:
            h = norm_act(self.norm, h)
        for b in self.blocks:
            h = b(h)
        return h


class Resampler(nn.Module):
    """Compressor (strided causal conv) or expander (upsample + conv), then a ResNet block."""

    def __init__(self, lat, stride, up):
        super().__init__()
        self.conv = CausalConv3d(lat, lat, 3, stride)
        self.block = ResBlock(lat, lat)
        self.up = up

    def forward(self, x):
        return self.block(self.conv(upsample(x, self.up)))


class BitNorm(nn.Module):
    """Per-bit normalization before the sign, no affine; running stats (momentum 0.1) as buffers."""

    def __init__(self, bits):
        super().__init__()
        self.register_buffer("mean", torch.zeros(bits))
        self.register_buffer("var", torch.ones(bits))

    def forward(self, z, train):
        if train:
            var, mean = torch.var_mean(z, dim=(0, 2, 3, 4), correction=0, keepdim=True)
            with torch.no_grad():
                self.mean.mul_(0.9).add_(mean.detach().flatten(), alpha=0.1)
                self.var.mul_(0.9).add_(var.detach().flatten(), alpha=0.1)
        else:
            mean = self.mean.view(1, -1, 1, 1, 1)
            var = self.var.view(1, -1, 1, 1, 1)
        return (z - mean) / torch.sqrt(var + 1e-5)


class QuantLayer(nn.Module):
    def __init__(self, lat, bits):
        super().__init__()
        self.pre = nn.Conv3d(lat, bits, 1)
        self.norm = BitNorm(bits)
        self.post = nn.Conv3d(bits, lat, 1)
        self.bits = bits


def binary_entropy(p):
    eps = 1e-6
    q = 1.0 - p
    return -(p * p.clamp(eps, 1.0).log() + q * q.clamp(eps, 1.0).log())


_BIT_TABLES = {}


def bit_table(g, device):
    """[g, 2^g]: bit i of code c."""
    key = (g, device)
    if key not in _BIT_TABLES:
        with torch.inference_mode(False):  # a normal tensor, usable in training steps too
            codes = torch.arange(1 << g, device=device)
            _BIT_TABLES[key] = ((codes[None, :] >> torch.arange(g, device=device)[:, None]) & 1).float()
    return _BIT_TABLES[key]


def grouped_codebook_entropy(logits):
    """Entropy of the batch-average code distribution, exact within groups of <= 9 bits."""
    d = logits.shape[1]
    x = logits.transpose(0, 1).reshape(d, -1).t()  # [N, D]
    log_p1 = F.logsigmoid(x)
    log_p0 = F.logsigmoid(-x)
    total = logits.new_zeros(())
    start = 0
    while start < d:
        g = min(GROUP_BITS, d - start)
        on = bit_table(g, logits.device)
        off = 1.0 - on
        log_q = log_p1[:, start:start + g] @ on + log_p0[:, start:start + g] @ off  # [N, 2^g]
        avg = log_q.exp().mean(0)
        total = total - (avg * avg.clamp(1e-12, 1.0).log()).sum()
        start += g
    return total


def quantize(z, tau):
    """LFQ (lfq.rs quantize): sign with straight-through gradient, ids, and the loss terms."""
    d = z.shape[1]
    positive = z > 0
    q = positive.float() * 2.0 - 1.0
    codes = z + (q - z).detach()
    weights = torch.pow(2, torch.arange(d, device=z.device)).view(1, d, 1, 1, 1)
    indices = (positive.long() * weights).sum(1)
    commitment = (z - q).pow(2).mean()
    p = torch.sigmoid(z * (4.0 / tau))
    sample_entropy = binary_entropy(p).sum(1).mean()
    codebook_entropy = grouped_codebook_entropy(z * (4.0 / tau))
    return dict(codes=codes, indices=indices, commitment=commitment,
                sample_entropy=sample_entropy, codebook_entropy=codebook_entropy)


def codes_from_indices(indices, bits):
    powers = torch.arange(bits, device=indices.device).view(1, bits, 1, 1, 1)
    return ((indices.unsqueeze(1) >> powers) & 1).float() * 2.0 - 1.0


class Tokenizer(nn.Module):
    """engine/src/tokenizer/model.rs Tokenizer (no grid adapter: the multi-layer presets lack it)."""

    def __init__(self, cfg):
        super().__init__()
        ch, lat, nb = cfg["channels"], cfg["latent"], cfg["blocks_per_stage"]
        s, ts = len(ch), temporal_stages(cfg)
        pt, ps = cfg["patch"]
        px = 3 * pt * ps * ps
        width = lambda i: px if i == 0 else ch[i - 1]  # noqa: E731
        self.patch = (pt, ps)
        self.down = nn.ModuleList(
            DownStage(width(i), ch[i], (2 if i < ts else 1, 2, 2), nb) for i in range(s))
        self.enc_out = nn.Conv3d(ch[s - 1], lat, 1)
        layers = cfg["layers"]
        self.compress = nn.ModuleList()
        self.expand = nn.ModuleList()
        for j in range(len(layers) - 1):
            c, f = layers[j], layers[j + 1]
            factor = (f[0] // c[0], f[1] // c[1], f[2] // c[2])
            self.compress.append(Resampler(lat, factor, (1, 1, 1)))
            self.expand.append(Resampler(lat, (1, 1, 1), factor))
        self.quant = nn.ModuleList(QuantLayer(lat, l[3]) for l in layers)
        self.dec_in = nn.Conv3d(lat, ch[s - 1], 1)
        self.dec_in_norm = group_norm(ch[s - 1])
        self.up = nn.ModuleList(
            UpStage(ch[i], width(i), (2 if i < ts else 1, 2, 2), i == 0, nb) for i in reversed(range(s)))
        self.mask_embed = nn.ParameterList(nn.Parameter(torch.zeros(l[3])) for l in layers)

    def latents(self, x):
        h = space_to_depth(x, *self.patch)
        for stage in self.down:
            h = stage(h)
        out = [self.enc_out(h)]
        for c in reversed(self.compress):
            out.insert(0, c(out[0]))
        return out

    def logits_of_latents(self, latents, train):
        return [q.norm(q.pre(z), train) for z, q in zip(latents, self.quant)]

    def encode(self, x, tau=1.0):
        return [quantize(z, tau) for z in self.logits_of_latents(self.latents(x), False)]

    def decode(self, codes):
        k = max(1, min(len(codes), len(self.quant)))
        d = self.quant[0].post(codes[0])
        for j, e in enumerate(self.expand):
            d = e(d)
            if j + 1 < k:
                d = d + self.quant[j + 1].post(codes[j + 1])
        h = norm_act(self.dec_in_norm, self.dec_in(d))
        for stage in self.up:
            h = stage(h)
        return depth_to_space(h, *self.patch)

    def decode_indices(self, indices):
        return self.decode([codes_from_indices(i, q.bits) for i, q in zip(indices, self.quant)])


# ---------------------------------------------------------------------------------------------
# Optimizer: AdamW with per-parameter gradient-norm clipping (Burn's GradientClipping::Norm
# clips each parameter's gradient on its own: g * min(1, c / (|g| + f32::MIN_POSITIVE))).
# ---------------------------------------------------------------------------------------------
F32_MIN_POSITIVE = torch.finfo(torch.float32).tiny


def clip_each_parameter(params, max_norm):
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch._foreach_norm(grads)
    coefs = [torch.clamp(max_norm / (n + F32_MIN_POSITIVE), max=1.0) for n in norms]
    torch._foreach_mul_(grads, coefs)


def lr_at(step, total, peak, warmup, min_ratio):
    """engine/src/train/schedule.rs lr_at."""
    if step < warmup:
        return peak * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    floor = peak * min_ratio
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def adamw(params, betas, eps, weight_decay, impl):
    kw = {}
    if impl == "foreach":
        kw["foreach"] = True
    elif impl == "fused":
        kw["fused"] = True
    return torch.optim.AdamW(params, lr=1e-3, betas=betas, eps=eps, weight_decay=weight_decay, **kw)


class TokenizerTrainer:
    """engine/src/train/tokenizer.rs train_step with the bench's settings (no GAN, no masking,
    all layers active, no partial decodes)."""

    def __init__(self, cfg, steps, impl):
        self.model = Tokenizer(cfg)
        self.model.train()
        self.params = [p for p in self.model.parameters()]
        self.opt = adamw(self.params, (0.9, 0.99), 1e-8, 1e-4, impl)
        self.steps, self.step_no = steps, 0

    def train_step(self, x):
        m = self.model
        enc = [quantize(z, 1.0) for z in m.logits_of_latents(m.latents(x), True)]
        recon = m.decode([o["codes"] for o in enc])
        err = recon - x
        l1 = err.abs().mean()
        loss = l1 + (err * err).mean() * 4.0
        commit = sum(o["commitment"] for o in enc)
        entropy = sum(o["sample_entropy"] - o["codebook_entropy"] for o in enc)
        loss = loss + commit * 0.25 + entropy * 0.1
        lr = lr_at(self.step_no, self.steps, 1e-3, 50, 0.05)
        loss_value = loss.item()
        logged = (l1.item(), commit.item(), entropy.item())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if math.isfinite(loss_value):
            clip_each_parameter(self.params, 1.0)
            for g in self.opt.param_groups:
                g["lr"] = lr
            self.opt.step()
        self.step_no += 1
        return loss_value, logged


# ---------------------------------------------------------------------------------------------
# Text: the small learned encoder (engine/src/text/small.rs) and its hashed-word tokenizer.
# ---------------------------------------------------------------------------------------------
PAD_ID, BOS_ID, RESERVED = 0, 1, 2


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def small_tokenize(prompt, vocab):
    buckets = max(vocab - RESERVED, 1)
    ident = lambda w: RESERVED + fnv1a(w.encode("utf-8")) % buckets  # noqa: E731
    text = " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in prompt).split()).lower()
    ids, word = [BOS_ID], ""
    for c in text:
        if c.isalnum():
            word += c
            continue
        if word:
            ids.append(ident(word))
            word = ""
        if not c.isspace():
            ids.append(ident(c))
    if word:
        ids.append(ident(word))
    return ids


class SmallBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-5)
        self.up = nn.Linear(d, 2 * d)
        self.down = nn.Linear(2 * d, d)

    def forward(self, x, allowed):
        b, l, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.norm1(x)).view(b, l, 3, h, d // h).unbind(2)
        ctx = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=allowed)
        x = x + self.proj(ctx.transpose(1, 2).reshape(b, l, d))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class SmallTextEncoder(nn.Module):
    def __init__(self, vocab=4096, dim=128, layers=2, heads=4, max_len=120):
        super().__init__()
        self.vocab, self.max_len = vocab, max_len
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(SmallBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def encode(self, prompts, max_len):
        rows = [small_tokenize(p, self.vocab)[:max_len] for p in prompts]
        lengths = [len(r) for r in rows]
        l = max(max(lengths), 1)
        ids = torch.tensor([r + [PAD_ID] * (l - len(r)) for r in rows], dtype=torch.long)
        return self.forward(ids, lengths), lengths

    def forward(self, ids, lengths):
        b, l = ids.shape
        x = self.tokens(ids.clamp(0, self.vocab - 1)) + self.positions(torch.arange(l)).unsqueeze(0)
        t = torch.arange(l)
        n = torch.tensor(lengths)
        allowed = (t[None, :] < n.clamp(min=1)[:, None]).view(b, 1, 1, l)
        for blk in self.blocks:
            x = blk(x, allowed)
        valid = (t[None, :] < n[:, None]).float()
        return self.norm(x) * valid.unsqueeze(2)


# ---------------------------------------------------------------------------------------------
# Generator (engine/src/generator/).
# ---------------------------------------------------------------------------------------------
def head_groups(bits, max_bits):
    n = max(-(-bits // max(max_bits, 1)), 1)
    return [bits // n + (1 if i < bits % n else 0) for i in range(n)]


def generator_config(tok_cfg, preset="tiny"):
    dim, depth, heads = {"tiny": (128, 4, 4), "paper": (2048, 24, 16)}[preset]
    layers = tok_cfg["layers"]
    n = len(layers)
    return dict(dim=dim, depth=depth, heads=heads, mlp=dim * 8 // 3 // 32 * 32 + 32, layers=layers,
                max_head_bits=12, loss_weights=[1.0 if j + 1 == n else 2.0 for j in range(n)],
                token_dropout=0.1, cond_dropout=0.1, rope_theta=10000.0, norm_eps=1e-5,
                text_dim=128, text_max_len=120, small_vocab=4096, small_layers=2, small_heads=4)


def layer_offsets(layers):
    out = [0]
    for t, h, w, _ in layers:
        out.append(out[-1] + t * h * w)
    return out


def pair_freqs(head_dim, theta):
    half = head_dim // 2
    s0 = -(-half // 3)
    s1 = -(-(half - s0) // 2)
    out = []
    for axis, n in enumerate([s0, s1, half - s0 - s1]):
        out += [(axis, theta ** (-i / max(n, 1))) for i in range(n)]
    return out


def sequence_rope(cfg, prefix, video):
    """cos/sin tables [prefix + video, head_dim]: prefix rows unrotated, video tokens at the
    centre of the region they cover on the finest grid (rope_finest_grid)."""
    head_dim = cfg["dim"] // cfg["heads"]
    freqs = pair_freqs(head_dim, cfg["rope_theta"])
    finest = cfg["layers"][-1][:3]
    pos = []
    for (t, h, w, _) in cfg["layers"]:
        grid = (t, h, w)
        for it in range(t):
            for ih in range(h):
                for iw in range(w):
                    pos.append([(i + 0.5) * f / max(n, 1) - 0.5 for i, n, f in zip((it, ih, iw), grid, finest)])
    angles = [[0.0] * len(freqs)] * prefix + [[p[a] * f for a, f in freqs] for p in pos[:video]]
    a = torch.tensor(angles, dtype=torch.float64)
    a = torch.cat([a, a], 1)
    return a.cos().float(), a.sin().float()


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


class LayerCache:
    """Preallocated keys and values [B, H, S_max, dh], filled in place (cache.rs)."""

    def __init__(self, b, h, max_len, dh):
        self.k = torch.zeros(b, h, max_len, dh)
        self.v = torch.zeros(b, h, max_len, dh)
        self.len = 0

    def append(self, k, v):
        end = self.len + k.shape[2]
        self.k[:, :, self.len:end] = k
        self.v[:, :, self.len:end] = v
        self.len = end
        return self.k[:, :, :end], self.v[:, :, :end]


class Block(nn.Module):
    """Llama block: RMSNorm, attention with 3D RoPE and a boolean mask, RMSNorm, SwiGLU."""

    def __init__(self, d, heads, hidden, eps):
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.RMSNorm(d, eps=eps)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.mlp_norm = nn.RMSNorm(d, eps=eps)
        self.w_gate = nn.Linear(d, hidden, bias=False)
        self.w_up = nn.Linear(d, hidden, bias=False)
        self.w_down = nn.Linear(hidden, d, bias=False)

    def forward(self, x, cos, sin, allowed, cache=None):
        b, s, d = x.shape
        h = self.heads
        heads = lambda t: t.view(b, s, h, d // h).transpose(1, 2)  # noqa: E731
        n = self.attn_norm(x)
        q = apply_rope(heads(self.wq(n)), cos, sin)
        k = apply_rope(heads(self.wk(n)), cos, sin)
        v = heads(self.wv(n))
        if cache is not None:
            k, v = cache.append(k, v)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + self.wo(ctx.transpose(1, 2).reshape(b, s, d))
        n = self.mlp_norm(x)
        return x + self.w_down(F.silu(self.w_gate(n)) * self.w_up(n))


def allowed_mask(valid):
    """[B, 1, S, S] True = attended: causal, invalid keys hidden except from themselves
    (model.rs attention_mask, negated)."""
    v = torch.tensor(valid, dtype=torch.bool)
    s = v.shape[1]
    idx = torch.arange(s)
    causal = idx[None, :] <= idx[:, None]
    eye = idx[None, :] == idx[:, None]
    return (causal[None] & (v[:, None, :] | eye[None])).unsqueeze(1)


class Generator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["dim"]
        self.cfg = cfg
        self.text_proj = nn.Linear(cfg["text_dim"], d)
        self.uncond = nn.Parameter(torch.randn(1, d) * 0.02)
        self.bos = nn.Parameter(torch.randn(1, d) * 0.02)
        self.layer_embed = nn.Embedding(len(cfg["layers"]), d)
        self.groups = [head_groups(l[3], cfg["max_head_bits"]) for l in cfg["layers"]]
        self.embed = nn.ModuleList(nn.ModuleList(nn.Embedding(1 << g, d) for g in gs) for gs in self.groups)
        self.head = nn.ModuleList(nn.ModuleList(nn.Linear(d, 1 << g) for g in gs) for gs in self.groups)
        self.blocks = nn.ModuleList(Block(d, cfg["heads"], cfg["mlp"], cfg["norm_eps"]) for _ in range(cfg["depth"]))
        self.norm = nn.RMSNorm(d, eps=cfg["norm_eps"])
        self.text_encoder = SmallTextEncoder(cfg["small_vocab"], cfg["text_dim"], cfg["small_layers"],
                                             cfg["small_heads"], cfg["text_max_len"])
        self.global_proj = nn.Linear(cfg["text_dim"], d)
        self.global_null = nn.Parameter(torch.randn(1, d) * 0.02)

    def encode_prompts(self, prompts, uncond=None):
        feats, lengths = self.text_encoder.encode(prompts, min(self.cfg["text_max_len"], self.text_encoder.max_len))
        return dict(features=feats, lengths=lengths, uncond=list(uncond) if uncond else [False] * len(prompts))

    def prefix(self, text):
        """Left-padded projected prompt (unconditional rows: the learned prefix) + BOS, the
        validity of each position, and the global conditioning [B, 1, D]."""
        feats = text["features"]
        b, l, _ = feats.shape
        d = self.cfg["dim"]
        lens = [1 if u else min(max(n, 1), max(l, 1)) for n, u in zip(text["lengths"], text["uncond"])]
        p = max(max(lens), 1)
        proj = self.text_proj(feats)
        idx = torch.tensor([[min(max(i + n - p, 0), l - 1) for i in range(p)] for n in lens])
        emb = proj.gather(1, idx.unsqueeze(2).expand(b, p, d))
        u = None
        if any(text["uncond"]):
            u = torch.tensor([float(x) for x in text["uncond"]]).view(b, 1, 1)
            slot = torch.zeros(1, p, 1)
            slot[0, p - 1, 0] = 1.0
            emb = emb * (1.0 - u) + (self.uncond.view(1, 1, d) * slot) * u
        w = torch.zeros(b, l, 1)
        for r, n in enumerate(lens):
            w[r, :min(n, l)] = 1.0 / n
        g = self.global_proj((feats * w).sum(1, keepdim=True))
        if u is not None:
            g = g * (1.0 - u) + self.global_null.view(1, 1, d) * u
        bos = self.bos.view(1, 1, d).expand(b, 1, d) + g
        valid = [[i >= p - n for i in range(p + 1)] for n in lens]
        return torch.cat([emb, bos], 1), valid, g

    def embed_tokens(self, first_layer, ids):
        parts = []
        for i, x in enumerate(ids):
            j = first_layer + i
            e = None
            off = 0
            for g, emb in zip(self.groups[j], self.embed[j]):
                part = emb((x >> off) & ((1 << g) - 1))
                e = part if e is None else e + part
                off += g
            parts.append(e + self.layer_embed.weight[j])
        return torch.cat(parts, 1)

    def run(self, x, cos, sin, allowed, caches=None):
        h = x
        for i, blk in enumerate(self.blocks):
            h = blk(h, cos, sin, allowed, None if caches is None else caches[i])
        return self.norm(h)

    def forward_train(self, text, ids):
        emb, valid, g = self.prefix(text)
        p = emb.shape[1]
        video = self.embed_tokens(0, ids) + g
        n = video.shape[1]
        x = torch.cat([emb, video[:, :n - 1]], 1)
        cos, sin = sequence_rope(self.cfg, p, n - 1)
        allowed = allowed_mask([r + [True] * (n - 1) for r in valid])
        h = self.run(x, cos, sin, allowed)
        return h[:, p - 1:p - 1 + n]

    def layer_losses(self, h, targets):
        off = layer_offsets(self.cfg["layers"])
        total, wsum, per_layer = 0.0, 0.0, []
        for j, target in enumerate(targets):
            hj = h[:, off[j]:off[j + 1]]
            nll = None
            shift = 0
            for g, head in zip(self.groups[j], self.head[j]):
                logits = head(hj)
                t = (target >> shift) & ((1 << g) - 1)
                ce = F.cross_entropy(logits.reshape(-1, 1 << g), t.reshape(-1))
                nll = ce if nll is None else nll + ce
                shift += g
            w = self.cfg["loss_weights"][j]
            total = total + nll * w
            wsum += w
            per_layer.append(nll)
        return total / max(wsum, 1e-6), per_layer


class GeneratorTrainer:
    """engine/src/train/generator.rs train_step on a synthetic token cache, as bench builds it."""

    def __init__(self, cfg, batch, impl, seed=0):
        self.cfg, self.batch, self.seed = cfg, batch, seed
        self.model = Generator(cfg)
        self.model.train()
        self.params = list(self.model.parameters())
        self.opt = adamw(self.params, (0.9, 0.95), 1e-8, 0.01, impl)
        self.step_no, self.steps = 0, 3000
        n = layer_offsets(cfg["layers"])[-1]
        bits = [l[3] for l in cfg["layers"] for _ in range(l[0] * l[1] * l[2])]
        self.items = 64
        ids = [((i * 2_654_435_761) & 0xFFFFFFFF) % (1 << bits[i % n]) for i in range(self.items * n)]
        self.ids = torch.tensor(ids, dtype=torch.long).view(self.items, n)
        self.captions = [f"a red circle moves left {i}" for i in range(self.items)]
        self.train_items = [i for i in range(self.items) if i % 8 != 0]

    def train_step(self):
        cfg = self.cfg
        rng = random.Random((self.seed ^ 0x6C6D_7472) * 1_000_003 + self.step_no)
        gen = torch.Generator().manual_seed(rng.getrandbits(63))
        rows = [self.train_items[rng.randrange(len(self.train_items))] for _ in range(self.batch)]
        off = layer_offsets(cfg["layers"])
        seq = self.ids[rows]
        targets = [seq[:, off[j]:off[j + 1]] for j in range(len(cfg["layers"]))]
        inputs = []
        for t, l in zip(targets, cfg["layers"]):
            drop = torch.rand(t.shape, generator=gen) < cfg["token_dropout"]
            rand = torch.randint(0, 1 << l[3], t.shape, generator=gen)
            inputs.append(torch.where(drop, rand, t))
        uncond = [rng.random() < cfg["cond_dropout"] for _ in rows]
        text = self.model.encode_prompts([self.captions[r] for r in rows], uncond)
        h = self.model.forward_train(text, inputs)
        loss, per_layer = self.model.layer_losses(h, targets)
        lr = lr_at(self.step_no, self.steps, 1e-3, 100, 0.05)
        loss_value = loss.item()
        _ = [x.item() for x in per_layer]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if math.isfinite(loss_value):
            clip_each_parameter(self.params, 1.0)
            for g in self.opt.param_groups:
                g["lr"] = lr
            self.opt.step()
        self.step_no += 1
        return loss_value


@torch.inference_mode()
def generate(model, cond, cfg_scale, use_cache, seed=0):
    """generate.rs generate for B rows: optional CFG as one batch of 2B rows (unconditional
    rows take the learned prefix), a KV-cache or the whole sequence rerun at every step,
    sampling at temperature 1 without top-k/top-p (a seeded multinomial per step)."""
    cfg = model.cfg
    b = len(cond["lengths"])
    guided = abs(cfg_scale - 1.0) > 1e-6
    if guided:
        text = dict(features=torch.cat([cond["features"], cond["features"]], 0), lengths=cond["lengths"] * 2,
                    uncond=[False] * b + [True] * b)
    else:
        text = cond
    rows = len(text["lengths"])
    layers = cfg["layers"]
    n = layer_offsets(layers)[-1]
    layer_of = [j for j, l in enumerate(layers) for _ in range(l[0] * l[1] * l[2])]
    gens = [torch.Generator().manual_seed(seed + r) for r in range(b)]
    emb, valid, g = model.prefix(text)
    p = emb.shape[1]
    total = p + n
    allowed = allowed_mask([r + [True] * n for r in valid])
    cos, sin = sequence_rope(cfg, p, n)
    dh = cfg["dim"] // cfg["heads"]
    caches = [LayerCache(rows, cfg["heads"], total, dh) for _ in model.blocks] if use_cache else None
    x = emb
    h = model.run(x, cos[:p], sin[:p], allowed[:, :, :p, :p], caches)
    tokens = [[] for _ in range(b)]
    for i, j in enumerate(layer_of):
        hl = h[:, -1:]
        ids = torch.zeros(b, dtype=torch.long)
        shift = 0
        for gbits, head in zip(model.groups[j], model.head[j]):
            logits = head(hl)[:, 0]
            if guided:
                c, u = logits[:b], logits[b:]
                logits = u + cfg_scale * (c - u)
            probs = torch.softmax(logits.double(), -1)
            sub = torch.cat([torch.multinomial(probs[r], 1, generator=gens[r]) for r in range(b)])
            ids |= sub << shift
            shift += gbits
        for r, v in enumerate(ids.tolist()):
            tokens[r].append(v)
        if i + 1 == n:
            break
        feed = torch.tensor([[tokens[r % b][i]] for r in range(rows)], dtype=torch.long)
        e = model.embed_tokens(j, [feed]) + g
        if use_cache:
            q = p + i
            h = model.run(e, cos[q:q + 1], sin[q:q + 1], allowed[:, :, q:q + 1, :q + 1], caches)
        else:
            x = torch.cat([x, e], 1)
            s = x.shape[1]
            h = model.run(x, cos[:s], sin[:s], allowed[:, :, :s, :s])
    return tokens


# ---------------------------------------------------------------------------------------------
# Timing (engine/src/bench/).
# ---------------------------------------------------------------------------------------------
def median_secs(repeat, f):
    """Median of `repeat` timings after one untimed warm-up call (bench/tokenizer.rs)."""
    f()
    v = []
    for _ in range(max(repeat, 1)):
        t = time.perf_counter()
        f()
        v.append(time.perf_counter() - t)
    v.sort()
    return v[len(v) // 2]


def best(repeat, f):
    """Best of `repeat` timings, no warm-up (bench/generator.rs)."""
    out, b = None, float("inf")
    for _ in range(max(repeat, 1)):
        t = time.perf_counter()
        out = f()
        b = min(b, time.perf_counter() - t)
    return b, out


def peak_rss_mib():
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def bench_tokenizer(preset, batch, repeat, train_steps, impl):
    cfg = TOKENIZER_PRESETS[preset]
    torch.manual_seed(0)
    model = Tokenizer(cfg).eval()
    clip_seconds = cfg["frames"] / cfg["fps"]
    shape = (3, cfg["frames"], cfg["height"], cfg["width"])
    per_batch = []
    with torch.inference_mode():
        for b in (1, max(batch, 1)):
            x = torch.rand((b,) + shape) * 2.0 - 1.0

            def enc_once():
                e = model.encode(x, 1.0)
                sum(int(o["indices"].sum()) for o in e)

            enc = median_secs(repeat, enc_once)
            codes = [o["codes"] for o in model.encode(x, 1.0)]
            dec = median_secs(repeat, lambda: float(model.decode(codes).sum()))
            per_batch.append({
                "batch": b,
                "encode_clips_per_s": b / enc,
                "decode_clips_per_s": b / dec,
                "encode_decode_seconds_per_clip": (enc + dec) / b,
                "real_time_factor": clip_seconds * b / (enc + dec),
            })
    steps = max(train_steps, 1)
    b = max(batch, 1)
    torch.manual_seed(0)
    trainer = TokenizerTrainer(cfg, steps + 1, impl)
    # Clips in [-1, 1]; the Rust bench renders synthetic shapes on a thread ahead of its steps,
    # as its training runs do (torch.rand here is in the loop and costs well under a millisecond).
    data = lambda: torch.rand((b,) + shape) * 2.0 - 1.0  # noqa: E731
    trainer.train_step(data())
    t = time.perf_counter()
    losses = []
    for _ in range(steps):
        losses.append(trainer.train_step(data())[0])
    step_s = (time.perf_counter() - t) / steps
    return {
        "preset": preset,
        "clip": {"frames": cfg["frames"], "height": cfg["height"], "width": cfg["width"], "fps": cfg["fps"],
                 "seconds": clip_seconds},
        "parameters": num_params(model),
        "inference": per_batch,
        "train": {"batch": b, "steps": steps, "seconds_per_step": step_s, "steps_per_s": 1.0 / step_s},
        "train_losses_finite": all(math.isfinite(v) for v in losses),
    }


def bench_generator(repeat, batch, impl):
    torch.manual_seed(0)
    tok_cfg = TOKENIZER_PRESETS["tiny"]
    tokenizer = Tokenizer(tok_cfg).eval()
    cfg = generator_config(tok_cfg, "tiny")
    model = Generator(cfg).eval()
    prompt = ["a red circle moves to the left"]
    n = layer_offsets(cfg["layers"])[-1]
    with torch.inference_mode():
        cond = model.encode_prompts(prompt)
    cached_s, cached = best(repeat, lambda: generate(model, cond, 1.0, True))
    full_s, full = best(1, lambda: generate(model, cond, 1.0, False))

    def clip():
        with torch.inference_mode():
            c = model.encode_prompts(prompt)
            tokens = generate(model, c, 7.5, True)
            off = layer_offsets(cfg["layers"])
            ids = [torch.tensor(tokens[0][off[j]:off[j + 1]], dtype=torch.long).view(1, l[0], l[1], l[2])
                   for j, l in enumerate(cfg["layers"])]
            video = tokenizer.decode_indices(ids)
            frames = (video.permute(0, 2, 3, 4, 1).add(1.0).mul(0.5).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
            return frames.shape[1]

    clip_s, frames = best(repeat, clip)
    torch.manual_seed(0)
    trainer = GeneratorTrainer(cfg, batch, impl)
    trainer.train_step()  # warm-up
    step_s, _ = best(repeat, trainer.train_step)
    return {
        "model": {"preset": "tiny", "dim": cfg["dim"], "depth": cfg["depth"], "heads": cfg["heads"],
                  "text_encoder": "small", "video_tokens": n, "parameters": num_params(model)},
        "decode_tokens_per_s": {"kv_cache": n / cached_s, "no_cache": n / full_s, "speedup": full_s / cached_s,
                                "same_tokens": cached == full},
        "clip_with_cfg_s": {"seconds": clip_s, "cfg": 7.5, "frames": frames,
                            "includes": "text encoding, generation (2 rows), tokenizer decode"},
        "train_step_s": {"batch": batch, "seconds": step_s},
    }


def workspace_version():
    try:
        text = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()
        m = re.search(r'\[workspace\.package\][^\[]*?\nversion\s*=\s*"([^"]+)"', text)
        return m.group(1) if m else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions of each measurement (as hitvideo bench --repeat)")
    ap.add_argument("--batch", type=int, default=8, help="clips per batch for the batched tokenizer figures and the training steps")
    ap.add_argument("--train-steps", type=int, default=5, help="tokenizer training steps timed")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (Burn uses all cores: 2 on the project's machine)")
    ap.add_argument("--preset", "--tokenizer", dest="preset", default="tiny", choices=["tiny", "small", "none"],
                    help="tokenizer preset to time (`none` skips the tokenizer section)")
    ap.add_argument("--no-generator", action="store_true", help="skip the tiny generator")
    ap.add_argument("--optimizer-impl", default="default", choices=["default", "foreach", "fused"],
                    help="torch.optim.AdamW implementation (default: torch's own choice on the CPU)")
    ap.add_argument("--out", type=Path, help="write the JSON here as well as to stdout")
    a = ap.parse_args()

    torch.set_num_threads(max(a.threads, 1))
    repeat = max(a.repeat, 1)
    tokenizer = None
    if a.preset != "none":
        print(f"timing tokenizer '{a.preset}' (batch {a.batch}, {a.train_steps} training steps)...", file=sys.stderr)
        tokenizer = bench_tokenizer(a.preset, a.batch, repeat, a.train_steps, a.optimizer_impl)
    generator = None
    if not a.no_generator:
        print(f"timing generator 'tiny' (training batch {a.batch})...", file=sys.stderr)
        generator = bench_generator(repeat, max(a.batch, 1), a.optimizer_impl)

    params = {}
    if tokenizer is not None:
        params[f"tokenizer:{a.preset}"] = tokenizer["parameters"]
    if generator is not None:
        params["generator:tiny"] = generator["model"]["parameters"]
    checked = {k: v == RUST_PARAMETERS[k] for k, v in params.items() if k in RUST_PARAMETERS}
    report = {
        "app_version": None,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "data": None,
        "tokenizer": tokenizer,
        "generator": generator,
        "peak_rss_mib": peak_rss_mib(),
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "replica_of_app_version": workspace_version(),
        "cpu_count": os.cpu_count(),
        "settings": {"repeat": repeat, "batch": a.batch, "train_steps": a.train_steps, "optimizer_impl": a.optimizer_impl},
        "parameters": params,
        "rust_parameters": {k: RUST_PARAMETERS[k] for k in params if k in RUST_PARAMETERS},
        "parameters_match_rust": all(checked.values()) if checked else None,
        "extra_keys": ["framework", "torch_version", "python_version", "replica_of_app_version", "cpu_count",
                       "settings", "parameters", "rust_parameters", "parameters_match_rust", "extra_keys",
                       "tokenizer.train_losses_finite"],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    if checked and not all(checked.values()):
        print(f"parameter counts differ from the Rust networks: {params} against {RUST_PARAMETERS}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
