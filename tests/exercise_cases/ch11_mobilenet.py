"""End-to-end cases of ch11_mobilenet (read by tests/test_exercises_graded.py).

Graded cells: test_depthwise_conv2d 2, test_depthwise_conv2d_backward 3, test_inverted_residual 3 (8 autograded);
answer_mobilenet 1 (manual).
"""

# The weight gradient averaged over the batch instead of summed: right shapes, right for a batch of one,
# wrong for the visible and hidden batches.
WRONG = {
    "depthwise_conv2d_backward": '''
def depthwise_conv2d_backward(dout, x, weight, stride=1, padding=0):
    n, c, h, w = x.shape
    k = weight.shape[-1]
    cols = F.unfold(x, k, padding=padding, stride=stride).view(n, c, k * k, -1)
    dout = dout.reshape(n, c, -1)
    dweight = torch.einsum("nckl,ncl->ck", cols, dout).view(c, 1, k, k) / n
    dcols = torch.einsum("ncl,ck->nckl", dout, weight.view(c, k * k))
    dx = F.fold(dcols.reshape(n, c * k * k, -1), (h, w), k, padding=padding, stride=stride)
    return dx, dweight
''',
}
WRONG_LOSES = 3

# Autograd does the work: right values, but the exercise forbids it.
FORBIDDEN = {
    "depthwise_conv2d_backward": '''
def depthwise_conv2d_backward(dout, x, weight, stride=1, padding=0):
    x = x.detach().requires_grad_()
    weight = weight.detach().requires_grad_()
    with torch.enable_grad():
        out = depthwise_conv2d(x, weight, stride, padding)
        return torch.autograd.grad(out, (x, weight), dout)
''',
}
FORBIDDEN_LOSES = 3
FORBIDDEN_MESSAGE = "torch.autograd"
