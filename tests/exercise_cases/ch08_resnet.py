"""End-to-end cases of ch08_resnet (read by tests/test_exercises_graded.py).

Graded cells: test_residual_block 3, test_make_stage 1, test_gradient_spread 2, test_experiment 2 (8 autograded);
answer_experiment 1 and answer_resnet 1 (manual).
"""

# The experiment reports the shallowest depth instead of the deepest: log_ratio is about 0, outside the band.
WRONG = {
    "experiment": '''
spreads = {}
for depth in DEPTHS:
    for shortcut in (False, True):
        torch.manual_seed(0)
        spreads[depth, shortcut] = gradient_spread(small_network(depth, shortcut).to(device), images, labels)
log_ratio = math.log10(float(spreads[DEPTHS[0], False] / spreads[DEPTHS[0], True]))
''',
}
WRONG_LOSES = 2

# The package's block, under the exercise's name: right values, but cnnbook.layers is forbidden.
FORBIDDEN = {
    "residual_block": '''
from cnnbook.layers import BasicBlock


class ResidualBlock(BasicBlock):
    def __init__(self, in_channels, out_channels, stride=1, shortcut=True):
        project = shortcut and (stride != 1 or in_channels != out_channels)
        downsample = BasicBlock.projection(in_channels, out_channels, stride, nn.BatchNorm2d) if project else None
        super().__init__(in_channels, out_channels, stride, downsample, shortcut=shortcut)
''',
}
FORBIDDEN_LOSES = 3
FORBIDDEN_MESSAGE = "cnnbook.layers"
