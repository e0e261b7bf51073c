"""End-to-end cases of ch13_nas (read by tests/test_exercises_graded.py).

Graded cells: test_mixed_op 2, test_darts_round 4, test_derive_architecture 2 (8 autograded); answer_nas 1 (manual).
"""

# The weights are updated before the architecture: the first architecture step already sees the updated
# weights, so alpha, the losses and the weights all differ from round one.
WRONG = {
    "darts_round": '''
def darts_round(net, alpha, w_optimizer, alpha_optimizer, train_batch, val_batch):
    net.train()
    images, labels = train_batch
    w_optimizer.zero_grad()
    train_loss = F.cross_entropy(net(images, torch.softmax(alpha, 0).detach()), labels)
    train_loss.backward()
    w_optimizer.step()
    images, labels = val_batch
    alpha_optimizer.zero_grad()
    val_loss = F.cross_entropy(net(images, torch.softmax(alpha, 0)), labels)
    val_loss.backward()
    alpha_optimizer.step()
    return val_loss.item(), train_loss.item()
''',
}
WRONG_LOSES = 4

# The package's DARTS edge, under the exercise's name.
FORBIDDEN = {
    "mixed_op": '''
from cnnbook.nas.darts import MixedOp as PackageMixedOp


class MixedOp(PackageMixedOp):
    pass
''',
}
FORBIDDEN_LOSES = 2
FORBIDDEN_MESSAGE = "cnnbook.nas.darts"
