"""End-to-end cases of ch02_lenet (read by tests/test_exercises_graded.py).

Graded cells: test_conv_output_size 2, test_lenet 3, test_experiment 3
(8 autograded); answer_flat_features 1 (manual).
"""

# The training loop never zeroes the gradients: each step follows the sum of every gradient so far. The network
# still trains a little, but ends far under the band (0.36 test accuracy when the exercise was written).
WRONG = {
    "train": '''
def train(model, images, labels, epochs, batch_size, lr, generator):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator, device=images.device)
        total = 0.0
        for start in range(0, len(images), batch_size):
            batch = order[start:start + batch_size]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(images))
    return losses
''',
}
WRONG_LOSES = 3

# The package's shape calculator: right sizes, but cnnbook.calc is forbidden.
FORBIDDEN = {
    "conv_output_size": '''
from cnnbook.calc.shapes import conv_output_size as _package_rule


def conv_output_size(size, kernel_size, stride=1, padding=0):
    return _package_rule(size, kernel_size, stride, padding)
''',
}
FORBIDDEN_LOSES = 2
FORBIDDEN_MESSAGE = "cnnbook.calc"
