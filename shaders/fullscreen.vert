#version 330 core
// One triangle that covers the viewport; no vertex buffer (positions from gl_VertexID).
// uv: 0..1 across the viewport, (0,0) bottom-left (GL convention).
out vec2 uv;

void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));  // (0,0) (2,0) (0,2)
    uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
