// Token-map colouring for the studio's tokens view (egui-wgpu paint callback).
// The same formulas as app/src/studio/tokenmap.rs (the CPU path for the glow renderer):
//   mode 0: colour by id — hue from a Fibonacci hash of the id;
//   mode 1: colour by code similarity — the ±1 bits projected on three fixed directions;
//   masked tokens (redundancy mask overlay) are mixed 70% towards grey.
// Output is gamma-encoded like egui's own colours (egui draws into a non-sRGB target), or
// linear when the target format is sRGB.

struct Params {
    // Token grid of one latent frame.
    w: u32,
    h: u32,
    bits: u32,
    mode: u32,
    has_mask: u32,
    // 1 when the target format is sRGB (the hardware encodes): output linear values.
    linear_out: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
// Token ids of the frame, row-major `h * w`.
@group(0) @binding(1) var<storage, read> ids: array<u32>;
// 1 where the token is masked, row-major `h * w` (one zero when there is no mask).
@group(0) @binding(2) var<storage, read> mask: array<u32>;

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Two triangles covering the callback's viewport; uv runs 0..1 left-right, top-bottom.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VsOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    let uv = corners[i];
    var out: VsOut;
    out.pos = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.uv = uv;
    return out;
}

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn weight(c: u32, k: u32) -> f32 {
    return f32(pcg(c * 64u + k) >> 8u) / 16777216.0 * 2.0 - 1.0;
}

fn id_hue(id: u32) -> f32 {
    return f32((id * 2654435769u) >> 8u) / 16777216.0;
}

fn hsv(h: f32, s: f32, v: f32) -> vec3<f32> {
    let h6 = max(fract(h) * 6.0, 0.0);
    let i = u32(floor(h6)) % 6u;
    let f = h6 - floor(h6);
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    switch i {
        case 0u: { return vec3<f32>(v, t, p); }
        case 1u: { return vec3<f32>(q, v, p); }
        case 2u: { return vec3<f32>(p, v, t); }
        case 3u: { return vec3<f32>(p, q, v); }
        case 4u: { return vec3<f32>(t, p, v); }
        default: { return vec3<f32>(v, p, q); }
    }
}

fn token_rgb(id: u32) -> vec3<f32> {
    if params.mode == 0u {
        return hsv(id_hue(id), 0.65, 0.95);
    }
    var out = vec3<f32>(0.0);
    for (var c = 0u; c < 3u; c++) {
        var acc = 0.0;
        var norm = 0.0;
        for (var k = 0u; k < params.bits; k++) {
            let b = select(-1.0, 1.0, ((id >> k) & 1u) == 1u);
            let wk = weight(c, k);
            acc += b * wk;
            norm += wk * wk;
        }
        out[c] = clamp(0.5 + 0.5 * acc / max(sqrt(norm), 1e-6), 0.0, 1.0);
    }
    return out;
}

// The sRGB transfer function, gamma-encoded -> linear (as egui's own shader does).
fn linear_from_gamma(c: vec3<f32>) -> vec3<f32> {
    let lower = c / 12.92;
    let higher = pow((c + vec3<f32>(0.055)) / 1.055, vec3<f32>(2.4));
    return select(higher, lower, c < vec3<f32>(0.04045));
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let x = min(u32(floor(in.uv.x * f32(params.w))), params.w - 1u);
    let y = min(u32(floor(in.uv.y * f32(params.h))), params.h - 1u);
    let i = y * params.w + x;
    var rgb = token_rgb(ids[i]);
    if params.has_mask == 1u && mask[i] == 1u {
        rgb = rgb * 0.3 + vec3<f32>(0.5 * 0.7);
    }
    if params.linear_out == 1u {
        rgb = linear_from_gamma(rgb);
    }
    return vec4<f32>(rgb, 1.0);
}
