#version 330 core
// Curation: one picture (or the counter's RGBA text panel, blended) drawn into its own
// viewport. The texture's rows are top row first (numpy/PIL order), so v is flipped.
in vec2 uv;
out vec4 color;
uniform sampler2D image;

void main() {
    color = texture(image, vec2(uv.x, 1.0 - uv.y));
}
