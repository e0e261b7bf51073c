"""End-to-end cases of ch04_nin_gap (read by tests/test_exercises_graded.py).

Graded cells: test_conv1x1 2, test_conv1x1_backward 4, test_global_avg_pool 1, test_head_parameters 1,
test_mlpconv 2 (10 autograded); answer_gap 1 (manual).
"""

# The weight gradient of one pixel only (the shared weight's contributions are not added up over the positions):
# right shapes, right dx and dbias, wrong dweight.
WRONG = {
    "conv1x1_backward": '''
def conv1x1_backward(dout, x, weight, bias):
    w = weight[:, :, 0, 0]
    dx = torch.einsum("oc,nohw->nchw", w, dout)
    dweight = torch.einsum("no,nc->oc", dout[:, :, 0, 0], x[:, :, 0, 0])
    return dx, dweight.reshape(weight.shape), dout.sum(dim=(0, 2, 3))
''',
}
WRONG_LOSES = 4

# PyTorch's convolution does the work: right values, but the exercise forbids it.
FORBIDDEN = {
    "conv1x1": '''
import torch.nn.functional as F


def conv1x1(x, weight, bias):
    return F.conv2d(x, weight, bias)
''',
}
FORBIDDEN_LOSES = 2
FORBIDDEN_MESSAGE = "torch.nn.functional.conv2d"
