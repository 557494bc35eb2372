#version 330 core
// Upsample pass (work size, once per keyframe): the keyframe enlarged from the
// generator's resolution with Catmull-Rom bicubic filtering, flipped to GL's
// bottom-up rows. The dissolve between keyframes is in present.frag.
#include "lib/bicubic.glsl"

uniform sampler2D src_tex;    // source size, RGB8, row 0 = top row of the image

in vec2 uv;
out vec4 color;

void main() {
    vec2 src = vec2(textureSize(src_tex, 0));
    // Work framebuffers are bottom-up (GL); keyframes were uploaded top row first.
    vec2 pos = vec2(uv.x, 1.0 - uv.y) * src;
    color = vec4(clamp(sample_bicubic(src_tex, pos), 0.0, 1.0), 1.0);
}
