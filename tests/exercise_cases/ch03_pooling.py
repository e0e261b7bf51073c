"""End-to-end cases of ch03_pooling (read by tests/test_exercises_graded.py).

Graded cells: test_max_pool1d 2, test_pool2d 2, test_max_pool2d_backward 4, test_coverage 1 (9 autograded);
answer_overlap 2 (manual).
"""

# The backward pass that writes each window's gradient into dx instead of adding it: right with touching
# windows and gaps, wrong where two overlapping windows share their maximum.
WRONG = {
    "max_pool2d_backward": '''
def max_pool2d_backward(dout, x, kernel_size, stride):
    n, c, h, w = x.shape
    dx = torch.zeros_like(x)
    windows = x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    h_out, w_out = windows.shape[2], windows.shape[3]
    for i in range(h_out):
        for j in range(w_out):
            flat = windows[:, :, i, j].reshape(n, c, -1).argmax(-1)
            rows, cols = i * stride + flat // kernel_size, j * stride + flat % kernel_size
            for a in range(n):
                for b in range(c):
                    dx[a, b, rows[a, b], cols[a, b]] = dout[a, b, i, j]
    return dx
''',
}
WRONG_LOSES = 4

# Autograd through PyTorch's max pooling: right values, but the exercise forbids both.
FORBIDDEN = {
    "max_pool2d_backward": '''
def max_pool2d_backward(dout, x, kernel_size, stride):
    with torch.enable_grad():
        x = x.detach().requires_grad_()
        out = F.max_pool2d(x, kernel_size, stride)
        return torch.autograd.grad(out, (x,), dout)[0]
''',
}
FORBIDDEN_LOSES = 4
FORBIDDEN_MESSAGE = "torch.nn.functional.max_pool2d"
