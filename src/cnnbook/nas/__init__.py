"""Neural architecture search (chapter 13): one small search space and four ways to search it.

- ``space``: the cell-based search space (6 edges x 6 operations) and its networks;
- ``evaluate``: the environment: train a candidate briefly, return reward and cost;
- ``baseline``: random search, the baseline;
- ``evolution``: regularised evolution with tournament selection, crossover, mutation;
- ``reinforce``: a REINFORCE controller;
- ``darts``: DARTS, the continuous relaxation with a mixed operation on every edge;
- ``plots``: the chapter's figures (display only).

>>> from cnnbook.nas import Evaluator, load_nas_data, nas_budget, regularized_evolution
>>> budget = nas_budget()                      # sizes of the current mode (budget or full)
>>> data = load_nas_data(budget)
>>> history = regularized_evolution(Evaluator.from_budget(data, budget), budget.evaluations)
>>> history.best()                             # Record(step, arch, reward)
"""

from . import baseline, darts, evaluate, evolution, plots, reinforce, space
from .baseline import *  # noqa: F401,F403
from .darts import *  # noqa: F401,F403
from .evaluate import *  # noqa: F401,F403
from .evolution import *  # noqa: F401,F403
from .plots import *  # noqa: F401,F403
from .reinforce import *  # noqa: F401,F403
from .space import *  # noqa: F401,F403

__all__ = [
    *space.__all__, *evaluate.__all__, *baseline.__all__, *evolution.__all__, *reinforce.__all__,
    *darts.__all__, *plots.__all__,
]
