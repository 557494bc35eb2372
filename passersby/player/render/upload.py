"""Keyframe uploads through pixel-buffer objects (PBOs). GL side: no torch here.

A keyframe (numpy [H,W,3] uint8 or any C-contiguous buffer: pinned host memory
from the generator works the same) is copied once into a PBO, and the texture is
filled from the PBO by the driver: no Python-level conversion, no per-frame
allocation (the buffers are made once, reused round robin, and orphaned before
each write so the driver never stalls on a buffer the GPU still reads). On
llvmpipe this is a plain memcpy; on a GPU the transfer is asynchronous DMA.

CUDA-GL interop (registering these PBOs with cudaGraphicsGLRegisterBuffer so the
generator writes into them on the GPU) would remove the last host copy; it needs
cuda-python on the GPU box and is not done here (see README, Performance).
"""
from __future__ import annotations

import moderngl


class PboUploader:
    """Writes keyframes of a fixed byte size into textures through `count` PBOs."""

    def __init__(self, ctx: moderngl.Context, nbytes: int, count: int = 2) -> None:
        if nbytes < 1 or count < 1:
            raise ValueError(f"PboUploader needs nbytes >= 1 and count >= 1, got {nbytes}, {count}")
        self.nbytes = int(nbytes)
        self._buffers = [ctx.buffer(reserve=self.nbytes, dynamic=True) for _ in range(count)]
        self._next = 0
        self.uploads = 0

    def write(self, texture: moderngl.Texture, data: object) -> None:
        """Fill `texture` (whole, alignment 1) from `data` (buffer protocol, nbytes long)."""
        size = memoryview(data).nbytes  # type: ignore[arg-type]
        if size != self.nbytes:
            raise ValueError(f"keyframe of {size} bytes, but this uploader moves {self.nbytes} "
                             f"(the pipeline's source size x 3); resize the keyframe")
        buf = self._buffers[self._next]
        self._next = (self._next + 1) % len(self._buffers)
        buf.orphan(self.nbytes)
        buf.write(data)  # type: ignore[arg-type]
        texture.write(buf, alignment=1)
        self.uploads += 1

    def release(self) -> None:
        for buf in self._buffers:
            buf.release()
        self._buffers = []
