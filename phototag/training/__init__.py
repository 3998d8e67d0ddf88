"""Model building and training: reproduces the UMONS Keras transfer-learning recipe.

Needs the ``train`` extra (TensorFlow, Keras, SciPy); importing the package without it raises
:class:`phototag.extras.MissingExtra`.
"""

from ..extras import require

require("train", "training and evaluation")
