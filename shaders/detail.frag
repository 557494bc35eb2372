#version 330 core
// Detail pass (output size, once per keyframe, in bands): paints the graded
// keyframe at the screen's own pixel scale. Every stroke follows the form: the
// direction comes from the smoothed structure tensor (structure.frag). Along it a
// line integral of a fixed white-noise field (bristles, and wider paint bands)
// gives streaks; a streak drags the colour of its neighbour across the form, as a
// loaded brush does; the streaks and a plain canvas weave are a height field lit
// from the upper left (impasto); a varnish tint. Craquelure is its own pass
// (craquelure.frag), drawn over this one only when asked: a software rasteriser
// pays for code behind a uniform branch too.
// Sizes are in output pixels (the pipeline scales the look's thousandths of the
// portrait height). The noise field is the same for every keyframe, so the
// dissolve between two painted keyframes does not shimmer.
#include "lib/noise.glsl"
#include "lib/color.glsl"

uniform sampler2D work_tex;      // graded keyframe: square, work size, LINEAR, bottom-up
uniform sampler2D flow_tex;      // its structure tensor, mipmapped (structure.frag)
uniform vec2 crop;               // the centre crop of the square that the portrait shows
uniform vec2 size;               // this texture's size = the portrait in output pixels
uniform float flow_lod;          // mip level of the tensor read: its smoothing
uniform float detail;            // look.detail, 0..1: everything below scaled by it
uniform int detail_taps;         // stroke samples each side of the pixel (0 resolved by device)
uniform float stroke_length_px;  // look.stroke_length in output pixels
uniform float stroke_width_px;   // look.stroke_width: bristle width (the fine noise cell)
uniform float stroke_drag;       // how much colour a stroke carries across the form
uniform float drag_texels;       // ... from how far, in work texels
uniform float impasto;           // relief of the strokes
uniform float canvas;            // relief of the weave
uniform float canvas_weave_px;   // look.canvas_weave: thread spacing in output pixels
uniform float varnish;           // amber varnish, 0..1

out vec4 color;

float cell_noise(vec2 q, float cell, uint salt) {      // white noise, -1..1, per cell
    return float(cell_bits(floor(q / cell), salt) & 0xFFFFu) * (2.0 / 65535.0) - 1.0;
}

// Line integral of the noise along t through q: fine bristles and wider bands.
float strokes(vec2 q, vec2 t) {
    float fine = 0.0, wide = 0.0;
    float step_wide = 0.5 * stroke_length_px / float(max(detail_taps, 1));  // the paint band
    float step_fine = min(step_wide, 0.8 * stroke_width_px);          // bristles: no cell skipped
    for (int k = -detail_taps; k <= detail_taps; ++k) {
        fine += cell_noise(q + float(k) * step_fine * t, stroke_width_px, 17u);
        wide += cell_noise(q + float(k) * step_wide * t, 4.0 * stroke_width_px, 29u);
    }
    float n = float(2 * detail_taps + 1);
    return (0.6 * fine + 0.8 * wide) * inversesqrt(n) * 0.577;   // ~unit spread
}

float weave(vec2 q) {                                   // plain weave, 0..1 height
    vec2 u = q / canvas_weave_px;
    vec2 f = fract(u);
    vec2 arch = 4.0 * f * (1.0 - f);                    // a thread's round profile
    float over = mod(floor(u.x) + floor(u.y), 2.0);     // warp over weft, then under
    return mix(arch.x * (0.55 + 0.45 * arch.y), arch.y * (0.55 + 0.45 * arch.x), over);
}

void main() {
    vec2 q = gl_FragCoord.xy;
    vec2 st = 0.5 + (q / size - 0.5) * crop;
    vec3 base = texture(work_tex, st).rgb;
    vec3 J = textureLod(flow_tex, st, flow_lod).rgb;
    float disc = sqrt((J.x - J.z) * (J.x - J.z) + 4.0 * J.y * J.y);
    float l1 = 0.5 * (J.x + J.z + disc), l2 = 0.5 * (J.x + J.z - disc);
    float coherence = disc / (l1 + l2 + 1e-4);
    vec2 g = vec2(l1 - J.z, J.y);                        // across the form
    g = normalize(mix(vec2(0.7071, 0.7071), g / (length(g) + 1e-6), smoothstep(0.02, 0.3, coherence)));
    vec2 t = vec2(-g.y, g.x);                            // along it: the stroke
    float n = strokes(q, t);
    vec2 off = g * drag_texels / vec2(textureSize(work_tex, 0));
    vec3 side = texture(work_tex, st + (n > 0.0 ? off : -off)).rgb;   // one fetch
    vec3 c = mix(base, side, clamp(abs(n) * stroke_drag * detail, 0.0, 1.0));
    float h = impasto * n + canvas * weave(q);           // the height field, lit
    float relief = (-dFdx(h) + dFdy(h)) * 0.7071;
    c *= 1.0 + 0.25 * detail * relief;
    c = mix(c, c * vec3(1.0, 0.94, 0.78), detail * varnish);
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
