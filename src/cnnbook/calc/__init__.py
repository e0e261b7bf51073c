"""Pure calculators: output sizes, pooling windows, receptive fields, parameters and mult-adds.

No plotting and no widgets here: the widgets and the chapters display what these functions compute,
and the tests check them against PyTorch.

- ``cnnbook.calc.shapes``: ``conv_output_size``, ``pool_output_size``, ``layer_shapes``.
- ``cnnbook.calc.pooling``: windows, overlap and the AlexNet 1D example.
- ``cnnbook.calc.receptive_field``: size, jump and start per layer, and the input region of a unit.
- ``cnnbook.calc.costs``: closed-form costs of standard, separable and inception convolutions.
- ``cnnbook.calc.counting``: parameters and mult-adds of a built network, counted by PyTorch.
"""

from .costs import (
    GOOGLENET_INCEPTION_3A,
    Cost,
    conv_cost,
    depthwise_conv_cost,
    inception_branch_costs,
    inception_cost,
    inception_out_channels,
    linear_cost,
    pointwise_conv_cost,
    separable_conv_cost,
    separable_ratio,
    standard_conv_cost,
)
from .counting import LayerCost, count_mult_adds, count_parameters, format_layer_table, layer_table
from .pooling import coverage, overlap, pool1d, pool2d, pool_windows
from .receptive_field import (
    Region,
    RFRow,
    format_rf_table,
    input_region,
    layer_fields,
    probe_receptive_field,
    probe_receptive_fields,
    receptive_field_of,
    receptive_fields,
    rf_step,
    stack_receptive_field,
)
from .shapes import (
    LayerShape,
    conv_output_size,
    format_shape_table,
    layer_shapes,
    pool_output_size,
    smallest_input_side,
)

__all__ = [
    # shapes
    "LayerShape", "conv_output_size", "pool_output_size", "layer_shapes", "format_shape_table",
    # pooling
    "pool_windows", "pool1d", "pool2d", "overlap", "coverage",
    # receptive fields
    "RFRow", "Region", "rf_step", "stack_receptive_field", "receptive_fields", "receptive_field_of", "layer_fields",
    "input_region", "probe_receptive_field", "probe_receptive_fields", "format_rf_table",
    # closed-form costs
    "Cost", "conv_cost", "standard_conv_cost", "depthwise_conv_cost", "pointwise_conv_cost",
    "separable_conv_cost", "separable_ratio", "linear_cost", "inception_cost", "inception_branch_costs",
    "inception_out_channels", "GOOGLENET_INCEPTION_3A",
    # counted costs
    "LayerCost", "count_parameters", "count_mult_adds", "layer_table", "format_layer_table",
]
