"""The policy sees: a goal head that finds the commanded object, scenes as parameters,
perturbations, and pictures that project what the policy planned onto its camera image."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.models.encoders import ImageEncoderConfig, ObservationEncoderConfig
from flow_policy_node.models.policy import PolicyConfig
from flow_policy_node.models.velocity import VelocityNetConfig
from flow_policy_node.observation import (
    ACTION,
    ACTION_IS_PAD,
    GOAL,
    STATE,
    TASK_INDEX,
    Observation,
    image_key,
)
from flow_policy_node.tasks import CUBE_HALF
from flow_policy_node.train.augment import AugmentConfig
from flow_policy_node.train.loop import TrainConfig, train
from flow_policy_node.train.synthetic import JOINTS, stats_of

SIZE = 32
TASKS = ["pick up the red square", "pick up the blue square", "go to the point"]


def squares_image(red: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """(SIZE, SIZE, 3) uint8: grey background, a red and a blue 4x4 square at (x, y) in [-1, 1]."""
    img = np.full((SIZE, SIZE, 3), 200, np.uint8)
    for (x, y), colour in ((red, (220, 30, 30)), (blue, (30, 40, 220))):
        c, r = round((x + 1) / 2 * (SIZE - 5)), round((y + 1) / 2 * (SIZE - 5))
        img[r : r + 4, c : c + 4] = colour
    return img


class SquaresDataset(Dataset):
    """Task 0/1: the goal (the label) is where the red/blue square is; task 2 takes a given goal.

    The action chunk heads for the goal, so a policy must find the commanded square to act.
    """

    def __init__(self, n: int = 1024, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.horizon = 4
        self.red, self.blue = rng.uniform(-0.9, 0.9, (n, 2)), rng.uniform(-0.9, 0.9, (n, 2))
        self.task = rng.integers(0, 3, n)
        given = rng.uniform(-0.9, 0.9, (n, 2))
        xy = np.where(
            (self.task == 0)[:, None], self.red, np.where((self.task == 1)[:, None], self.blue, given)
        )
        self.goal = np.concatenate([xy, np.zeros((n, 1))], 1).astype(np.float32)
        self.action = np.repeat(np.pad(self.goal, ((0, 0), (0, 4)))[:, None], self.horizon, 1)
        stats = {ACTION: stats_of(self.action.reshape(-1, 7)), STATE: stats_of(np.zeros((2, 7)))}
        self.meta = DatasetMeta(tuple(JOINTS), ("front",), (SIZE, SIZE), 10.0, tuple(TASKS), stats)

    def __len__(self) -> int:
        return len(self.task)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = squares_image(self.red[i], self.blue[i])
        return {
            STATE: torch.zeros(7),
            GOAL: torch.from_numpy(self.goal[i]),
            TASK_INDEX: torch.tensor(int(self.task[i])),
            ACTION: torch.from_numpy(self.action[i].astype(np.float32)),
            ACTION_IS_PAD: torch.zeros(self.horizon, dtype=torch.bool),
            image_key("front"): torch.from_numpy(img).permute(2, 0, 1).float() / 255,
        }


def squares_config(steps: int = 600, augment: AugmentConfig | None = None) -> TrainConfig:
    encoder = ObservationEncoderConfig(
        cameras=("front",),
        token_dim=32,
        image=ImageEncoderConfig(width=8, out_dim=32, stem_stride=2, keypoints=8),
        image_goal_tasks=tuple(TASKS[:2]),
    )
    return TrainConfig(
        policy=PolicyConfig(
            kind="regression", horizon=4, encoder=encoder, velocity=VelocityNetConfig(hidden=128, depth=2)
        ),
        steps=steps,
        batch_size=64,
        lr=3e-3,
        warmup_steps=20,
        ema_decay=0.9,
        augment=augment or AugmentConfig(),
    )


@pytest.fixture(scope="module")
def squares_policy(tmp_path_factory):
    torch.manual_seed(0)
    return train(squares_config(), SquaresDataset(), tmp_path_factory.mktemp("squares")).eval()


def test_goal_head_finds_the_commanded_object_and_ignores_a_given_goal(squares_policy) -> None:
    rng = np.random.default_rng(7)
    errors, swapped = [], 0
    for _ in range(40):
        red, blue = rng.uniform(-0.8, 0.8, 2), rng.uniform(-0.8, 0.8, 2)
        if np.linalg.norm(red - blue) < 0.5:
            continue
        img = {"front": squares_image(red, blue)}
        decoy = np.array([0.5, -0.5, 0.0], np.float32)  # a given goal elsewhere: must be ignored
        found = {
            t: squares_policy.goal_point(Observation(np.zeros(7, np.float32), img, TASKS[t], decoy))[:2]
            for t in (0, 1)
        }
        errors += [np.linalg.norm(found[0] - red), np.linalg.norm(found[1] - blue)]
        swapped += np.linalg.norm(found[0] - blue) < np.linalg.norm(found[0] - red)
    assert np.median(errors) < 0.12, np.median(errors)  # squares are ~0.27 wide in these units
    assert swapped == 0
    # A task whose goal is an input uses the given point as it is.
    given = np.array([0.3, -0.2, 0.0], np.float32)
    obs = Observation(
        np.zeros(7, np.float32), {"front": squares_image(np.zeros(2), np.ones(2) * 0.5)}, TASKS[2], given
    )
    np.testing.assert_allclose(squares_policy.goal_point(obs), given)


def test_training_shifts_the_images_when_the_config_asks_for_it(tmp_path: Path) -> None:
    """Where the squares are in the frame is the whole target here: shifting every training
    image by up to 8 of its 32 pixels makes that position uncertain by about a quarter of the
    frame, so the same run with augmentation ends with a much larger training loss."""

    def final_loss(augment: AugmentConfig, name: str) -> float:
        torch.manual_seed(0)
        train(squares_config(300, augment), SquaresDataset(n=256), tmp_path / name)
        rows = np.loadtxt(tmp_path / name / "metrics.csv", delimiter=",", skiprows=1, usecols=1)
        return float(rows[-2:].mean())

    plain = final_loss(AugmentConfig(), "plain")
    shifted = final_loss(AugmentConfig(shift_px=8), "shifted")
    assert shifted > 2 * plain, (shifted, plain)


def test_goal_loss_only_where_a_label_exists() -> None:
    from flow_policy_node.models.encoders import ObservationEncoder

    cfg = ObservationEncoderConfig(
        n_tasks=3,
        cameras=("front",),
        token_dim=16,
        image=ImageEncoderConfig(width=8, out_dim=16),
        image_goal_tasks=(TASKS[0],),
    )
    enc = ObservationEncoder(cfg, TASKS)
    batch = {
        STATE: torch.zeros(2, 7),
        TASK_INDEX: torch.tensor([0, 2]),
        GOAL: torch.tensor([[0.0, 0.0, 0.0], [0.4, 0.1, 0.2]]),  # task 0 unlabelled (zeros)
        image_key("front"): torch.rand(2, 3, SIZE, SIZE),
    }
    _, _, goal = enc(batch)
    assert float(enc.goal_loss(batch, goal)) == 0.0  # the only labelled row takes its goal as an input
    batch[GOAL][0] = torch.tensor([0.4, 0.0, 0.02])
    assert float(enc.goal_loss(batch, goal)) > 0.0
    with pytest.raises(ValueError, match="not among the policy's tasks"):
        ObservationEncoder(replace(cfg, image_goal_tasks=("fly",)), TASKS)
    with pytest.raises(ValueError, match="needs image_goal_tasks"):
        ObservationEncoder(replace(cfg, image_goal_tasks=(), image_tokens=False), TASKS)


def test_scene_is_a_parameter_and_perturbations_change_what_the_camera_sees() -> None:
    from flow_policy_node.sim.env import ArmEnv, SimConfig
    from flow_policy_node.sim.perturb import PERTURBATIONS

    frames = {}
    for name, scene in PERTURBATIONS.items():
        env = ArmEnv(SimConfig(cameras=("front",), scene=scene))
        env.reset("pick_red", 3)
        frames[name] = env.render("front").astype(int)
        if name == "cube_size":
            for _ in range(20):
                env.advance(0.01)
            assert env.cube_position("red")[2] == pytest.approx(0.022, abs=1e-3)  # rests on the table
        env.close()
    for name, frame in frames.items():
        if name != "none":
            assert np.abs(frame - frames["none"]).mean() > 0.05, name
    # Randomised scenes: the same seed looks the same, another seed differently.
    env = ArmEnv(SimConfig(cameras=("front",), randomize_scene=1.0))
    a = (env.reset("pick_red", 5), env.scene)[1]
    b = (env.reset("pick_red", 6), env.scene)[1]
    c = (env.reset("pick_red", 5), env.scene)[1]
    # The cube starts on the table at its own (randomised) size, not the default's.
    assert env.cube_position("red")[2] == pytest.approx(CUBE_HALF * c.cube_scale)
    env.close()
    assert a == c and a != b and c.cube_scale != 1.0


def test_standardised_keypoints_do_not_follow_the_image_contrast() -> None:
    """Dim light lowers a feature map's contrast: a plain spatial softmax then spreads out and
    its keypoint slides toward the image centre; a standardised one stays on the peak."""
    from flow_policy_node.models.encoders import SpatialSoftmax

    x = torch.zeros(1, 1, 24, 24)
    x[0, 0, 4, 18] = 6.0  # one bright feature near the top-right corner
    plain, standard = SpatialSoftmax(), SpatialSoftmax(standardize=True)
    with torch.no_grad():
        for pool in (plain, standard):
            pool.log_temperature.fill_(-1.0)
        dim = 0.3 * x + 0.5
        assert torch.allclose(standard(dim), standard(x), atol=1e-4)
        assert (plain(dim) - plain(x)).abs().max() > 0.2
        assert standard(x)[0, 0] > 0.4 and standard(x)[0, 1] < -0.4  # at the feature


def test_expert_demos_are_collected_in_the_scenes_asked_for() -> None:
    """A perturbed or randomised SimConfig reaches the demos' frames (it once fell back to
    the default scene, so a "randomised" training set was the nominal one)."""
    from flow_policy_node.sim.demos import ExpertDemos
    from flow_policy_node.sim.env import SimConfig
    from flow_policy_node.sim.perturb import PERTURBATIONS

    def first_frame(sim: SimConfig) -> np.ndarray:
        data = ExpertDemos(("pick_red",), 1, 4, cameras=("front",), sim=sim, progress=False)
        return data.frames[image_key("front")][0].astype(int)

    nominal = first_frame(SimConfig())
    assert np.abs(first_frame(SimConfig(scene=PERTURBATIONS["dim_light"])) - nominal).mean() > 5
    assert np.abs(first_frame(SimConfig(randomize_scene=1.0)) - nominal).mean() > 1
    assert np.array_equal(first_frame(SimConfig()), nominal)


def test_randomised_distractors_vary_in_colour_and_place_but_never_look_like_a_cube() -> None:
    import colorsys

    from flow_policy_node.sim.scene import Scene, apply_scene, build_model
    from flow_policy_node.tasks import CUBE_AREA, CUBE_COLOURS

    rng = np.random.default_rng(0)
    scenes = [Scene().randomized(rng) for _ in range(200)]
    assert 0.3 < np.mean([s.distractor for s in scenes]) < 0.7
    assert len({s.distractor_rgb for s in scenes}) == 200 and len({s.distractor_xy for s in scenes}) == 200
    cube_hues = [colorsys.rgb_to_hsv(*c[:3])[0] for c in CUBE_COLOURS.values()]
    (x0, y0), (x1, y1) = CUBE_AREA
    for s in scenes:
        h, sat, _ = colorsys.rgb_to_hsv(*s.distractor_rgb)
        assert sat == 0 or min(min(abs(h - c), 1 - abs(h - c)) for c in cube_hues) > 25 / 360
        x, y = s.distractor_xy
        assert not (x0 - 0.04 < x < x1 + 0.04 and y0 - 0.04 < y < y1 + 0.04)
    model = build_model()
    shown = next(s for s in scenes if s.distractor)
    apply_scene(model, shown)
    assert np.allclose(model.geom("distractor_geom").rgba[:3], shown.distractor_rgb)
    assert np.allclose(model.body("distractor").pos[:2], shown.distractor_xy)

    # SimConfig.distractors: only the distractor changes between episodes, drawn from the seed.
    from flow_policy_node.sim.env import ArmEnv, SimConfig

    env = ArmEnv(SimConfig(cameras=(), render=False, distractors=1.0))
    looks = [(env.reset("pick_red", seed), env.scene)[1] for seed in (1, 2, 1)]
    env.close()
    assert all(s.distractor for s in looks) and looks[0] == looks[2] != looks[1]
    assert {replace(s, distractor=False, distractor_rgb=(0, 0, 0), distractor_xy=(0, 0)) for s in looks} == {
        replace(Scene(), distractor_rgb=(0, 0, 0), distractor_xy=(0, 0))
    }


def test_pictures_project_world_points_onto_the_camera_image() -> None:
    from flow_policy_node.sim.env import ArmEnv, SimConfig
    from flow_policy_node.sim.pictures import project

    env = ArmEnv(SimConfig(cameras=("front",)))
    env.reset("pick_red", 11)
    img = env.render("front", (192, 192)).astype(int)
    for colour, channel in (("red", 0), ("green", 1), ("blue", 2)):
        ((x, y),) = project(env, "front", env.cube_position(colour)[None], (192, 192))
        pixel = img[round(y), round(x)]
        assert pixel[channel] == pixel.max() and pixel[channel] - np.sort(pixel)[1] > 40, (colour, pixel)
    env.close()


def test_eval_refuses_an_unknown_perturbation(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "flow-policy"), "eval", str(tmp_path), "--perturb", "fog"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "fog" in result.stderr and "camera_moved" in result.stderr


def torchvision_resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision.models.resnet18().state_dict(), written out independently."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    cin = 64
    for i, c in enumerate((64, 128, 256, 512), 1):
        for j in range(2):
            p = f"layer{i}.{j}"
            shapes[f"{p}.conv1.weight"] = (c, cin if j == 0 else c, 3, 3)
            bn(f"{p}.bn1", c)
            shapes[f"{p}.conv2.weight"] = (c, c, 3, 3)
            bn(f"{p}.bn2", c)
            if j == 0 and i > 1:
                shapes[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                bn(f"{p}.downsample.1", c)
        cin = c
    shapes["fc.weight"], shapes["fc.bias"] = (1000, 512), (1000,)
    return shapes


def write_resnet18(path: Path, **changed_shapes: tuple[int, ...]) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = {**torchvision_resnet18_shapes(), **changed_shapes}
    tensors = {
        k: (
            torch.zeros(s, dtype=torch.int64) if k.endswith("tracked") else torch.rand(s, generator=gen) + 0.5
        )
        for k, s in shapes.items()
    }
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return tensors


def test_image_encoder_starts_from_a_torchvision_resnet18_file(tmp_path: Path) -> None:
    from flow_policy_node.models.encoders import ImageEncoder

    path = tmp_path / "resnet18.safetensors"
    weights = write_resnet18(path)
    enc = ImageEncoder(ImageEncoderConfig(backbone="resnet18", pretrained=str(path), out_dim=32), cond_dim=16)
    enc.load_pretrained()
    torch.testing.assert_close(enc.resnet.conv1.weight.data, weights["conv1.weight"])
    torch.testing.assert_close(
        enc.resnet.layer3[0].downsample[1].running_var, weights["layer3.0.downsample.1.running_var"]
    )
    assert enc(torch.rand(2, 3, 96, 96), torch.zeros(2, 16)).shape == (2, 32)

    # Training starts from the file: after one small step conv1 is still (nearly) the file's.
    encoder = ObservationEncoderConfig(
        cameras=("front",),
        token_dim=32,
        image=ImageEncoderConfig(backbone="resnet18", pretrained=str(path), out_dim=32, keypoints=8),
        image_goal_tasks=tuple(TASKS[:2]),
    )
    cfg = TrainConfig(
        policy=PolicyConfig(
            kind="regression", horizon=4, encoder=encoder, velocity=VelocityNetConfig(hidden=64)
        ),
        steps=1,
        batch_size=8,
        lr=1e-6,
        warmup_steps=1,
    )
    policy = train(cfg, SquaresDataset(n=16), tmp_path / "ckpt")
    conv1 = policy.encoder.images["front"].resnet.conv1.weight.data
    torch.testing.assert_close(conv1, weights["conv1.weight"], atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_resnet18(p, **{"layer2.0.conv1.weight": (128, 32, 3, 3)}), "another shape"),
        (lambda p: p.write_bytes(b"not a safetensors file"), "not a readable safetensors"),
    ],
)
def test_a_pretrained_file_that_does_not_match_is_refused_saying_why(tmp_path: Path, make, message) -> None:
    from flow_policy_node.models.encoders import ImageEncoder

    path = tmp_path / "weights.safetensors"
    make(path)
    enc = ImageEncoder(ImageEncoderConfig(backbone="resnet18", pretrained=str(path)))
    with pytest.raises(ValueError, match=message):
        enc.load_pretrained()
    from safetensors.torch import save_file

    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, str(path))  # a fragment: the rest is missing
    with pytest.raises(ValueError, match="missing"):
        enc.load_pretrained()
    with pytest.raises(FileNotFoundError):
        ImageEncoder(
            ImageEncoderConfig(backbone="resnet18", pretrained=str(tmp_path / "none"))
        ).load_pretrained()
