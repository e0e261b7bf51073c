"""End-to-end cases of ch05_vgg (read by tests/test_exercises_graded.py).

Graded cells: test_receptive_field 2, test_vgg_parameters 2, test_vgg_features 2, test_sgd_update 3 (9 autograded);
answer_vgg 1 (manual).
"""

# Decoupled weight decay (AdamW's way, not the paper's L2 penalty): the decay skips the velocity, so with
# momentum the weights and the velocity both differ from torch.optim.SGD's.
WRONG = {
    "sgd_update": '''
def sgd_update(weight, grad, velocity, lr, momentum, weight_decay):
    new_velocity = momentum * velocity + grad
    return weight - lr * new_velocity - lr * weight_decay * weight, new_velocity
''',
}
WRONG_LOSES = 3

# The package's own builder: right layers and values, but cnnbook.models is forbidden.
FORBIDDEN = {
    "vgg_features": '''
from cnnbook.models.vgg import make_layers


def vgg_features(cfg, in_channels=3, batch_norm=False):
    return make_layers(cfg, batch_norm=batch_norm, in_channels=in_channels)
''',
}
FORBIDDEN_LOSES = 2
FORBIDDEN_MESSAGE = "cnnbook.models"
