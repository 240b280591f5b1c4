//! The map view's GPU side: each layer lives in a wgpu texture, uploaded once
//! (label layers patched by dirty rectangle), and is drawn through an
//! egui_wgpu paint callback with `shaders/map.wgsl`. Pan and zoom only change
//! the per-layer uniforms.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, ScreenDescriptor};
use eframe::{egui, wgpu};

use super::layers::LayerId;
use crate::scene::PixelRect;

const SHADER: &str = include_str!("../../shaders/map.wgsl");
/// Bytes of the `Layer` uniform (std140-compatible layout of map.wgsl).
const UNIFORM_BYTES: u64 = 64;

/// Pixels to upload into a layer's texture.
#[derive(Debug, Clone)]
pub enum TexturePixels {
    /// An RGB rendering (3 bytes per pixel), whole.
    Rgb(Arc<Vec<u8>>),
    /// A rectangle of a label layer (1 byte per pixel, rows of the
    /// rectangle's width).
    Labels { bytes: Vec<u8>, rect: PixelRect },
}

/// One texture upload.
#[derive(Debug, Clone)]
pub struct TextureUpload {
    pub layer: LayerId,
    pub width: u32,
    pub height: u32,
    pub pixels: TexturePixels,
}

/// One layer to draw, bottom first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerDraw {
    pub layer: LayerId,
    pub opacity: f32,
    pub is_labels: bool,
    pub stretch_lo: [f32; 3],
    pub stretch_hi: [f32; 3],
}

/// What one frame of the map view draws.
#[derive(Debug, Clone)]
pub struct MapFrame {
    /// Image coordinates of the map rectangle's top-left corner.
    pub origin: [f32; 2],
    /// The rectangle's extent in image pixels.
    pub span: [f32; 2],
    pub image_size: [f32; 2],
    /// Linear filtering (zoomed out) or nearest (zoomed in: crisp pixels).
    pub smooth: bool,
    pub layers: Vec<LayerDraw>,
    /// Uploads not yet acknowledged by the GPU side, oldest first, each with
    /// its sequence number. A frame egui discards (a layout pass) never
    /// reaches `prepare`, so uploads stay queued until `applied` says so.
    pub uploads: Vec<(u64, Arc<GpuUpload>)>,
    /// The highest sequence number applied on the GPU side.
    pub applied: Arc<AtomicU64>,
}

/// A change of GPU data.
#[derive(Debug, Clone)]
pub enum GpuUpload {
    Texture(TextureUpload),
    /// The class palette (RGBA, 256 entries).
    Palette(Box<[[u8; 4]; 256]>),
}

struct LayerTexture {
    texture: wgpu::Texture,
    size: (u32, u32),
    is_labels: bool,
    uniform: wgpu::Buffer,
    bind_groups: [wgpu::BindGroup; 2],
}

/// The pipeline and textures, kept in egui_wgpu's callback resources.
pub struct MapResources {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    samplers: [wgpu::Sampler; 2],
    palette: wgpu::Texture,
    layers: HashMap<LayerId, LayerTexture>,
    /// The layers to draw this frame, with the sampler to use.
    draws: Vec<(LayerId, usize)>,
    max_texture: u32,
    /// The last upload sequence number applied.
    applied: u64,
}

/// Creates the map pipeline and registers it with the renderer's callback
/// resources (wgpu only; the glow fallback composites on the CPU).
pub fn install(render_state: &egui_wgpu::RenderState) {
    let device = &render_state.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("map.wgsl"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty,
        count: None,
    };
    let texture = wgpu::BindingType::Texture {
        sample_type: wgpu::TextureSampleType::Float { filterable: true },
        view_dimension: wgpu::TextureViewDimension::D2,
        multisampled: false,
    };
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("map layer"),
        entries: &[
            entry(
                0,
                wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(UNIFORM_BYTES),
                },
            ),
            entry(1, texture),
            entry(
                2,
                wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
            ),
            entry(3, texture),
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("map"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("map"),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: render_state.target_format,
                blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    let sampler = |filter| {
        device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("map"),
            mag_filter: filter,
            min_filter: filter,
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            ..Default::default()
        })
    };
    let samplers = [
        sampler(wgpu::FilterMode::Nearest),
        sampler(wgpu::FilterMode::Linear),
    ];
    let palette = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("class palette"),
        size: wgpu::Extent3d {
            width: 256,
            height: 1,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let max_texture = device.limits().max_texture_dimension_2d;
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(MapResources {
            pipeline,
            layout,
            samplers,
            palette,
            layers: HashMap::new(),
            draws: Vec::new(),
            max_texture,
            applied: 0,
        });
}

/// The paint callback of one frame.
pub struct MapPaint(pub MapFrame);

fn uniform_bytes(frame: &MapFrame, d: &LayerDraw) -> Vec<u8> {
    let mut out = Vec::with_capacity(UNIFORM_BYTES as usize);
    let mut f = |v: f32| out.extend_from_slice(&v.to_ne_bytes());
    f(frame.origin[0]);
    f(frame.origin[1]);
    f(frame.span[0]);
    f(frame.span[1]);
    f(frame.image_size[0]);
    f(frame.image_size[1]);
    f(d.opacity.clamp(0.0, 1.0));
    out.extend_from_slice(&u32::from(d.is_labels).to_ne_bytes());
    let mut f = |v: f32| out.extend_from_slice(&v.to_ne_bytes());
    for c in 0..3 {
        f(d.stretch_lo[c]);
    }
    f(0.0);
    for c in 0..3 {
        f(d.stretch_hi[c]);
    }
    f(1.0);
    out
}

fn rgba_from_rgb(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 3 * 4);
    for p in rgb.chunks_exact(3) {
        out.extend_from_slice(&[p[0], p[1], p[2], 255]);
    }
    out
}

impl MapResources {
    fn layer_texture(
        &mut self,
        device: &wgpu::Device,
        upload: &TextureUpload,
        is_labels: bool,
    ) -> Option<&LayerTexture> {
        let size = (upload.width, upload.height);
        let stale = self
            .layers
            .get(&upload.layer)
            .is_none_or(|t| t.size != size || t.is_labels != is_labels);
        if stale {
            if size.0 == 0 || size.1 == 0 || size.0 > self.max_texture || size.1 > self.max_texture
            {
                self.layers.remove(&upload.layer);
                return None;
            }
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("map layer"),
                size: wgpu::Extent3d {
                    width: size.0,
                    height: size.1,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: if is_labels {
                    wgpu::TextureFormat::R8Unorm
                } else {
                    wgpu::TextureFormat::Rgba8Unorm
                },
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            let uniform = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("map layer uniform"),
                size: UNIFORM_BYTES,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let palette_view = self
                .palette
                .create_view(&wgpu::TextureViewDescriptor::default());
            let bind = |sampler: &wgpu::Sampler| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("map layer"),
                    layout: &self.layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: uniform.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::TextureView(&view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: wgpu::BindingResource::Sampler(sampler),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: wgpu::BindingResource::TextureView(&palette_view),
                        },
                    ],
                })
            };
            let bind_groups = [bind(&self.samplers[0]), bind(&self.samplers[1])];
            self.layers.insert(
                upload.layer,
                LayerTexture {
                    texture,
                    size,
                    is_labels,
                    uniform,
                    bind_groups,
                },
            );
        }
        self.layers.get(&upload.layer)
    }

    fn upload(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, upload: &TextureUpload) {
        let is_labels = matches!(upload.pixels, TexturePixels::Labels { .. });
        let Some(t) = self.layer_texture(device, upload, is_labels) else {
            return;
        };
        let (w, h) = t.size;
        let write = |origin: (u32, u32), size: (u32, u32), bytes: &[u8], bytes_per_pixel: u32| {
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &t.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: origin.0,
                        y: origin.1,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                bytes,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(size.0 * bytes_per_pixel),
                    rows_per_image: Some(size.1),
                },
                wgpu::Extent3d {
                    width: size.0,
                    height: size.1,
                    depth_or_array_layers: 1,
                },
            );
        };
        match &upload.pixels {
            TexturePixels::Rgb(rgb) if rgb.len() == (w * h * 3) as usize => {
                write((0, 0), (w, h), &rgba_from_rgb(rgb), 4);
            }
            TexturePixels::Labels { bytes, rect: r }
                if r.x1 <= w as usize
                    && r.y1 <= h as usize
                    && r.x0 < r.x1
                    && r.y0 < r.y1
                    && bytes.len() == r.width() * r.height() =>
            {
                write(
                    (r.x0 as u32, r.y0 as u32),
                    (r.width() as u32, r.height() as u32),
                    bytes,
                    1,
                );
            }
            _ => {}
        }
    }
}

impl CallbackTrait for MapPaint {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(res) = resources.get_mut::<MapResources>() else {
            return Vec::new();
        };
        let frame = &self.0;
        let mut last = res.applied;
        for (seq, upload) in &frame.uploads {
            if *seq <= res.applied {
                continue;
            }
            match upload.as_ref() {
                GpuUpload::Texture(t) => res.upload(device, queue, t),
                GpuUpload::Palette(palette) => {
                    let bytes: Vec<u8> = palette.iter().flatten().copied().collect();
                    queue.write_texture(
                        wgpu::TexelCopyTextureInfo {
                            texture: &res.palette,
                            mip_level: 0,
                            origin: wgpu::Origin3d::ZERO,
                            aspect: wgpu::TextureAspect::All,
                        },
                        &bytes,
                        wgpu::TexelCopyBufferLayout {
                            offset: 0,
                            bytes_per_row: Some(256 * 4),
                            rows_per_image: Some(1),
                        },
                        wgpu::Extent3d {
                            width: 256,
                            height: 1,
                            depth_or_array_layers: 1,
                        },
                    );
                }
            }
            last = last.max(*seq);
        }
        res.applied = last;
        frame.applied.store(last, Ordering::SeqCst);
        res.draws.clear();
        let sampler = usize::from(frame.smooth);
        for d in &frame.layers {
            if let Some(t) = res.layers.get(&d.layer) {
                queue.write_buffer(&t.uniform, 0, &uniform_bytes(frame, d));
                res.draws
                    .push((d.layer, if d.is_labels { 0 } else { sampler }));
            }
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        let Some(res) = resources.get::<MapResources>() else {
            return;
        };
        render_pass.set_pipeline(&res.pipeline);
        for (layer, sampler) in &res.draws {
            if let Some(t) = res.layers.get(layer) {
                render_pass.set_bind_group(0, &t.bind_groups[*sampler], &[]);
                render_pass.draw(0..3, 0..1);
            }
        }
    }
}

/// The largest texture side the device takes, if the map pipeline is installed.
pub fn max_texture_side(render_state: &egui_wgpu::RenderState) -> Option<u32> {
    render_state
        .renderer
        .read()
        .callback_resources
        .get::<MapResources>()
        .map(|r| r.max_texture)
}
