#version 330 core
// Present pass (output size, the only one per displayed frame): the dissolve between
// the two painted keyframes, as a framed portrait on a mat. Cheap by design: two
// fetches per portrait pixel and one hash. With look.detail the two textures are
// the keyframes painted at the portrait's own size (detail.frag), read at texel
// centres (crop 1, NEAREST); without, the work-size keyframes, enlarged bilinearly.
// The picture may be turned in the framebuffer (screens[k].rotate): `orient` maps
// a framebuffer pixel to the upright picture's pixel; everything below is upright. No branches: a software
// rasteriser (llvmpipe) executes both sides of every branch, even a uniform one.
#include "lib/noise.glsl"
#include "lib/color.glsl"

uniform sampler2D work_tex;   // painted prev keyframe, bottom-up
uniform sampler2D next_tex;   // painted next keyframe, same size
uniform mat2 orient;          // framebuffer pixel -> upright pixel: orient * p + orient_offset
uniform vec2 orient_offset;
uniform vec2 crop;            // the part of the texture the portrait shows (centre crop)
uniform float mix_k;          // dissolve weight of next, 0..1 (morph curve applied)
uniform vec4 rect;            // portrait in output pixels: x0, y0, width, height
uniform vec3 mat_color;
uniform vec3 frame_color;
uniform float frame_width_px; // look.frame_width in output pixels; 0 = no frame line
uniform float grain;          // look.grain: grain amplitude, 0..0.5
uniform uint grain_seed;      // changes every displayed frame

out vec4 color;

// Chebyshev distance (pixels) from p to the portrait rectangle; < 0 inside.
// Chebyshev, not Euclidean, so the frame line has square corners like a real frame.
float rect_distance(vec2 p) {
    vec2 half_size = 0.5 * rect.zw;
    vec2 d = abs(p - (rect.xy + half_size)) - half_size;
    return max(d.x, d.y);
}

vec3 portrait(vec2 p) {
    vec2 q = (p - rect.xy) / rect.zw;                 // 0..1 inside the portrait
    vec2 st = 0.5 + (q - 0.5) * crop;
    vec3 c = mix(texture(work_tex, st).rgb, texture(next_tex, st).rgb, mix_k);
    // (the vignette is baked into the painted keyframes by grade.frag)
    float n = grain_noise(uvec2(p), grain_seed);
    float mid = 4.0 * luma(c) * (1.0 - luma(c));      // grain shows most in mid-tones
    return c + grain * n * (0.35 + 0.65 * mid);
}

void main() {
    vec2 p = orient * gl_FragCoord.xy + orient_offset;
    float d = rect_distance(p);
    vec3 c = mat_color;
    float line = clamp(frame_width_px + 0.5 - d, 0.0, 1.0) * step(0.0, frame_width_px - 1e-3);
    c = mix(c, frame_color, line);
    if (d < 0.5) {
        c = mix(c, portrait(p), clamp(0.5 - d, 0.0, 1.0));
    }
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
