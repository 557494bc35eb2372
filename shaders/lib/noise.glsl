// Integer hash noise (PCG-style), exact on every GPU and stable for any seed:
// the player passes a wrapped integer seed, never a large float time. One hash per
// value: a software rasteriser pays per hash.

uint pcg_hash(uint v) {
    uint state = v * 747796405u + 2891336453u;
    uint word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Zero-mean grain in -1..1 with a triangular pdf (the sum of two 16-bit uniforms from
// one hash): the pixel index in a 65536-wide plane, shifted per seed by a large odd
// step, so successive frames sample far-apart windows of the plane.
float grain_noise(uvec2 p, uint seed) {
    uint h = pcg_hash(p.x + (p.y << 16u) + seed * 0x9E3779B9u);
    return (float(h & 0xFFFFu) + float(h >> 16u)) * (1.0 / 65535.0) - 1.0;
}

// 32 random bits of a cell: the cell index in a 65536-wide plane, salted per pattern.
uint cell_bits(vec2 cell, uint salt) {
    uvec2 c = uvec2(ivec2(cell) + 32768);
    return pcg_hash(c.x + (c.y << 16u) + salt * 0x9E3779B9u);
}
