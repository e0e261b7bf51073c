"""cnnbook: the one implementation behind the book *Convolutional network architectures, from LeNet to NAS*.

- :mod:`cnnbook.layers`: building blocks, one concept per module.
- :mod:`cnnbook.models`: every network, registered by name (``list_models``, ``get_model``).
- :mod:`cnnbook.calc`: pure calculators for shapes, receptive fields, parameters and mult-adds.
- :mod:`cnnbook.display`: small display helpers shared by the chapters (tables).
"""

from .registry import ModelInfo, get_meta_model, get_model, get_model_info, list_models, register_model

__version__ = "0.1.0"
__all__ = ["ModelInfo", "get_meta_model", "get_model", "get_model_info", "list_models", "register_model"]
