"""`flow-policy convert`: rosbag2 episodes -> LeRobotDataset v3 (no rclpy).

Each bag is read (:mod:`~flow_policy_node.data.bags`), put on the frame grid with its
commanded actions and checked (:mod:`~flow_policy_node.data.resample`), and written
(:class:`~flow_policy_node.data.lerobot.LeRobotWriter`). A bag that cannot be converted
is skipped with the reason in its report; the reports go to meta/conversion_report.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from flow_policy_node.data import lerobot
from flow_policy_node.data.bags import ConversionError, EpisodeSkipped, find_bags, read_episode
from flow_policy_node.data.resample import EpisodeReport, ResampleConfig, resample
from flow_policy_node.images import resize_rgb
from flow_policy_node.observation import ACTION, GOAL, STATE, image_key


@dataclass
class ConvertConfig(ResampleConfig):
    """The topics (:class:`~flow_policy_node.data.bags.BagTopics`), the grid
    (:class:`~flow_policy_node.data.resample.ResampleConfig`) and the output files."""

    image_size: tuple[int, int] | None = None  # (h, w); None keeps the recorded size
    # A data / video file takes episodes until it is this large (LeRobot's defaults).
    data_files_size_in_mb: float = lerobot.DATA_FILE_MB
    video_files_size_in_mb: float = lerobot.VIDEO_FILE_MB


def convert(
    bags: list[Path], out: Path, cfg: ConvertConfig | None = None, progress: bool = True
) -> list[EpisodeReport]:
    """Convert ``bags`` into a LeRobot v3 dataset at ``out``; returns one report per bag."""
    cfg = cfg or ConvertConfig()
    bags = find_bags(bags)
    out = Path(out)
    try:
        writer = lerobot.LeRobotWriter.create(
            out,
            {STATE: list(cfg.joint_names), ACTION: list(cfg.joint_names), GOAL: ["x", "y", "z"]},
            [image_key(cam) for cam in cfg.cameras],
            lerobot.WriterConfig(
                fps=cfg.fps,
                data_files_size_in_mb=cfg.data_files_size_in_mb,
                video_files_size_in_mb=cfg.video_files_size_in_mb,
            ),
        )
    except (FileExistsError, ValueError) as exc:  # a directory in use, an fps LeRobot cannot store
        raise ConversionError(str(exc)) from exc
    reports: list[EpisodeReport] = []
    sizes: dict[str, tuple[int, int]] = {}
    for bag in tqdm(bags, desc="convert", unit="episode", disable=not progress):
        report = EpisodeReport(str(bag))
        reports.append(report)
        try:
            ep = resample(read_episode(bag, cfg), cfg, report)
            frames = {cam: [raw.rgb() for raw in raws] for cam, raws in ep.images.items()}
        except EpisodeSkipped as exc:
            report.skipped = str(exc)
            tqdm.write(f"skipped {bag}: {exc}")
            continue
        videos = {}
        for cam, imgs in frames.items():
            # One size per camera: the configured one, else the first episode's.
            size = sizes.setdefault(cam, tuple(cfg.image_size or imgs[0].shape[:2]))
            videos[image_key(cam)] = [i if i.shape[:2] == size else resize_rgb(i, size) for i in imgs]
        vectors = {STATE: ep.state, ACTION: ep.action, GOAL: ep.goal}
        writer.add_episode(vectors, videos, ep.task, {"success": report.success})
    if not writer.episodes:
        writer.discard()
        reasons = "; ".join(f"{Path(r.bag).name}: {r.skipped}" for r in reports)
        raise ConversionError(f"no episode could be converted ({reasons})")
    writer.finalize()
    (out / "meta" / "conversion_report.json").write_text(json.dumps([asdict(r) for r in reports], indent=2))
    return reports
