//! Token maps drawn by the WGSL shader `shaders/token_map.wgsl` through an egui-wgpu paint
//! callback (used when the studio runs on the wgpu renderer; `tokenmap.rs` is the CPU path).
//! The pipeline is built once and kept in the renderer's callback resources; each frame
//! uploads the ids (and mask) of the latent frame on screen.

use eframe::egui;
use eframe::egui_wgpu::wgpu::{self, util::DeviceExt};
use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, RenderState, ScreenDescriptor};

use super::jobs::LayerTokens;
use super::settings::ColorMode;

/// The shader source.
pub const SHADER: &str = include_str!("../../../shaders/token_map.wgsl");

struct Pipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    linear_out: bool,
    /// The bind group of the map drawn this frame.
    current: Option<wgpu::BindGroup>,
}

fn entry(binding: u32, ty: wgpu::BufferBindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    }
}

fn build(rs: &RenderState) -> Pipeline {
    let device = &rs.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some("token_map"), source: wgpu::ShaderSource::Wgsl(SHADER.into()) });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("token_map"),
        entries: &[
            entry(0, wgpu::BufferBindingType::Uniform),
            entry(1, wgpu::BufferBindingType::Storage { read_only: true }),
            entry(2, wgpu::BufferBindingType::Storage { read_only: true }),
        ],
    });
    let pl =
        device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor { label: Some("token_map"), bind_group_layouts: &[Some(&layout)], immediate_size: 0 });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("token_map"),
        layout: Some(&pl),
        vertex: wgpu::VertexState { module: &module, entry_point: Some("vs_main"), buffers: &[], compilation_options: Default::default() },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            targets: &[Some(rs.target_format.into())],
            compilation_options: Default::default(),
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    Pipeline { pipeline, layout, linear_out: rs.target_format.is_srgb(), current: None }
}

/// One frame's map: the ids and mask of a latent frame and how to colour them.
struct MapCallback {
    params: [u32; 8],
    ids: Vec<u32>,
    mask: Vec<u32>,
}

impl CallbackTrait for MapCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        _queue: &wgpu::Queue,
        _screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(p) = resources.get_mut::<Pipeline>() else { return Vec::new() };
        let mut params = self.params;
        params[5] = u32::from(p.linear_out);
        let buf =
            |label, data: &[u32], usage| device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents: &bytes(data), usage });
        let uniform = buf("token_map params", &params, wgpu::BufferUsages::UNIFORM);
        let ids = buf("token_map ids", &self.ids, wgpu::BufferUsages::STORAGE);
        let mask = buf("token_map mask", &self.mask, wgpu::BufferUsages::STORAGE);
        p.current = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("token_map"),
            layout: &p.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: ids.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: mask.as_entire_binding() },
            ],
        }));
        Vec::new()
    }

    fn paint(&self, _info: egui::PaintCallbackInfo, pass: &mut wgpu::RenderPass<'static>, resources: &CallbackResources) {
        let Some(p) = resources.get::<Pipeline>() else { return };
        let Some(group) = &p.current else { return };
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, group, &[]);
        pass.draw(0..6, 0..1);
    }
}

/// Little-endian bytes of `data` (what WGSL reads on every platform wgpu supports).
fn bytes(data: &[u32]) -> Vec<u8> {
    data.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Draws latent frame `t` of `layer` into a `size` rect with the shader; returns the rect's
/// response (hover sensing) like the CPU path.
pub fn paint(ui: &mut egui::Ui, rs: &RenderState, layer: &LayerTokens, t: usize, color: ColorMode, mask: Option<&[bool]>, size: egui::Vec2) -> egui::Response {
    {
        let mut renderer = rs.renderer.write();
        if renderer.callback_resources.get::<Pipeline>().is_none() {
            renderer.callback_resources.insert(build(rs));
        }
    }
    let [_, h, w] = layer.shape;
    let range = t * h * w..(t + 1) * h * w;
    let ids = layer.ids.get(range.clone()).map(<[u32]>::to_vec).unwrap_or_else(|| vec![0; h * w]);
    let mask_ids: Vec<u32> = mask.and_then(|m| m.get(range)).map(|m| m.iter().map(|&b| u32::from(b)).collect()).unwrap_or_else(|| vec![0]);
    let mode = match color {
        ColorMode::Id => 0,
        ColorMode::Similarity => 1,
    };
    let params = [w as u32, h as u32, layer.bits as u32, mode, u32::from(mask.is_some()), 0, 0, 0];
    let (rect, resp) = ui.allocate_exact_size(size, egui::Sense::hover());
    ui.painter().add(egui_wgpu::Callback::new_paint_callback(rect, MapCallback { params, ids, mask: mask_ids }));
    resp
}

#[cfg(test)]
mod tests {
    use eframe::egui_wgpu::wgpu::naga;

    #[test]
    fn the_wgsl_shader_parses_and_validates() {
        let module = naga::front::wgsl::parse_str(super::SHADER).unwrap_or_else(|e| panic!("{}", e.emit_to_string(super::SHADER)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|e| panic!("shaders/token_map.wgsl does not validate: {e:?}"));
        for entry in ["vs_main", "fs_main"] {
            assert!(module.entry_points.iter().any(|e| e.name == entry), "{entry} missing");
        }
    }
}
