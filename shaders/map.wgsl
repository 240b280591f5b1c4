// The map view's layer compositing: one draw per tile of each visible
// layer, bottom layer first, over the map rectangle (egui_wgpu sets the
// viewport to it). A draw covers the scene rectangle `quad_min..quad_max`
// and reads a tile texture of one pyramid level (`scale` scene pixels per
// texel, the texture starting at `tex_origin` texels of that level). RGB
// renderings get a per-channel linear stretch; label layers look their
// class up in a 256-entry palette (class 0 transparent). Opacity scales
// alpha; egui's render pass blends premultiplied colour.

struct Draw {
    // Scene coordinates (pixels, y down) at the rectangle's top-left corner,
    // and the extent of the rectangle in scene pixels.
    origin: vec2<f32>,
    span: vec2<f32>,
    quad_min: vec2<f32>,
    quad_max: vec2<f32>,
    tex_origin: vec2<f32>,
    tex_size: vec2<f32>,
    scale: f32,
    opacity: f32,
    // 0 = RGB rendering, 1 = label layer.
    kind: u32,
    pad: u32,
    stretch_lo: vec4<f32>,
    stretch_hi: vec4<f32>,
};

@group(0) @binding(0) var<uniform> draw: Draw;
@group(0) @binding(1) var image: texture_2d<f32>;
@group(0) @binding(2) var image_sampler: sampler;
@group(0) @binding(3) var palette: texture_2d<f32>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // Scene coordinates of the fragment.
    @location(0) scene: vec2<f32>,
};

// Two triangles over the draw's scene rectangle.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VertexOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    let p = mix(draw.quad_min, draw.quad_max, corners[i]);
    let ndc = (p - draw.origin) / draw.span;
    var out: VertexOut;
    out.position = vec4<f32>(ndc.x * 2.0 - 1.0, 1.0 - ndc.y * 2.0, 0.0, 1.0);
    out.scene = p;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let q = in.scene / draw.scale - draw.tex_origin;
    var rgb: vec3<f32>;
    var alpha = draw.opacity;
    if (draw.kind == 1u) {
        let last = vec2<i32>(draw.tex_size) - vec2<i32>(1);
        let texel = clamp(vec2<i32>(floor(q)), vec2<i32>(0), last);
        let class_value = i32(round(textureLoad(image, texel, 0).r * 255.0));
        let entry = textureLoad(palette, vec2<i32>(class_value, 0), 0);
        rgb = entry.rgb;
        alpha = alpha * entry.a;
    } else {
        let c = textureSampleLevel(image, image_sampler, q / draw.tex_size, 0.0);
        let range = max(draw.stretch_hi.rgb - draw.stretch_lo.rgb, vec3<f32>(1e-6));
        rgb = clamp((c.rgb - draw.stretch_lo.rgb) / range, vec3<f32>(0.0), vec3<f32>(1.0));
    }
    if (alpha <= 0.0) {
        discard;
    }
    return vec4<f32>(rgb * alpha, alpha);
}
