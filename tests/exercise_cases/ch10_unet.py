"""End-to-end cases of ch10_unet (read by tests/test_exercises_graded.py).

Graded cells: test_center_crop 1, test_up_stage 3, test_weighted_pixel_loss 2, test_segmentation_step 3
(9 autograded); answer_unet 1 (manual).
"""

# Divides by the number of pixels instead of the weights' sum: right for a constant weight map of ones, wrong
# for every other map. The training step uses this loss too, so both blocks lose their points.
WRONG = {
    "weighted_pixel_loss": '''
def weighted_pixel_loss(logits, masks, weight_map):
    log_probs = torch.log_softmax(logits, dim=1)
    true = log_probs.gather(1, masks.unsqueeze(1)).squeeze(1)
    return -(weight_map * true).mean()
''',
}
WRONG_LOSES = 5

# The built-in cross-entropy, which the prompt forbids in this part.
FORBIDDEN = {
    "weighted_pixel_loss": '''
def weighted_pixel_loss(logits, masks, weight_map):
    terms = F.cross_entropy(logits, masks, reduction="none")
    return (weight_map * terms).sum() / weight_map.sum()
''',
}
FORBIDDEN_LOSES = 2
FORBIDDEN_MESSAGE = "torch.nn.functional.cross_entropy"
