// Catmull-Rom bicubic sampling with texelFetch (16 taps, clamp to edge).
// Interpolating: at texel centres it returns the texel exactly; may overshoot
// slightly at edges (the caller clamps). `pos` is in texel units, texel centres
// at integer + 0.5, y measured in texture rows (row 0 = first row uploaded).

vec4 catmull_rom_weights(float f) {
    float f2 = f * f;
    float f3 = f2 * f;
    return vec4(-0.5 * f3 + f2 - 0.5 * f,
                 1.5 * f3 - 2.5 * f2 + 1.0,
                -1.5 * f3 + 2.0 * f2 + 0.5 * f,
                 0.5 * f3 - 0.5 * f2);
}

vec3 sample_bicubic(sampler2D tex, vec2 pos) {
    ivec2 size = textureSize(tex, 0);
    vec2 p = pos - 0.5;
    vec2 base = floor(p);
    vec2 f = p - base;
    vec4 wx = catmull_rom_weights(f.x);
    vec4 wy = catmull_rom_weights(f.y);
    ivec2 b = ivec2(base) - 1;
    ivec2 hi = size - 1;
    vec3 acc = vec3(0.0);
    for (int j = 0; j < 4; ++j) {
        int y = clamp(b.y + j, 0, hi.y);
        vec3 row = vec3(0.0);
        for (int i = 0; i < 4; ++i) {
            int x = clamp(b.x + i, 0, hi.x);
            row += wx[i] * texelFetch(tex, ivec2(x, y), 0).rgb;
        }
        acc += wy[j] * row;
    }
    return acc;
}
