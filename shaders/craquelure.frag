#version 330 core
// Craquelure pass (output size, once per keyframe, only when look.craquelure > 0):
// the age cracks of a varnished painting, multiplied over the detail pass's band
// (blend ZERO, SRC_COLOR). Cracks are the edges between Voronoi cells (F2 - F1
// small) of `crack_size_px` cells, one pixel wide whatever the size.
#include "lib/noise.glsl"

uniform float detail;         // look.detail
uniform float craquelure;     // look.craquelure: crack darkness, 0..1
uniform float crack_size_px;  // look.crack_size: crack cell size in output pixels

out vec4 color;

float cracks(vec2 q) {                                  // 1 on a crack, 0 elsewhere
    vec2 u = q / crack_size_px;
    vec2 b = floor(u);
    float f1 = 9.0, f2 = 9.0;
    for (int j = -1; j <= 1; ++j) {
        for (int i = -1; i <= 1; ++i) {
            vec2 c = b + vec2(i, j);
            uint h = cell_bits(c, 41u);
            vec2 site = c + vec2(float(h & 0xFFFFu), float(h >> 16u)) / 65535.0;
            float d = length(u - site);
            f2 = min(max(d, f1), f2);
            f1 = min(d, f1);
        }
    }
    return 1.0 - smoothstep(0.0, 1.2 / crack_size_px, f2 - f1);
}

void main() {
    color = vec4(vec3(1.0 - 0.45 * detail * craquelure * cracks(gl_FragCoord.xy)), 1.0);
}
