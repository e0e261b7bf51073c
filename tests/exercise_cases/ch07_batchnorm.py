"""End-to-end cases of ch07_batchnorm (read by tests/test_exercises_graded.py).

Graded cells: test_batchnorm_train 2, test_batchnorm_eval 1, test_batchnorm_backward 4, test_batchnorm_module 2
(9 autograded); answer_batchnorm 2 (manual).
"""

# The backward pass that forgets the paths through the batch mean and variance: dgamma and dbeta are right,
# dx is what it would be if the statistics were constants.
WRONG = {
    "batchnorm_backward": '''
def batchnorm_backward(dout, x, gamma, beta, eps=1e-5):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    mean = x.mean(dim=dims, keepdim=True)
    inv_std = 1.0 / torch.sqrt(((x - mean) ** 2).mean(dim=dims, keepdim=True) + eps)
    x_hat = (x - mean) * inv_std
    return dout * gamma.reshape(shape) * inv_std, (dout * x_hat).sum(dim=dims), dout.sum(dim=dims)
''',
}
WRONG_LOSES = 4

# Autograd through PyTorch's batch_norm: right values, but the exercise forbids both.
FORBIDDEN = {
    "batchnorm_backward": '''
def batchnorm_backward(dout, x, gamma, beta, eps=1e-5):
    with torch.enable_grad():
        x, gamma, beta = (t.detach().requires_grad_() for t in (x, gamma, beta))
        y = torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
        return torch.autograd.grad(y, (x, gamma, beta), dout)
''',
}
FORBIDDEN_LOSES = 4
FORBIDDEN_MESSAGE = "torch.autograd"
