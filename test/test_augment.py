"""Training-time image augmentation: shifts move content, jitter keeps colours, config round-trips."""

from __future__ import annotations

import torch

from flow_policy_node.observation import STATE, image_key
from flow_policy_node.train.augment import AugmentConfig, augment, colour_jitter, random_shift
from flow_policy_node.train.loop import TrainConfig


def dot_images(b: int, h: int = 24, w: int = 24) -> torch.Tensor:
    """(b, 3, h, w): black, one white pixel in the middle."""
    img = torch.zeros(b, 3, h, w)
    img[:, :, h // 2, w // 2] = 1.0
    return img


def test_a_shift_moves_each_image_by_its_own_offset_within_the_pad() -> None:
    img = dot_images(64)
    out = random_shift(img, 3, torch.Generator().manual_seed(0))
    assert out.shape == img.shape
    offsets = set()
    for i in range(len(out)):
        (y, x), *rest = (out[i, 0] == 1).nonzero().tolist()
        assert not rest, "the dot is moved, not copied"
        dy, dx = y - 12, x - 12
        assert abs(dy) <= 3 and abs(dx) <= 3
        offsets.add((dy, dx))
        assert out[i].sum() == img[i].sum(), "nothing but the dot is lit"
    assert len(offsets) > 10, "images are shifted independently"


def test_the_shift_repeats_the_border_into_the_gap() -> None:
    img = torch.full((8, 3, 10, 10), 0.5)
    out = random_shift(img, 2, torch.Generator().manual_seed(1))
    # whatever the shift, the image stays grey: the border repeats, no black (zero padding) enters
    assert torch.all(out == 0.5)


def test_jitter_changes_brightness_and_contrast_but_not_hue() -> None:
    g = torch.Generator().manual_seed(2)
    img = torch.rand(32, 3, 8, 8, generator=g) * 0.4 + 0.1
    img[:, 0] *= 1.5  # reddish, and below 1 / 1.3 so that no channel clips
    out = colour_jitter(img, brightness=0.3, contrast=0.0, generator=g)
    assert out.min() >= 0 and out.max() <= 1
    means = out.mean(dim=(1, 2, 3)) / img.mean(dim=(1, 2, 3))
    assert means.min() < 0.9 and means.max() > 1.1 and torch.all((means > 0.69) & (means < 1.31))
    # a pure brightness change scales every channel alike: the colour's direction stays
    ratio_in = img[:, 0].mean((1, 2)) / img[:, 2].mean((1, 2))
    ratio_out = out[:, 0].mean((1, 2)) / out[:, 2].mean((1, 2))
    assert torch.allclose(ratio_in, ratio_out, rtol=1e-4)
    spread = colour_jitter(img, 0.0, 0.4, generator=g).std(dim=(1, 2, 3)) / img.std(dim=(1, 2, 3))
    assert spread.min() < 0.9 and spread.max() > 1.1


def test_augment_touches_only_images_and_leaves_the_batch_as_it_was() -> None:
    img = dot_images(4)
    batch = {image_key("front"): img, STATE: torch.ones(4, 7)}
    before = img.clone()
    out = augment(batch, AugmentConfig(shift_px=4, brightness=0.2, contrast=0.2))
    assert out[STATE] is batch[STATE]
    assert torch.equal(batch[image_key("front")], before)
    assert not torch.equal(out[image_key("front")], before)
    assert augment(batch, AugmentConfig()) is batch


def test_a_training_config_file_sets_the_augmentation() -> None:
    cfg = TrainConfig.from_dict({"augment": {"shift_px": 4, "brightness": 0.25}})
    assert cfg.augment == AugmentConfig(shift_px=4, brightness=0.25)
    assert TrainConfig.from_dict({}).augment == AugmentConfig()
