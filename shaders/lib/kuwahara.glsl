// Generalized Kuwahara filter with polynomial sector weights (Papari et al. 2007;
// polynomial weighting after Kyprianidis et al. 2010). Eight overlapping sectors on
// a disc of `radius` pixels; each sector's mean is weighted by how flat (low
// variance) it is, so edges stay crisp while flat areas turn into paint strokes.

const float KUWAHARA_SHARPNESS = 8.0;          // q: how strongly flat sectors win
const float KUWAHARA_ZERO_CROSSING = 0.5890486; // 3*pi/16: sector overlap angle

// Polynomial weights of the 4 sectors around the axes for a point v in the unit disc.
vec4 sector_weights(vec2 v, float zeta, float eta) {
    float vxx = zeta - eta * v.x * v.x;
    float vyy = zeta - eta * v.y * v.y;
    vec4 z = max(vec4(v.y + vxx, -v.x + vyy, -v.y + vxx, v.x + vyy), 0.0);
    return z * z;
}

vec3 kuwahara(sampler2D tex, ivec2 centre, int radius) {
    ivec2 hi = textureSize(tex, 0) - 1;
    float r = float(max(radius, 1));
    float zeta = 2.0 / r;
    float s = sin(KUWAHARA_ZERO_CROSSING);
    float eta = (zeta + cos(KUWAHARA_ZERO_CROSSING)) / (s * s);
    vec4 m[8];
    vec3 sq[8];
    for (int k = 0; k < 8; ++k) {
        m[k] = vec4(0.0);
        sq[k] = vec3(0.0);
    }
    // Only the taps inside the disc: a software rasteriser runs a skipped
    // (`continue`d) tap at full cost, so the row bounds leave them out instead.
    int rr = max(radius, 1) * max(radius, 1);
    for (int y = -radius; y <= radius; ++y) {
        int half_w = int(floor(sqrt(float(rr - y * y)) + 1e-3));
        for (int x = -half_w; x <= half_w; ++x) {
            vec2 v = vec2(x, y) / r;
            float d2 = dot(v, v);
            vec3 c = texelFetch(tex, clamp(centre + ivec2(x, y), ivec2(0), hi), 0).rgb;
            vec4 wa = sector_weights(v, zeta, eta);
            vec2 vr = 0.70710678 * vec2(v.x - v.y, v.x + v.y);  // rotated 45 degrees
            vec4 wb = sector_weights(vr, zeta, eta);
            float g = exp(-3.125 * d2) / (dot(wa, vec4(1.0)) + dot(wb, vec4(1.0)));
            for (int k = 0; k < 4; ++k) {
                float w0 = wa[k] * g;
                float w1 = wb[k] * g;
                m[2 * k] += vec4(c * w0, w0);
                sq[2 * k] += c * c * w0;
                m[2 * k + 1] += vec4(c * w1, w1);
                sq[2 * k + 1] += c * c * w1;
            }
        }
    }
    vec4 acc = vec4(0.0);
    for (int k = 0; k < 8; ++k) {
        if (m[k].w <= 0.0) continue;
        vec3 mean = m[k].rgb / m[k].w;
        vec3 var = abs(sq[k] / m[k].w - mean * mean);
        float sigma2 = var.r + var.g + var.b;
        float w = 1.0 / (1.0 + pow(255.0 * sigma2, 0.5 * KUWAHARA_SHARPNESS));
        acc += vec4(mean * w, w);
    }
    return acc.rgb / max(acc.w, 1e-8);
}
