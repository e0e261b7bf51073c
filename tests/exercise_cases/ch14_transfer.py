"""End-to-end cases of ch14_transfer (read by tests/test_exercises_graded.py).

Graded cells: test_prepare_for_fine_tuning 2, test_param_groups 2, test_fine_tune 4 (8 autograded);
answer_transfer 1 (manual).
"""

# The step never resets the gradients: the first step is right, the later ones add up stale gradients.
WRONG = {
    "train_step": '''
def train_step(model, optimizer, images, labels):
    model.train()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
''',
}
WRONG_LOSES = 4

# The package's loss helper computes the same cross-entropy, but cnnbook.train is forbidden.
FORBIDDEN = {
    "train_step": '''
from cnnbook.train import aux_loss

def train_step(model, optimizer, images, labels):
    model.train()
    optimizer.zero_grad()
    loss = aux_loss(0.3)(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
''',
}
FORBIDDEN_LOSES = 4
FORBIDDEN_MESSAGE = "cnnbook.train"
