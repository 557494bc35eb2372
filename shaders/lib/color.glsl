// Colour helpers. Textures hold display-referred (sRGB-encoded) values 0..1.

const vec3 LUMA = vec3(0.2126, 0.7152, 0.0722);  // Rec.709 weights

float luma(vec3 c) { return dot(c, LUMA); }

vec3 srgb_to_linear(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(0.04045, c));
}

vec3 linear_to_srgb(vec3 c) {
    c = max(c, 0.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}
