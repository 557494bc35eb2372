// Integer hash noise (PCG-style), exact on every GPU and stable for any seed:
// the player passes a wrapped integer seed, never a large float time.

uint pcg_hash(uint v) {
    uint state = v * 747796405u + 2891336453u;
    uint word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Uniform 0..1 from a pixel position and a seed.
float hash_u01(uvec2 p, uint seed) {
    return float(pcg_hash(p.x + pcg_hash(p.y + pcg_hash(seed)))) * (1.0 / 4294967295.0);
}

// Zero-mean, roughly gaussian grain in -1..1 (sum of two uniforms, triangular pdf).
float grain_noise(uvec2 p, uint seed) {
    return hash_u01(p, seed) + hash_u01(p, seed ^ 0x9E3779B9u) - 1.0;
}
