"""End-to-end cases of ch09_densenet_se (read by tests/test_exercises_graded.py).

Graded cells: test_dense_block 3, test_se_forward 2, test_se_backward 3 (8 autograded); answer_dense 1 (manual).
"""

# The squeeze path of du is left out (the channel weights treated as constants): dw1, db1, dw2, db2 are right,
# du is not.
WRONG = {
    "se_backward": '''
def se_backward(dout, u, w1, b1, w2, b2):
    z = u.mean(dim=(2, 3))
    a1 = z @ w1.T + b1
    r = torch.relu(a1)
    s = torch.sigmoid(r @ w2.T + b2)
    ds = (dout * u).sum(dim=(2, 3))
    da2 = ds * s * (1 - s)
    dw2, db2 = da2.T @ r, da2.sum(dim=0)
    da1 = (da2 @ w2) * (a1 > 0)
    dw1, db1 = da1.T @ z, da1.sum(dim=0)
    du = dout * s[:, :, None, None]
    return du, dw1, db1, dw2, db2
''',
}
WRONG_LOSES = 3

# Autograd does the work: right values, but the exercise forbids it.
FORBIDDEN = {
    "se_backward": '''
def se_backward(dout, u, w1, b1, w2, b2):
    inputs = [t.detach().requires_grad_() for t in (u, w1, b1, w2, b2)]
    with torch.enable_grad():
        out = se_forward(*inputs)
        return tuple(torch.autograd.grad(out, inputs, dout))
''',
}
FORBIDDEN_LOSES = 3
FORBIDDEN_MESSAGE = "torch.autograd"
