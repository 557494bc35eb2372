#version 330 core
// Structure pass (work size, once per keyframe, only with look.detail > 0): the
// structure tensor of the painted keyframe's luma (Sobel), stored unsmoothed; the
// pipeline builds its mipmaps and the detail pass reads a coarser level, which is
// the tensor smoothed over a few work pixels: the direction the form runs in.
#include "lib/color.glsl"

uniform sampler2D src_tex;   // painted keyframe, work size

out vec4 color;              // RGBA16F: Jxx, Jxy, Jyy, 1

float lum(ivec2 p, ivec2 hi) {
    return luma(texelFetch(src_tex, clamp(p, ivec2(0), hi), 0).rgb);
}

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 hi = textureSize(src_tex, 0) - 1;
    float a = lum(p + ivec2(-1, 1), hi), b = lum(p + ivec2(0, 1), hi), c = lum(p + ivec2(1, 1), hi);
    float d = lum(p + ivec2(-1, 0), hi),                               f = lum(p + ivec2(1, 0), hi);
    float g = lum(p + ivec2(-1, -1), hi), h = lum(p + ivec2(0, -1), hi), i = lum(p + ivec2(1, -1), hi);
    float gx = (c + 2.0 * f + i) - (a + 2.0 * d + g);
    float gy = (a + 2.0 * b + c) - (g + 2.0 * h + i);
    color = vec4(gx * gx, gx * gy, gy * gy, 1.0);
}
