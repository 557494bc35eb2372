#version 330 core
// The tuning overlay: a pre-rendered RGBA text panel (PIL), blended over the picture
// inside its own viewport. Straight alpha; the panel's rows are top row first.
in vec2 uv;
out vec4 color;
uniform sampler2D panel;

void main() {
    color = texture(panel, vec2(uv.x, 1.0 - uv.y));
}
