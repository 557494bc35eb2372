"""GL side: shader loading and the render pipeline (moderngl; never torch)."""
