"""StarGAN v2 (Choi et al., CVPR 2020): latent- and reference-guided multi-domain translation."""
