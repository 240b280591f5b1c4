//! The map view's GPU side: each layer is drawn from tile textures (see
//! `map_tiles`: a pyramid of square tiles, so a layer may be larger than
//! the GPU's largest texture), created and patched by the uploads
//! `map_view` decides, and drawn through an egui_wgpu paint callback with
//! `shaders/map.wgsl`, one draw per tile. Pan and zoom only change the
//! draws' uniforms.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, ScreenDescriptor};
use eframe::{egui, wgpu};

use super::map_tiles::TileKey;
use crate::scene::PixelRect;

const SHADER: &str = include_str!("../../shaders/map.wgsl");
/// Bytes of the `Draw` uniform (std140-compatible layout of map.wgsl).
const UNIFORM_BYTES: u64 = 96;
/// Draws one frame may hold (tiles of every visible layer together).
pub const MAX_DRAWS: usize = 2048;

/// Pixels for part of a tile's texture.
#[derive(Debug, Clone)]
pub struct TileUpload {
    pub key: TileKey,
    /// The texture's size (a texture of another size is made anew).
    pub size: (u32, u32),
    /// One byte a pixel (class values) or RGBA.
    pub is_labels: bool,
    /// Where the bytes go in the texture.
    pub rect: PixelRect,
    pub bytes: Vec<u8>,
}

/// One tile to draw: the scene rectangle it covers and how its texture
/// maps onto it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileDraw {
    /// The texture to read.
    pub key: TileKey,
    /// Scene pixels `[x0, y0, x1, y1]` the draw covers.
    pub quad: [f32; 4],
    /// Scene pixels per texel (2^level).
    pub scale: f32,
    /// The texture's first texel and size, in texels of its level.
    pub tex_origin: [f32; 2],
    pub tex_size: [f32; 2],
    pub opacity: f32,
    pub is_labels: bool,
    pub stretch_lo: [f32; 3],
    pub stretch_hi: [f32; 3],
}

/// What one frame of the map view draws.
#[derive(Debug, Clone)]
pub struct MapFrame {
    /// Scene coordinates of the map rectangle's top-left corner.
    pub origin: [f32; 2],
    /// The rectangle's extent in scene pixels.
    pub span: [f32; 2],
    /// Linear filtering (zoomed out) or nearest (zoomed in: crisp pixels).
    pub smooth: bool,
    /// Bottom layer's tiles first.
    pub draws: Vec<TileDraw>,
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
    Tile(TileUpload),
    /// A tile's texture is let go.
    Evict(TileKey),
    /// The class palette (RGBA, 256 entries).
    Palette(Box<[[u8; 4]; 256]>),
}

struct TileTexture {
    texture: wgpu::Texture,
    size: (u32, u32),
    is_labels: bool,
    /// Nearest and linear sampling.
    bind_groups: [wgpu::BindGroup; 2],
}

/// The pipeline and textures, kept in egui_wgpu's callback resources.
pub struct MapResources {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    samplers: [wgpu::Sampler; 2],
    palette: wgpu::Texture,
    /// Every draw's uniform, one per `stride` bytes (dynamic offsets).
    uniforms: wgpu::Buffer,
    stride: u64,
    tiles: HashMap<TileKey, TileTexture>,
    /// The draws of this frame: texture, sampler, uniform offset.
    draws: Vec<(TileKey, usize, u32)>,
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
        // The draw's uniform places the tile (vertex) and colours it.
        visibility: if binding == 0 {
            wgpu::ShaderStages::VERTEX_FRAGMENT
        } else {
            wgpu::ShaderStages::FRAGMENT
        },
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
                    has_dynamic_offset: true,
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
    let align = u64::from(device.limits().min_uniform_buffer_offset_alignment.max(1));
    let stride = UNIFORM_BYTES.div_ceil(align) * align;
    let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("map draws"),
        size: stride * MAX_DRAWS as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(MapResources {
            pipeline,
            layout,
            samplers,
            palette,
            uniforms,
            stride,
            tiles: HashMap::new(),
            draws: Vec::new(),
            max_texture,
            applied: 0,
        });
}

fn uniform_bytes(frame: &MapFrame, d: &TileDraw, out: &mut Vec<u8>) {
    let mut f = |v: f32| out.extend_from_slice(&v.to_ne_bytes());
    for v in [
        frame.origin[0],
        frame.origin[1],
        frame.span[0],
        frame.span[1],
        d.quad[0],
        d.quad[1],
        d.quad[2],
        d.quad[3],
        d.tex_origin[0],
        d.tex_origin[1],
        d.tex_size[0],
        d.tex_size[1],
        d.scale,
        d.opacity.clamp(0.0, 1.0),
    ] {
        f(v);
    }
    out.extend_from_slice(&u32::from(d.is_labels).to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    let mut f = |v: f32| out.extend_from_slice(&v.to_ne_bytes());
    for c in 0..3 {
        f(d.stretch_lo[c]);
    }
    f(0.0);
    for c in 0..3 {
        f(d.stretch_hi[c]);
    }
    f(1.0);
}

impl MapResources {
    /// The tile's texture, made (anew when its size or kind changed).
    fn tile_texture(&mut self, device: &wgpu::Device, upload: &TileUpload) -> Option<&TileTexture> {
        let size = upload.size;
        let stale = self
            .tiles
            .get(&upload.key)
            .is_none_or(|t| t.size != size || t.is_labels != upload.is_labels);
        if stale {
            self.tiles.remove(&upload.key);
            if size.0 == 0 || size.1 == 0 || size.0 > self.max_texture || size.1 > self.max_texture
            {
                return None;
            }
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("map tile"),
                size: wgpu::Extent3d {
                    width: size.0,
                    height: size.1,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: if upload.is_labels {
                    wgpu::TextureFormat::R8Unorm
                } else {
                    wgpu::TextureFormat::Rgba8Unorm
                },
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let palette_view = self
                .palette
                .create_view(&wgpu::TextureViewDescriptor::default());
            let bind = |sampler: &wgpu::Sampler| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("map tile"),
                    layout: &self.layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &self.uniforms,
                                offset: 0,
                                size: wgpu::BufferSize::new(UNIFORM_BYTES),
                            }),
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
            self.tiles.insert(
                upload.key,
                TileTexture {
                    texture,
                    size,
                    is_labels: upload.is_labels,
                    bind_groups,
                },
            );
        }
        self.tiles.get(&upload.key)
    }

    fn upload(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, upload: &TileUpload) {
        let Some(t) = self.tile_texture(device, upload) else {
            return;
        };
        let (w, h) = t.size;
        let r = upload.rect;
        let bytes_per_pixel = if upload.is_labels { 1 } else { 4 };
        if r.x1 > w as usize
            || r.y1 > h as usize
            || r.x0 >= r.x1
            || r.y0 >= r.y1
            || upload.bytes.len() != r.width() * r.height() * bytes_per_pixel
        {
            return;
        }
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &t.texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: r.x0 as u32,
                    y: r.y0 as u32,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &upload.bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some((r.width() * bytes_per_pixel) as u32),
                rows_per_image: Some(r.height() as u32),
            },
            wgpu::Extent3d {
                width: r.width() as u32,
                height: r.height() as u32,
                depth_or_array_layers: 1,
            },
        );
    }

    fn write_palette(&self, queue: &wgpu::Queue, palette: &[[u8; 4]; 256]) {
        let bytes: Vec<u8> = palette.iter().flatten().copied().collect();
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.palette,
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

/// The paint callback of one frame.
pub struct MapPaint(pub MapFrame);

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
                GpuUpload::Tile(t) => res.upload(device, queue, t),
                GpuUpload::Evict(key) => {
                    res.tiles.remove(key);
                }
                GpuUpload::Palette(palette) => res.write_palette(queue, palette),
            }
            last = last.max(*seq);
        }
        res.applied = last;
        frame.applied.store(last, Ordering::SeqCst);
        res.draws.clear();
        let sampler = usize::from(frame.smooth);
        let mut bytes = Vec::new();
        for d in frame.draws.iter().take(MAX_DRAWS) {
            if !res.tiles.contains_key(&d.key) {
                continue;
            }
            let offset = res.draws.len() as u64 * res.stride;
            bytes.resize(offset as usize, 0);
            uniform_bytes(frame, d, &mut bytes);
            res.draws
                .push((d.key, if d.is_labels { 0 } else { sampler }, offset as u32));
        }
        if !bytes.is_empty() {
            queue.write_buffer(&res.uniforms, 0, &bytes);
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
        for (key, sampler, offset) in &res.draws {
            if let Some(t) = res.tiles.get(key) {
                render_pass.set_bind_group(0, &t.bind_groups[*sampler], &[*offset]);
                render_pass.draw(0..6, 0..1);
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
