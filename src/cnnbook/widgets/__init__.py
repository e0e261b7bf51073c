"""Teaching widgets: pooling overlap, receptive fields, cost ratios.

Call one in a code cell and let it be displayed (the cell's last expression)::

    import cnnbook.widgets
    cnnbook.widgets.pooling_overlap()                   # chapter 3 (AlexNet)
    cnnbook.widgets.receptive_field("vgg16")            # chapters 3, 5, 6
    cnnbook.widgets.cost_ratios("inception")            # chapter 6; "separable" in chapter 11

In Jupyter with a live kernel the widget is made of ipywidgets and every move of a control recomputes
the display with :mod:`cnnbook.calc`. In the built HTML book (no kernel) the same call leaves a
self-contained interactive widget: the display of every value the controls can take, precomputed by the
same calculators, with a small JavaScript front end that looks it up; for print and PDF, a static
figure. :func:`display_mode` explains how the two are told apart (``CNNBOOK_WIDGETS=static|live``
overrides it).
"""

from ._base import MODE_ENV, Control, TeachingWidget, display_mode
from .cost_ratio import CostRatios, cost_ratios
from .pooling import PoolingOverlap, pooling_overlap
from .receptive_field import ReceptiveField, receptive_field

__all__ = [
    "pooling_overlap",
    "receptive_field",
    "cost_ratios",
    "display_mode",
    "MODE_ENV",
    "Control",
    "TeachingWidget",
    "PoolingOverlap",
    "ReceptiveField",
    "CostRatios",
]
