"""How the stream moves through the generator's latent space."""
