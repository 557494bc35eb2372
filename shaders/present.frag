#version 330 core
// Present pass (output size, the only one): a framed portrait on a mat.
// Cheap by design: one bilinear fetch of the work texture per pixel.
#include "lib/noise.glsl"
#include "lib/color.glsl"

uniform sampler2D work_tex;   // square, LINEAR filtered, bottom-up
uniform vec4 rect;            // portrait in output pixels: x0, y0, width, height
uniform float aspect;         // portrait width / height (centre crop of the square)
uniform vec3 mat_color;
uniform vec3 frame_color;
uniform float frame_px;       // frame line width in output pixels; 0 = none
uniform float vignette;       // darkening at the portrait's corners, 0..2
uniform float grain;          // grain amplitude, 0..0.5
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
    vec2 crop = aspect < 1.0 ? vec2(aspect, 1.0) : vec2(1.0, 1.0 / aspect);
    vec3 c = texture(work_tex, 0.5 + (q - 0.5) * crop).rgb;
    vec2 d = (q - 0.5) * 2.0;                         // -1..1, corners at |d|^2 = 2
    float r = 0.5 * dot(d, d);                        // 0 centre .. 1 corners
    c *= clamp(1.0 - vignette * r * r * (3.0 - 2.0 * r) * 0.6, 0.0, 1.0);
    float n = grain_noise(uvec2(p), grain_seed);
    float mid = 4.0 * luma(c) * (1.0 - luma(c));      // grain shows most in mid-tones
    return c + grain * n * (0.35 + 0.65 * mid);
}

void main() {
    vec2 p = gl_FragCoord.xy;
    float d = rect_distance(p);
    vec3 c = mat_color;
    c = mix(c, frame_color, clamp(frame_px + 0.5 - d, 0.0, 1.0) * step(0.0, frame_px - 1e-3));
    if (d < 0.5) {
        c = mix(c, portrait(p), clamp(0.5 - d, 0.0, 1.0));
    }
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
