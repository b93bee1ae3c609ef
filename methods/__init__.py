"""Training methods, models, data sets and the training loop."""

from methods.torchvision_compat import import_torchvision

import_torchvision()  # once, before any submodule imports torchvision (see torchvision_compat)
