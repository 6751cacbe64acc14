"""Training on a dataset 4x larger than the memory the training process may use.

    python benchmarks/streaming.py   # writes benchmarks/results/streaming.json (~15 min on 2 cores)

Writes a LeRobot v3 dataset with LeRobotWriter (2 cameras at 224x224, H.264 mp4, 100-frame
episodes of moving coloured blocks on a textured table) whose decoded frames are at least 4x
``MEMORY_CAP_MB``, then trains the same flow policy on it, each run a process of its own:

  build           decodes the videos into the frame cache (``--frames disk``), under the cap
  in_ram          frames decoded into memory (``--frames memory``), no cap: the baseline
  streaming       frames read from the cache per sample (``--frames disk``), under the cap
  streaming_cold  the same, with the cache files dropped from the page cache every 20 ms
                  (posix_fadvise DONTNEED), so that reads go to the disk, as they do when the
                  dataset is larger than the machine's RAM, not only the process's cap
  memmap          the same cache read through ``np.load(mmap_mode=...)`` instead of pread,
                  watched but not capped: what a mapping does to RSS

in_ram and streaming run three times each, in the order ABBAAB, so that a drift in the
machine's load hits both alike; the rates are medians, and each neighbouring pair gives a
ratio of its own. Each run also times 2000 single samples before training (the data path
alone) and counts its CPU seconds per step, which other processes' load barely moves.
The cap is enforced by a watchdog that samples the resident memory (VmRSS) of the training
process and its children every 20 ms and kills it above the cap; the peak reported is the
larger of the watchdog's and the kernel's own high-water mark (VmHWM, read by the process as
it ends). ``resource.setrlimit(RLIMIT_AS)`` cannot stand in: torch reserves far more address
space than it touches. A run over the cap fails the benchmark. The dataset and its cache
(~3.4 GB) are deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from flow_policy_node.data import lerobot
from flow_policy_node.observation import ACTION, GOAL, STATE, image_key

RESULTS = Path(__file__).parent / "results"
MEMORY_CAP_MB = 800
SIZE = (224, 224)
CAMERAS = ("front", "wrist")
EPISODE_FRAMES = 100
JOINTS = [f"joint{i}" for i in range(1, 7)] + ["gripper"]
# Training: the demo's flow policy at 224x224; batch 16 is what fits the cap beside torch.
BATCH, STEPS, LOG_EVERY, THREADS = 16, 200, 25, 2
MODES = ("build", "in_ram", "streaming", "streaming_cold", "memmap")
# in RAM and streaming three times each, ABBAAB: a drift in load hits both alike, and each
# round's ratio compares neighbours in time.
ROUNDS = ("in_ram", "streaming", "streaming", "in_ram", "in_ram", "streaming")
SAMPLES = 2000  # samples read one by one, before training, to time the data path alone
FRAME_MB = SIZE[0] * SIZE[1] * 3 / 2**20


def episode_frames(rng: np.random.Generator) -> list[np.ndarray]:
    """A camera's view of one episode: blocks sliding over a smooth, textured table."""
    table = cv2.resize(rng.integers(30, 220, (7, 7, 3), dtype=np.uint8), SIZE, interpolation=cv2.INTER_CUBIC)
    start = rng.uniform(20, 200, (4, 2))
    velocity = rng.uniform(-1.5, 1.5, (4, 2))
    colours = rng.integers(0, 256, (4, 3))
    frames = []
    for k in range(EPISODE_FRAMES):
        img = table.copy()
        for p, c in zip(start + k * velocity, colours, strict=True):
            x, y = np.clip(p, 0, SIZE[1] - 20).astype(int)
            cv2.rectangle(img, (int(x), int(y)), (int(x) + 18, int(y) + 18), c.tolist(), -1)
        tip = (start[0] + k * velocity[0]).astype(int)
        cv2.line(img, (SIZE[1] // 2, SIZE[0] - 1), (int(tip[0]), int(tip[1])), (90, 90, 90), 10)
        frames.append(img)
    return frames


def make_dataset(root: Path, episodes: int) -> None:
    writer = lerobot.LeRobotWriter.create(
        root,
        {STATE: JOINTS, ACTION: JOINTS, GOAL: ["x", "y", "z"]},
        [image_key(c) for c in CAMERAS],
        lerobot.WriterConfig(fps=10),
    )
    for e in tqdm(range(episodes), desc="write dataset", unit="episode"):
        rng = np.random.default_rng(e)
        state = np.cumsum(rng.normal(0, 0.02, (EPISODE_FRAMES, len(JOINTS))), axis=0).astype(np.float32)
        action = np.concatenate([state[1:], state[-1:]])
        goal = np.repeat(rng.uniform(-0.2, 0.5, (1, 3)), EPISODE_FRAMES, 0).astype(np.float32)
        frames = {image_key(c): episode_frames(rng) for c in CAMERAS}
        writer.add_episode({STATE: state, ACTION: action, GOAL: goal}, frames, "pick up the red cube")
    writer.finalize()


def dir_mb(path: Path, pattern: str) -> float:
    return sum(p.stat().st_size for p in path.rglob(pattern)) / 2**20


# --- the training process ---------------------------------------------------------------------


def child(mode: str, dataset: Path, out: Path, result: Path) -> None:
    from flow_policy_node.data.dataset import ChunkDataset
    from flow_policy_node.data.frames import FrameCacheConfig
    from flow_policy_node.train.loop import TrainConfig, train

    cfg = TrainConfig(
        steps=0 if mode == "build" else STEPS,
        batch_size=BATCH,
        log_every=LOG_EVERY,
        threads=THREADS,
        frames=FrameCacheConfig(store="memory" if mode == "in_ram" else "disk"),
    )
    t = time.perf_counter()
    ds = ChunkDataset(dataset, horizon=cfg.policy.horizon, frames=cfg.frames)
    open_s = time.perf_counter() - t
    if mode == "memmap":
        ds.frames = {k: np.load(cache.path, mmap_mode="c") for k, cache in ds.frames.items()}
    report = {"open_s": open_s}
    if cfg.steps:
        # The data path alone, sample by sample: its difference is what streaming costs.
        picks = np.random.default_rng(0).integers(0, len(ds), SAMPLES)
        t = time.perf_counter()
        for i in picks:
            ds[int(i)]
        report["sample_us"] = 1e6 * (time.perf_counter() - t) / SAMPLES
        cpu = _cpu_s()
        train(cfg, ds, out)
        report["cpu_ms_per_step"] = 1e3 * (_cpu_s() - cpu) / cfg.steps
        with open(out / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        # From the first log on: the first steps warm up allocators and caches.
        first, last = rows[0], rows[-1]
        report["steps_per_s"] = (int(last["step"]) - int(first["step"])) / (
            float(last["seconds"]) - float(first["seconds"])
        )
    report["vm_hwm_mb"] = _status_mb(os.getpid(), "VmHWM")
    result.write_text(json.dumps(report))


def _cpu_s() -> float:
    """CPU seconds of this process, all threads: unlike wall time, barely moved by other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the watchdog -------------------------------------------------------------------------------


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:  # gone meanwhile
        pass
    return 0.0


def _tree(pid: int) -> list[int]:
    """pid and its descendants (DataLoader workers would be children)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*"):
            with contextlib.suppress(OSError):  # exited meanwhile
                pids += [int(c) for c in (task / "children").read_text().split()]
        i += 1
    return pids


def run(mode: str, dataset: Path, work: Path, cap_mb: float | None, evict: list[Path] = ()) -> dict:
    """One training process under the watchdog; ``cap_mb`` None: watched, not capped.
    ``evict``: files dropped from the page cache every 20 ms, so that reads go to the disk."""
    result = work / f"{mode}.json"
    result.unlink(missing_ok=True)
    out = work / f"ckpt-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", mode, "--dataset", str(dataset)]
    cmd += ["--out", str(out), "--result", str(result)]
    proc = subprocess.Popen(cmd, start_new_session=True)
    peak, over = 0.0, False
    fds = [os.open(p, os.O_RDONLY) for p in evict]
    try:
        while proc.poll() is None:
            for fd in fds:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            rss = sum(_status_mb(p, "VmRSS") for p in _tree(proc.pid))
            peak = max(peak, rss)
            if cap_mb is not None and rss > cap_mb:
                over = True
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        for fd in fds:
            os.close(fd)
        if proc.poll() is None and not over:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    shutil.rmtree(out, ignore_errors=True)
    if over:
        print(f"{mode}: killed at {peak:.0f} MB, over the {cap_mb} MB cap")
        return {"mode": mode, "peak_rss_mb": peak, "over_cap": True}
    if proc.returncode != 0:
        raise SystemExit(f"{mode}: the training process exited with {proc.returncode}")
    report = json.loads(result.read_text())
    report.update(mode=mode, peak_rss_mb=max(peak, report["vm_hwm_mb"]), over_cap=False)
    print(f"{mode}: " + ", ".join(f"{k} {v:.2f}" for k, v in report.items() if isinstance(v, float)))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, help="where the dataset goes (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the dataset and its cache")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dataset, args.out, args.result)
        return

    work = Path(args.work or tempfile.mkdtemp(prefix="flow_policy_streaming_"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = work / "dataset"
    episodes = math.ceil(4.05 * MEMORY_CAP_MB / (EPISODE_FRAMES * len(CAMERAS) * FRAME_MB))
    try:
        if not (dataset / lerobot.INFO_PATH).is_file():
            shutil.rmtree(dataset, ignore_errors=True)
            make_dataset(dataset, episodes)
        mp4_mb = dir_mb(dataset / "videos", "*.mp4")
        frames = json.loads((dataset / lerobot.INFO_PATH).read_text())["total_frames"]
        shutil.rmtree(dataset / ".frame_cache", ignore_errors=True)  # the build is measured
        load = [os.getloadavg()[0]]
        build = run("build", dataset, work, MEMORY_CAP_MB)
        caches = sorted((dataset / ".frame_cache").glob("*.npy"))
        runs = []
        for mode in [*ROUNDS, "streaming_cold", "memmap"]:
            cap = MEMORY_CAP_MB if mode.startswith("streaming") else None
            runs.append(run(mode, dataset, work, cap, caches if mode == "streaming_cold" else []))
            load.append(os.getloadavg()[0])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def of(mode: str, key: str) -> list[float]:
        return [r.get(key, 0.0) for r in runs if r["mode"] == mode]

    capped = [build, *(r for r in runs if r["mode"].startswith("streaming"))]
    ram_rate, stream_rate = np.median(of("in_ram", "steps_per_s")), np.median(of("streaming", "steps_per_s"))
    round_ratios = []
    for a, b in zip(runs[0 : len(ROUNDS) : 2], runs[1 : len(ROUNDS) : 2], strict=True):
        ram, stream = (a, b) if a["mode"] == "in_ram" else (b, a)
        round_ratios.append(stream.get("steps_per_s", 0.0) / ram["steps_per_s"])
    cpu_ram, cpu_stream = (
        np.median(of("in_ram", "cpu_ms_per_step")),
        np.median(of("streaming", "cpu_ms_per_step")),
    )
    dataset_mb = frames * len(CAMERAS) * FRAME_MB
    results = {
        "dataset_mb": round(dataset_mb),
        "memory_cap_mb": MEMORY_CAP_MB,
        "dataset_vs_cap": round(dataset_mb / MEMORY_CAP_MB, 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in capped)),
        "steps_per_s_in_ram": round(float(ram_rate), 2),
        "steps_per_s_streaming": round(float(stream_rate), 2),
        "streaming_vs_in_ram": round(float(stream_rate / ram_rate), 3),
        "streaming_vs_in_ram_per_round": [round(x, 3) for x in round_ratios],
        "cpu_ms_per_step_in_ram": round(float(cpu_ram)),
        "cpu_ms_per_step_streaming": round(float(cpu_stream)),
        "load_average": {
            "min": round(min(load), 2),
            "max": round(max(load), 2),
            "per_run": [round(x, 2) for x in load],
        },
        "dataset": f"{episodes} episodes x {EPISODE_FRAMES} frames, {len(CAMERAS)} cameras "
        f"{SIZE[0]}x{SIZE[1]}, {mp4_mb:.0f} MB of mp4",
        "training": f"flow policy, batch {BATCH}, {STEPS} steps (rate over the last {STEPS - LOG_EVERY}), "
        f"{THREADS} threads, no DataLoader workers",
        "steps_per_s_runs": {m: [round(x, 2) for x in of(m, "steps_per_s")] for m in MODES[1:]},
        "sample_us_in_ram": round(float(np.median(of("in_ram", "sample_us")))),
        "sample_us_streaming": round(float(np.median(of("streaming", "sample_us")))),
        "steps_per_s_streaming_cold": round(float(np.mean(of("streaming_cold", "steps_per_s"))), 2),
        "peak_rss_mb_runs": {"build": round(build["peak_rss_mb"])}
        | {m: [round(x) for x in of(m, "peak_rss_mb")] for m in MODES[1:]},
        "cache_build_s": round(build.get("open_s", 0.0), 1),
        "cache_verify_s": [round(x, 1) for x in of("streaming", "open_s")],
        "in_ram_decode_s": [round(x, 1) for x in of("in_ram", "open_s")],
        "over_cap": any(r["over_cap"] for r in capped),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "streaming.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if results["over_cap"]:
        raise SystemExit(f"the training process went over the {MEMORY_CAP_MB} MB cap")


if __name__ == "__main__":
    main()
