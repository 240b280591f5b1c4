// The map view's layer compositing: one draw per visible layer, bottom to
// top, over the map rectangle (egui_wgpu sets the viewport to it). RGB
// renderings get a per-channel linear stretch; label layers look their class
// up in a 256-entry palette (class 0 transparent). Opacity scales alpha;
// egui's render pass blends premultiplied colour.

struct Layer {
    // Image coordinates (pixels, y down) at the rectangle's top-left corner,
    // and the extent of the rectangle in image pixels.
    origin: vec2<f32>,
    span: vec2<f32>,
    image_size: vec2<f32>,
    opacity: f32,
    // 0 = RGB rendering, 1 = label layer.
    kind: u32,
    stretch_lo: vec4<f32>,
    stretch_hi: vec4<f32>,
};

@group(0) @binding(0) var<uniform> layer: Layer;
@group(0) @binding(1) var image: texture_2d<f32>;
@group(0) @binding(2) var image_sampler: sampler;
@group(0) @binding(3) var palette: texture_2d<f32>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// A triangle covering the viewport; uv (0,0) top-left, (1,1) bottom-right.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VertexOut {
    let x = f32((i << 1u) & 2u);
    let y = f32(i & 2u);
    var out: VertexOut;
    out.position = vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
    out.uv = vec2<f32>(x, y);
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let p = layer.origin + in.uv * layer.span;
    if (p.x < 0.0 || p.y < 0.0 || p.x >= layer.image_size.x || p.y >= layer.image_size.y) {
        discard;
    }
    var rgb: vec3<f32>;
    var alpha = layer.opacity;
    if (layer.kind == 1u) {
        let texel = vec2<i32>(floor(p));
        let class_value = i32(round(textureLoad(image, texel, 0).r * 255.0));
        let entry = textureLoad(palette, vec2<i32>(class_value, 0), 0);
        rgb = entry.rgb;
        alpha = alpha * entry.a;
    } else {
        let c = textureSampleLevel(image, image_sampler, p / layer.image_size, 0.0);
        let range = max(layer.stretch_hi.rgb - layer.stretch_lo.rgb, vec3<f32>(1e-6));
        rgb = clamp((c.rgb - layer.stretch_lo.rgb) / range, vec3<f32>(0.0), vec3<f32>(1.0));
    }
    if (alpha <= 0.0) {
        discard;
    }
    return vec4<f32>(rgb * alpha, alpha);
}
