#version 330 core
// Grade pass (work size, once per keyframe): unsharp mask, then exposure, warmth,
// contrast, saturation, gamma and the portrait's vignette. Neutral settings
// (0, 1, 1, 0, 1, sharpen 0, vignette 0) pass the picture through unchanged. The
// vignette is smooth, so baking it here at work size instead of per output pixel
// in present looks the same and saves its maths on every displayed pixel.
#include "lib/color.glsl"

uniform sampler2D src_tex;   // work size
uniform float sharpen;       // unsharp amount, 0..2
uniform float exposure;      // stops
uniform float contrast;      // 1 = neutral, pivot at mid grey
uniform float saturation;    // 0 = grey, 1 = neutral
uniform float warmth;        // + amber, - blue
uniform float gamma;         // >1 lifts the mid-tones
uniform float vignette;      // darkening at the portrait's corners, 0..2
uniform float aspect;        // portrait width / height: present shows this centre crop

out vec4 color;

vec3 fetch(ivec2 p, ivec2 hi) {
    return texelFetch(src_tex, clamp(p, ivec2(0), hi), 0).rgb;
}

vec3 unsharp(ivec2 p) {
    ivec2 hi = textureSize(src_tex, 0) - 1;
    vec3 c = fetch(p, hi);
    vec3 edges = fetch(p + ivec2(1, 0), hi) + fetch(p - ivec2(1, 0), hi)
               + fetch(p + ivec2(0, 1), hi) + fetch(p - ivec2(0, 1), hi);
    vec3 corners = fetch(p + ivec2(1, 1), hi) + fetch(p + ivec2(-1, 1), hi)
                 + fetch(p + ivec2(1, -1), hi) + fetch(p + ivec2(-1, -1), hi);
    vec3 blur = (4.0 * c + 2.0 * edges + corners) / 16.0;  // 3x3 binomial
    return c + sharpen * (c - blur);
}

// The vignette at work pixel centre `px`, in the coordinates of the portrait that
// present crops out of the square (q 0..1 across the visible portrait).
float vignette_factor(vec2 px) {
    vec2 st = px / vec2(textureSize(src_tex, 0));
    vec2 crop = aspect < 1.0 ? vec2(aspect, 1.0) : vec2(1.0, 1.0 / aspect);
    vec2 d = (st - 0.5) / crop * 2.0;                 // -1..1, corners at |d|^2 = 2
    float r = 0.5 * dot(d, d);                        // 0 centre .. 1 corners
    return clamp(1.0 - vignette * r * r * (3.0 - 2.0 * r) * 0.6, 0.0, 1.0);
}

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 c = sharpen > 0.0 ? unsharp(p) : texelFetch(src_tex, p, 0).rgb;
    // Exposure and white balance act on light, so in linear space.
    vec3 lin = srgb_to_linear(c) * exp2(exposure);
    vec3 wb = vec3(1.0 + 0.30 * warmth, 1.0 + 0.05 * warmth, 1.0 - 0.30 * warmth);
    lin *= max(wb, 0.0) / max(luma(wb), 1e-4);
    c = linear_to_srgb(lin);
    c = (c - 0.5) * contrast + 0.5;
    c = mix(vec3(luma(c)), c, saturation);
    c = pow(clamp(c, 0.0, 1.0), vec3(1.0 / gamma));
    c *= vignette_factor(vec2(p) + 0.5);
    color = vec4(c, 1.0);
}
