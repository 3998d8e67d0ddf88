"""Model building and training: reproduces the UMONS Keras transfer-learning recipe."""
