// Integer hash noise (PCG-style), exact on every GPU and stable for any seed:
// the player passes a wrapped integer seed, never a large float time.

uint pcg_hash(uint v) {
    uint state = v * 747796405u + 2891336453u;
    uint word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// 32 random bits from a pixel position and a seed.
uint hash_bits(uvec2 p, uint seed) {
    return pcg_hash(p.x + pcg_hash(p.y + pcg_hash(seed)));
}

// Uniform 0..1 from a pixel position and a seed.
float hash_u01(uvec2 p, uint seed) {
    return float(hash_bits(p, seed)) * (1.0 / 4294967295.0);
}

// The same grain from one hash instead of three (it matters per output pixel on
// a software rasteriser): the pixel index in a 65536-wide plane, shifted per seed
// by a large odd step, so successive frames sample far-apart windows of the plane.
float grain_noise_fast(uvec2 p, uint seed) {
    uint h = pcg_hash(p.x + (p.y << 16u) + seed * 0x9E3779B9u);
    return (float(h & 0xFFFFu) + float(h >> 16u)) * (1.0 / 65535.0) - 1.0;
}

// Zero-mean grain in -1..1 with a triangular pdf: the sum of two 16-bit uniforms
// taken from one hash.
float grain_noise(uvec2 p, uint seed) {
    uint h = hash_bits(p, seed);
    return (float(h & 0xFFFFu) + float(h >> 16u)) * (1.0 / 65535.0) - 1.0;
}

// 32 random bits of a cell: one hash (a software rasteriser pays per hash), the cell
// index in a 65536-wide plane, salted per pattern.
uint cell_bits(vec2 cell, uint salt) {
    uvec2 c = uvec2(ivec2(cell) + 32768);
    return pcg_hash(c.x + (c.y << 16u) + salt * 0x9E3779B9u);
}
