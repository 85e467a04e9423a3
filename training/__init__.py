"""The shared SRGAN core: networks, degradation, data, losses, trainer, evaluation and weights (Ledig et al. 2017)."""
