#version 330 core
// A picture or a pre-rendered RGBA text panel (PIL, straight alpha), drawn into its own
// viewport: the curate window and the tuning overlay. The texture's rows are top row
// first (numpy/PIL order), so v is flipped.
in vec2 uv;
out vec4 color;
uniform sampler2D image;

void main() {
    color = texture(image, vec2(uv.x, 1.0 - uv.y));
}
