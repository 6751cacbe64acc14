"""Write the README's results table from benchmarks/results/*.json.

python benchmarks/report.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def slash(d: dict, keys: list[str], fmt: str) -> str:
    """d[k1] / d[k2] / ... formatted alike."""
    return " / ".join(format(d[k], fmt) for k in keys)


def rows() -> list[tuple[str, str, str]]:
    out = []

    def load(name: str) -> dict:
        path = RESULTS / name
        return json.loads(path.read_text()) if path.is_file() else {}

    core = load("flow_core.json")
    if core:
        out += [
            (
                "flow chunk latency p50 (image+state, 10 Euler steps, 2 threads)",
                f"{core['chunk_ms_p50']:.1f} ms",
                "flow_core",
            ),
            (
                "  same, observation re-encoded every step",
                f"{core['chunk_ms_p50_encode_every_step']:.1f} ms",
                "flow_core",
            ),
            (
                "  diffusion DDPM-100 / DDIM-10 / regression",
                slash(core, ["chunk_ms_p50_ddpm100", "chunk_ms_p50_ddim10", "chunk_ms_p50_regression"], ".1f")
                + " ms",
                "flow_core",
            ),
            ("  speed-up over DDPM-100", f"{core['speedup_vs_ddpm100']:.0f}x", "flow_core"),
            (
                "bimodal task: rarer-mode fraction flow / regression / DDPM-100",
                slash(
                    core, [f"bimodal_min_mode_fraction_{k}" for k in ("flow", "regression", "ddpm100")], ".2f"
                ),
                "flow_core",
            ),
            (
                "bimodal task: distance to nearest mode flow / regression / DDPM-100",
                slash(core, [f"bimodal_error_{k}" for k in ("flow", "regression", "ddpm100")], ".3f"),
                "flow_core",
            ),
        ]
    node = load("node.json")
    if node:
        for key, label in (
            ("e2e_ms_p50", "node end-to-end latency p50"),
            ("e2e_ms_p99", "node end-to-end latency p99"),
        ):
            if key in node:
                out.append((label, f"{node[key]:.1f} ms", "node_latency"))
        if "seam_jump_rtc" in node:
            out.append(
                (
                    "seam jump naive / ensemble / rtc (x median step)",
                    slash(node, ["seam_jump_naive", "seam_jump_ensemble", "seam_jump_rtc"], ".2f"),
                    "node_latency",
                )
            )
    sim = load("sim.json")
    if sim:
        success = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sim["expert_success"].items())
        out += [
            ("scripted expert success (50 seeds each)", success, "sim"),
            ("physics steps per second", f"{sim['physics_steps_per_s']:.0f}", "sim"),
            (
                "render ms per frame 96x96 / 224x224 / 640x480",
                slash(sim, ["render_ms_96", "render_ms_224", "render_ms_640x480_baseline"], ".1f"),
                "sim",
            ),
        ]
    rec = load("recorder.json")
    if rec:
        out += [
            (
                "recorder, 30 s of 640x480@30 Hz + 500 Hz joint states: lost / CPU / written",
                f"{rec['messages_lost']} / {rec['recorder_cpu_percent']:.0f}% / "
                f"{rec['written_mb_s']:.1f} MB/s",
                "recorder",
            ),
            (
                "bag -> dataset conversion (read-only baseline)",
                f"{rec['convert_s_per_gb']:.1f} s/GB, {rec['convert_x_real_time']:.1f}x real time "
                f"({rec['read_only_s_per_gb']:.1f} s/GB)",
                "recorder",
            ),
        ]
    quality = load("quality.json")
    if quality:
        tasks = list(quality["flow"]["tasks"])
        for method in ("flow", "regression", "diffusion"):
            per_task = quality[method]["tasks"]
            success = ", ".join(f"{t} {100 * per_task[t]['success_rate']:.0f}%" for t in tasks)
            jerk = statistics.mean(per_task[t]["rms_jerk"] for t in tasks)
            out.append(
                (
                    f"closed-loop success, {method} ({quality['config']['episodes']} episodes per task)",
                    f"{success}; RMS jerk {jerk:.0f}",
                    "policy_quality",
                )
            )
    demo = load("demo.json")
    for r in demo.values():

        def pct(rates: dict) -> str:
            return ", ".join(f"{t} {100 * v:.0f}%" for t, v in rates.items())

        cameras = r["per_run"][0]["config"].get("cameras") or []
        recipe = (
            f"camera {'+'.join(cameras)}" if cameras else "state + goal recipe, before the camera default"
        )
        out.append(
            (
                f"`{r['command']}` ({recipe}): success through ROS, min / median / max of {r['runs']} runs "
                f"({r['episodes_per_task']} episodes per task each)",
                f"min {pct(r['success_min'])}; median {pct(r['success_median'])}; "
                f"max {pct(r['success_max'])}",
                "demo",
            )
        )
        out.append(
            (
                f"`{r['command']}` ({recipe}): longest wall time (budget), chunk p50 / p99 in the graph",
                f"{r['wall_s_max'] / 60:.1f} min ({r['budget_s'] / 60:.0f}); "
                f"{r['chunk_ms_p50']:.1f} / {r['chunk_ms_p99']:.1f} ms; "
                f"training {r['train_steps_per_s']:.0f} steps/s",
                "demo",
            )
        )
    vision = load("vision.json")
    if vision.get("success"):

        def rates(d: dict) -> str:
            return ", ".join(f"{t.removeprefix('pick_')} {100 * v:.0f}%" for t, v in d.items())

        out += [
            (
                "camera-only picking, `flow-policy demo` checkpoints without ROS "
                f"({vision['episodes_per_task']} unseen seeds per task, median of {vision['runs']} runs)",
                rates(vision["success"]),
                "vision",
            ),
            (
                "  the same runs' `flow-policy demo`: wall time; success through ROS (10 episodes per task)",
                "; ".join(
                    f"{w / 60:.1f} min: {rates(r)}"
                    for w, r in zip(vision["demo_wall_s"], vision["ros_success"], strict=True)
                )
                + f"; training {vision['machine']['train_steps_per_s']:.0f} steps/s",
                "vision",
            ),
        ]
        if "perturbed" in vision:
            worst = {k: min(v.values()) for k, v in vision["perturbed"].items() if k != "none"}
            out.append(
                (
                    f"  under scene perturbations, lowest pick task ({vision['perturbed_episodes_per_task']} "
                    "episodes per task each)",
                    ", ".join(f"{k} {100 * v:.0f}%" for k, v in worst.items()),
                    "vision",
                )
            )
        for key, label in (
            ("perturbed_augmented", "image augmentation + standardised keypoints"),
            ("perturbed_distractors", "the same on demos with random distractors"),
            ("perturbed_randomized_scenes", "the same on demos in randomised scenes"),
        ):
            if key in vision:
                worst = {k: min(v.values()) for k, v in vision[key].items()}
                out.append(
                    (
                        f"  {label} (no ROS), lowest pick task",
                        ", ".join(f"{k} {100 * v:.0f}%" for k, v in worst.items()),
                        "vision",
                    )
                )
        for kind, per_task in vision.get("baselines", {}).items():
            out.append(
                (
                    f"  {kind}, same camera encoders and budget "
                    f"({vision['baseline_episodes_per_task']} episodes per task)",
                    rates(per_task),
                    "vision",
                )
            )
    insitu = load("insitu.json")
    if insitu:
        idle = ", ".join(f"{k} {v:.1f}%" for k, v in insitu["idle_cpu_percent"].items())
        out += [
            (
                "chunk latency p50 / p99: in the running graph vs offline (same checkpoint, same run)",
                f"{insitu['chunk_ms_p50_graph']:.1f} / {insitu['chunk_ms_p99_graph']:.1f} ms vs "
                f"{insitu['chunk_ms_p50_offline']:.1f} / {insitu['chunk_ms_p99_offline']:.1f} ms "
                f"({insitu['ratio_p50']:.2f}x / {insitu['ratio_p99']:.2f}x)",
                "insitu",
            ),
            ("idle CPU, percent of one core", idle, "insitu"),
            (
                "pick success through ROS, quiet vs a busy loop beside the graph",
                f"{100 * insitu['graph']['success']:.0f}% vs {100 * insitu['loaded']['success']:.0f}% "
                f"(chunk p50 {insitu['loaded']['chunk_ms_p50']:.1f} ms, "
                f"late {insitu['loaded']['late_chunks']} of {insitu['loaded']['chunks']})",
                "insitu",
            ),
        ]
    images = load("images.json")
    if images:
        out.append(
            (
                f"camera frame to model input ({images['frame']}): OpenCV vs PIL",
                f"{images['opencv_ms']:.2f} vs {images['pil_ms']:.2f} ms ({images['speedup']:.1f}x)",
                "images",
            )
        )
    commands = load("commands.json")
    if commands:
        out.append(
            (
                f"free-text commands ({commands['lines']}-line test set): "
                "valid resolved / out-of-scope refused",
                f"{100 * commands['valid_accuracy']:.1f}% / {100 * commands['refusal_accuracy']:.0f}%; "
                f"model load {commands['model_load_s']:.1f} s, "
                f"resolve p50 {commands['resolve_ms_p50']:.0f} ms",
                "commands",
            )
        )
    load_ = load("train_load.json")
    if load_:
        rates = load_["steps_per_s"]
        out.append(
            (
                "training steps/s, quiet vs a busy core beside it: 2 threads with "
                "libgomp's default spin / a short spin (ours) / passive waiting; 1 thread",
                "; ".join(
                    f"{cond} " + " / ".join(f"{rates[cond][k]:.1f}" for k in rates[cond]) for cond in rates
                ),
                "train_load",
            )
        )
    stream = load("streaming.json")
    if stream:
        out.append(
            (
                f"training on a dataset {stream['dataset_vs_cap']:.1f}x the memory cap "
                f"({stream['dataset_mb']} MB vs {stream['memory_cap_mb']} MB): streamed frames vs in RAM",
                f"peak RSS {stream['peak_rss_mb']} MB; {stream['steps_per_s_streaming']:.2f} vs "
                f"{stream['steps_per_s_in_ram']:.2f} steps/s ({stream['streaming_vs_in_ram']:.2f}x)",
                "streaming",
            )
        )
    delay = load("delay.json")
    if delay:
        for method, per_task in delay["success"].items():
            cells = "; ".join(
                f"{task} " + " / ".join(f"{100 * v:.0f}" for v in by_delay.values()) + "%"
                for task, by_delay in per_task.items()
            )
            delays = "/".join(str(d) for d in delay["config"]["delays_ms"])
            out.append((f"success at {delays} ms injected delay, {method}", cells, "delay"))
    return out


def main() -> None:
    table = ["| measurement | value | benchmark |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows()]
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    head, rest = text.split(start)
    _, tail = rest.split(end)
    readme.write_text(head + start + "\n" + "\n".join(table) + "\n" + end + tail)
    print("\n".join(table))


if __name__ == "__main__":
    main()
