#version 330 core
// Morph pass (work size): cross-dissolve two keyframes and upsample them from the
// generator's resolution with Catmull-Rom bicubic filtering. The pipeline runs it
// once per keyframe, with t = 0, to upsample it; the displayed dissolve is in present.
#include "lib/bicubic.glsl"

uniform sampler2D prev_tex;   // source size, RGB8, row 0 = top row of the image
uniform sampler2D next_tex;
uniform float t;              // 0 = prev, 1 = next
uniform int curve;            // 0 = linear, 1 = smoothstep

in vec2 uv;
out vec4 color;

void main() {
    vec2 src = vec2(textureSize(prev_tex, 0));
    // Work framebuffers are bottom-up (GL); keyframes were uploaded top row first.
    vec2 pos = vec2(uv.x, 1.0 - uv.y) * src;
    float k = clamp(t, 0.0, 1.0);
    if (curve == 1) {
        k = smoothstep(0.0, 1.0, k);
    }
    vec3 a = sample_bicubic(prev_tex, pos);
    vec3 b = sample_bicubic(next_tex, pos);
    color = vec4(clamp(mix(a, b, k), 0.0, 1.0), 1.0);
}
