"""End-to-end cases of ch06_inception (read by tests/test_exercises_graded.py).

Graded cells: test_inception_mult_adds 1, test_inception_module 3, test_googlenet_loss 2, test_train_step 3
(9 autograded); answer_inception 2 (manual).
"""

# A training step that never clears the gradients: right for the visible single step, wrong from the second
# step of the hidden runs on (the gradients of earlier steps pile up).
WRONG = {
    "train_step": '''
def train_step(model, optimizer, images, labels):
    model.train()
    loss = googlenet_loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
''',
}
WRONG_LOSES = 3

# The package's inception block under the exercise's name: right names and values, but forbidden.
FORBIDDEN = {
    "inception_module": '''
from cnnbook.layers import InceptionModule


class Inception(InceptionModule):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, branch3_kernel=5)
''',
}
FORBIDDEN_LOSES = 3
FORBIDDEN_MESSAGE = "cnnbook.layers"
