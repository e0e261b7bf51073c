"""End-to-end cases of ch12_augmentation (read by tests/test_exercises_graded.py).

Graded cells: test_crop_flip 3, test_cutout 2, test_experiment 2 (7 autograded); answer_experiment 1 and
answer_augmentation 1 (manual).
"""

# The hole is anchored at its top-left corner instead of centred on (rows[i], cols[i]).
WRONG = {
    "cutout": '''
def cutout(images, size, rows, cols):
    n, _, h, w = images.shape
    r, c = torch.arange(h, device=images.device), torch.arange(w, device=images.device)
    in_rows = (r >= rows.view(n, 1)) & (r < rows.view(n, 1) + size)
    in_cols = (c >= cols.view(n, 1)) & (c < cols.view(n, 1) + size)
    return images.masked_fill(in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w), 0.0)
''',
}
WRONG_LOSES = 2

# torchvision's transforms, one image at a time: right values, but torchvision is forbidden.
FORBIDDEN = {
    "crop_flip": '''
from torchvision.transforms.v2 import functional as TF


def crop_flip(images, padding, flips, tops, lefts):
    h, w = images.shape[-2:]
    return torch.stack([TF.crop(TF.pad(TF.hflip(img) if f else img, [padding]), int(t), int(l), h, w)
                        for img, f, t, l in zip(images, flips, tops, lefts)])
''',
}
FORBIDDEN_LOSES = 3
FORBIDDEN_MESSAGE = "torchvision"
