#version 330 core
// Painterly pass (work size): generalized Kuwahara "oil paint", mixed with the
// input by `painterly`. The unsharp `sharpen` of the look is applied afterwards, in
// grade.frag, so it crisps the painted strokes rather than undoing them.
#include "lib/kuwahara.glsl"

uniform sampler2D src_tex;   // work size
uniform float painterly;         // look.painterly: 0 = untouched, 1 = fully painted
uniform int painterly_radius;    // look.painterly_radius: work pixels, 1..8

out vec4 color;

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 src = texelFetch(src_tex, p, 0).rgb;
    vec3 painted = painterly > 0.0 ? kuwahara(src_tex, p, painterly_radius) : src;
    color = vec4(clamp(mix(src, painted, painterly), 0.0, 1.0), 1.0);
}
