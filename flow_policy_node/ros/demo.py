"""`flow-policy demo`: the whole loop in the MuJoCo sim, through ROS, with a report.

1. collect: sim_node + teleop_node (scripted expert) + recorder_node, real topics, real
   rosbag2 episodes;
2. convert: bags -> LeRobot v3 dataset;
3. train: a flow policy on it;
4. evaluate closed loop through ROS: sim_node + policy_node, one ExecuteCommand action
   per episode, the outcome from the simulator's sim/task_success;
5. report: markdown + PNGs (loss curve, success per task, example trajectories, chunk
   latency histogram) in the output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from flow_policy_node import names
from flow_policy_node.ros.graph import Graph, ros_args
from flow_policy_node.ros.graph_client import GraphClient, wait_until_active
from flow_policy_node.tasks import get_task


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    # Every pick scene holds all three cubes: the camera policy must find the one it is told to.
    tasks: tuple[str, ...] = ("pick_red", "pick_green", "pick_blue", "reach")
    # Measured without ROS (the same expert and sim): 40 demos per pick task and 3000 steps
    # picked 97-100% from the front camera alone; the scripted expert takes ~1.2 s per demo.
    demos_per_task: int = 40
    train_steps: int = 4000
    batch_size: int = 64
    eval_episodes: int = 10  # per task
    real_time_factor: float = 5.0  # collection runs faster than real time on sim time
    # Evaluation runs in real time, as on a robot: a chunk takes a few ms in the running
    # graph, far inside its 400 ms budget (see benchmarks/results/insitu.json).
    eval_real_time_factor: float = 1.0
    episode_timeout: float = 8.0  # s of sim time per evaluation episode (successes take 3-4 s)
    seed: int = 0
    # The policy sees the front camera, the joint states and the command; pick tasks find
    # their cube in the image (the goal point in the bags only supervises that during
    # training). reach keeps its goal input: a clicked point is the command's argument.
    # cameras=() trains the state + goal policy instead (goal points as inputs everywhere).
    cameras: tuple[str, ...] = ("front",)
    # Cameras the sim renders and the bags hold while collecting (the dataset gets a video
    # per camera); evaluation renders only the policy's ``cameras``.
    record_cameras: tuple[str, ...] = ("front",)
    # Demos collected in scenes that look a little different each episode (camera pose,
    # light, paint, a distractor: sim/scene.py Scene.randomized); evaluation in the default one.
    randomize_scene: float = 0.0
    distractors: float = 0.0  # share of demo scenes with a distractor (SimConfig.distractors)

    @classmethod
    def quick(cls, out: Path) -> DemoConfig:
        return cls(out=out, tasks=("pick_red",), demos_per_task=30, train_steps=1500, eval_episodes=5)

    def image_goal_tasks(self) -> tuple[str, ...]:
        """Commands whose goal the policy finds in the images (none without cameras)."""
        if not self.cameras:
            return ()
        return tuple(get_task(t).command for t in self.tasks if get_task(t).goal_from_image)

    def __post_init__(self) -> None:
        unrecorded = [c for c in self.cameras if c not in self.record_cameras]
        if unrecorded:
            raise ValueError(
                f"the policy's cameras {unrecorded} are not among the recorded {self.record_cameras}"
            )


@dataclass
class EvalEpisode:
    task: str
    seed: int
    success: bool
    elapsed_s: float
    message: str
    joints: list[list[float]] = field(repr=False, default_factory=list)


def _domain() -> int:
    """The caller's ROS_DOMAIN_ID; without one, a domain of the demo's own (no crossing)."""
    return int(os.environ.get("ROS_DOMAIN_ID") or 150 + os.getpid() % 80)


def collect(cfg: DemoConfig, graph: Graph, client: GraphClient, bags: Path) -> None:
    from std_msgs.msg import String

    n = cfg.demos_per_task * len(cfg.tasks)
    with tqdm(total=n, desc="collect demos (ROS)", unit="episode") as bar:
        # The teleop node announces each episode's command: one message, one episode begun.
        # Subscribed before it starts, so that none is missed.
        announced = client.node.create_subscription(String, names.COMMAND, lambda _msg: bar.update(), n)
        graph.start(
            "sim_collect",
            "sim_node",
            ros_args(
                "sim_node.yaml",
                real_time_factor=cfg.real_time_factor,
                cameras=list(cfg.record_cameras),
                randomize_scene=cfg.randomize_scene,
                distractors=cfg.distractors,
            ),
        )
        graph.start(
            "recorder",
            "recorder_node",
            ros_args("recorder_node.yaml", use_sim_time=True, output_dir=str(bags)),
        )
        graph.start(
            "teleop",
            "teleop_node",
            ros_args(
                "teleop_node.yaml",
                use_sim_time=True,
                tasks=list(cfg.tasks),
                episodes=n,
                seed=cfg.seed,
                record=True,
            ),
        )
        graph.wait(until="teleop")
        client.node.destroy_subscription(announced)
        bar.update(n - bar.n)  # the last episode ended with the teleop node
    graph.stop("recorder", check=True)  # it closes the last episode on the way out
    graph.stop("sim_collect")


class EvalClient:
    """Resets the sim, sends ExecuteCommand, records what happens; on the demo's own node.

    cameras: the policy's, whose first frames of a new scene each episode waits for.
    """

    def __init__(self, client: GraphClient, cameras: tuple[str, ...]) -> None:
        from geometry_msgs.msg import PointStamped
        from rclpy.action import ActionClient
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from sensor_msgs.msg import Image, JointState
        from std_srvs.srv import Trigger

        from flow_policy_msgs.action import ExecuteCommand
        from flow_policy_msgs.msg import PolicyStatus
        from flow_policy_msgs.srv import ResetSim
        from flow_policy_node.ros.conversions import stamp_to_sec

        self.client, node, self.stamp_to_sec = client, client.node, stamp_to_sec
        self.ExecuteCommand, self.ResetSim, self.Trigger = ExecuteCommand, ResetSim, Trigger
        self.reset_sim = node.create_client(ResetSim, names.SIM_RESET)
        self.reset_policy = node.create_client(Trigger, names.POLICY_RESET)
        self.action = ActionClient(node, ExecuteCommand, names.EXECUTE)
        self.latencies: list[float] = []  # chunk inference (ms), from the node's status
        self.delays: list[float] = []  # observation -> chunk ready (ms, node clock)
        self.late_chunks = self.chunks = 0
        self.joints: list[list[float]] = []
        self.joint_names: list[str] = []
        self.samples = 0
        self.recording = False
        self.last_chunk = 0
        # The newest sim-time stamp of the scene (its goal, latched by the sim at each reset)
        # and of every stream the policy observes: a new scene is observed once every stream
        # has a message stamped after its goal.
        self.fresh = threading.Condition()
        self.scene_stamp = -1.0
        self.stamps = {"joints": -1.0, **{c: -1.0 for c in cameras}}
        node.create_subscription(PolicyStatus, names.POLICY_STATUS, self.on_status, 10)
        node.create_subscription(JointState, names.JOINT_STATES, self.on_joints, 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(PointStamped, names.GOAL, self.on_scene_goal, latched)
        for cam in cameras:
            node.create_subscription(
                Image, names.camera_topic(cam), lambda msg, c=cam: self.observed(c, msg.header), 1
            )

    def on_status(self, msg) -> None:
        if msg.chunk_id != self.last_chunk and msg.inference_ms > 0:
            self.latencies.append(msg.inference_ms)
            self.delays.append(msg.delay_ms)
            self.last_chunk = msg.chunk_id
        self.late_chunks, self.chunks = msg.late_chunks, msg.chunks

    def on_joints(self, msg) -> None:
        self.observed("joints", msg.header)
        if self.recording:
            self.samples += 1
            if self.samples % 10 == 0:  # 10 Hz of the 100 Hz stream
                self.joint_names = list(msg.name)
                self.joints.append(list(msg.position))

    def on_scene_goal(self, msg) -> None:
        with self.fresh:
            self.scene_stamp = self.stamp_to_sec(msg.header.stamp)
            self.fresh.notify_all()

    def observed(self, stream: str, header) -> None:
        with self.fresh:
            self.stamps[stream] = self.stamp_to_sec(header.stamp)
            self.fresh.notify_all()

    def wait_for_scene(self, after: float, timeout: float = 30.0) -> None:
        """Wait until a scene newer than ``after`` (a goal's stamp) is seen on every stream."""

        def seen() -> bool:
            return self.scene_stamp > after and min(self.stamps.values()) > self.scene_stamp

        with self.fresh:
            if not self.fresh.wait_for(seen, timeout):
                raise RuntimeError(
                    f"no observations of a new scene within {timeout:.0f} s (the sim publishes "
                    f"each scene's goal on {names.GOAL}; streams last seen at {self.stamps})"
                )

    def ready(self, graph: Graph, policy: str, timeout: float = 120.0) -> None:
        """Wait until the sim streams its scene and the policy node (graph process ``policy``) is active."""
        if not self.reset_sim.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"sim_node did not come up ({names.SIM_RESET})")
        self.wait_for_scene(-1.0, timeout)
        wait_until_active(self.client, graph, policy, timeout)
        if not self.action.wait_for_server(timeout_sec=timeout):
            raise RuntimeError(f"policy_node offers no {names.EXECUTE} action")

    def episode(self, task: str, seed: int, timeout: float) -> EvalEpisode:
        wait = self.client.wait
        # Policy first: its reset clears the goal, and the sim's reset publishes the new one.
        if self.reset_policy.service_is_ready():
            wait(self.reset_policy.call_async(self.Trigger.Request()), 30)
        previous = self.scene_stamp
        reply = wait(self.reset_sim.call_async(self.ResetSim.Request(task=task, seed=seed)), 30)
        if not reply.success:
            raise RuntimeError(reply.message)
        self.wait_for_scene(previous)  # the policy must not act on the last episode's scene
        self.joints, self.samples, self.recording = [], 0, True
        goal = self.ExecuteCommand.Goal(command=reply.command, timeout_s=timeout)
        handle = wait(self.action.send_goal_async(goal), 30)
        if not handle.accepted:
            self.recording = False
            return EvalEpisode(task, seed, False, 0.0, "goal rejected")
        result = wait(handle.get_result_async(), timeout * 4 + 30).result
        self.recording = False
        return EvalEpisode(
            task, seed, bool(result.success), float(result.elapsed_s), result.message, self.joints
        )


@dataclass
class EvalRun:
    """Closed-loop episodes through ROS and what the policy node reported meanwhile."""

    episodes: list[EvalEpisode]
    inference_ms: list[float]  # per chunk, from PolicyStatus
    delay_ms: list[float]  # per chunk: observation -> chunk ready (node clock)
    late_chunks: int
    chunks: int
    joint_names: list[str]

    def success(self, task: str) -> float:
        runs = [e.success for e in self.episodes if e.task == task]
        return float(np.mean(runs)) if runs else 0.0


def evaluate_ros(cfg: DemoConfig, graph: Graph, checkpoint: Path, **policy_params) -> EvalRun:
    """``cfg.eval_episodes`` episodes per task (seeds 10000 + seed + i), sim + policy node.

    ``policy_params`` override the policy node's parameters (e.g. ``chunk_blending``).
    """
    graph.start(
        "sim_eval",
        "sim_node",
        ros_args("sim_node.yaml", real_time_factor=cfg.eval_real_time_factor, cameras=list(cfg.cameras)),
    )
    # Evaluation sends each task's exact command, so the sentence-embedding model (6 s to
    # load) stays unloaded; free-text commands are tested on their own.
    params = {"checkpoint": str(checkpoint), "command_embedding": False, **policy_params}
    graph.start("policy", "policy_node", ros_args("policy_node.sim.yaml", **params))
    node = GraphClient("demo_eval", graph.domain_id)
    client = EvalClient(node, cfg.cameras)
    results: list[EvalEpisode] = []
    try:
        client.ready(graph, "policy")
        jobs = [(t, 10_000 + cfg.seed + i) for t in cfg.tasks for i in range(cfg.eval_episodes)]
        for task, seed in tqdm(jobs, desc="evaluate (ROS)", unit="episode"):
            results.append(client.episode(task, seed, cfg.episode_timeout))
    except Exception:
        graph.check()  # a node that died is the cause; the client only saw it missing
        raise
    finally:
        run = EvalRun(
            results,
            list(client.latencies),
            list(client.delays),
            client.late_chunks,
            client.chunks,
            list(client.joint_names),
        )
        node.close()
        graph.stop("policy")
        graph.stop("sim_eval")
    return run


def plot_gripper_paths(
    per_task: dict[str, list[EvalEpisode]], rates: dict[str, float], joint_names: list[str], png: Path
) -> None:
    """Top view of the gripper path of up to six episodes per task, over the scene's layout."""
    import matplotlib.pyplot as plt

    from flow_policy_node.kinematics import Kinematics

    fk = Kinematics()
    fig, axes = plt.subplots(1, len(per_task), figsize=(4.2 * len(per_task), 4), squeeze=False)
    for ax, (task, episodes) in zip(axes[0], per_task.items(), strict=True):
        for k, r in enumerate(episodes[:6]):
            layout = get_task(task).sample_layout(r.seed)
            colour = "C2" if r.success else "C3"
            if len(r.joints) and joint_names:
                tcp = fk.positions(np.array(r.joints), joint_names)
                ax.plot(tcp[:, 0], tcp[:, 1], color=colour, alpha=0.8, lw=1.2)
                ax.plot(*tcp[0, :2], "o", color=colour, ms=3)
            if layout.goal is not None:
                ax.plot(*layout.goal[:2], "*", color=colour, ms=11, mec="k", mew=0.5)
            if layout.obstacle is not None and k == 0:
                ax.add_patch(plt.Circle(tuple(layout.obstacle), 0.03, color="0.4", alpha=0.6))
        ax.set_title(f"{task}: {rates[task]:.0%} (green success, red failure)", fontsize=9)
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    fig.suptitle("gripper paths, top view; stars: goals (pick: the target cube)", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def draw_views(run: EvalRun, checkpoint: Path, png: Path, per_task: int = 4) -> None:
    """Annotated camera views of a few evaluated episodes per task (sim/pictures.py)."""
    from flow_policy_node.robot import default_arm
    from flow_policy_node.sim.pictures import Shown, draw_episodes, pick_examples
    from flow_policy_node.train.checkpoint import load_policy

    names = default_arm().joint_names
    shown = []
    for r in run.episodes:
        joints = np.zeros((0, len(names)))
        if r.joints and all(n in run.joint_names for n in names):
            joints = np.array(r.joints)[:, [run.joint_names.index(n) for n in names]]
        shown.append(Shown(r.task, r.seed, r.success, joints))
    draw_episodes(load_policy(checkpoint).eval(), pick_examples(shown, per_task), png)


def write_report(cfg: DemoConfig, run: EvalRun, timings: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = cfg.out
    results, latencies = run.episodes, run.inference_ms
    per_task = {t: [r for r in results if r.task == t] for t in cfg.tasks}
    rates = {t: float(np.mean([r.success for r in rs])) if rs else 0.0 for t, rs in per_task.items()}

    fig, ax = plt.subplots(figsize=(4 + len(rates), 3.2))
    ax.bar(list(rates), [100 * v for v in rates.values()], color="C2")
    ax.set_ylim(0, 100)
    ax.set_ylabel("closed-loop success [%]")
    ax.set_title("flow policy through ROS")
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(latencies or [0], bins=30, color="C0")
    ax.set_xlabel("chunk inference [ms]")
    ax.set_ylabel("chunks")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)

    plot_gripper_paths(per_task, rates, run.joint_names, out / "trajectories.png")
    draw_views(run, out / "checkpoint", out / "views.png")

    lat = np.array(latencies) if latencies else np.zeros(1)
    lines = [
        "# flow_policy demo report",
        "",
        f"Tasks: {', '.join(cfg.tasks)}; {cfg.demos_per_task} demos per task, "
        f"{cfg.train_steps} training steps, {cfg.eval_episodes} evaluation episodes per task "
        "(seeds never seen in training).",
        "",
        "| task | success | episodes |",
        "|---|---|---|",
        *[f"| {t} | {100 * rates[t]:.0f}% | {len(per_task[t])} |" for t in cfg.tasks],
        "",
        f"Chunk inference in the running graph: p50 {np.percentile(lat, 50):.1f} ms, p99 "
        f"{np.percentile(lat, 99):.1f} ms ({len(latencies)} chunks); {run.late_chunks} of {run.chunks} "
        "chunks late (observation to chunk longer than the execution horizon).",
        "",
        "| phase | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.0f} |" for k, v in timings.items()],
        "",
        "![loss](checkpoint/loss.png) ![success](success.png)",
        "![trajectories](trajectories.png) ![latency](latency.png)",
        "",
        "What the policy saw and did (failures first): its front camera at the start of the "
        "episode, the gripper path it planned in its first chunk (cyan), the path the arm took "
        "(green: success, red: failure), and where it located the target (yellow cross).",
        "",
        "![views](views.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    summary = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "success_rate": rates,
        "chunk_ms_p50": float(np.percentile(lat, 50)),
        "chunk_ms_p99": float(np.percentile(lat, 99)),
        "late_chunks": run.late_chunks,
        "chunks": run.chunks,
        "timings_s": timings,
        "episodes": [{k: v for k, v in asdict(r).items() if k != "joints"} for r in results],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out / "report.md"


def run_demo(cfg: DemoConfig) -> dict:
    import torch

    from flow_policy_node.data.convert import ConvertConfig, convert
    from flow_policy_node.data.dataset import ChunkDataset
    from flow_policy_node.models.encoders import ObservationEncoderConfig
    from flow_policy_node.models.policy import PolicyConfig
    from flow_policy_node.train.loop import TrainConfig, train

    out = cfg.out
    if out.exists():
        shutil.rmtree(out)
    timings: dict[str, float] = {}
    with Graph(log_dir=out / "logs", domain_id=_domain()) as graph:
        print(f"node logs: {graph.log_dir}/<node>.log")
        t = time.perf_counter()
        with GraphClient("demo_collect", graph.domain_id) as client:
            collect(cfg, graph, client, out / "bags")
        timings["collect"] = time.perf_counter() - t

        t = time.perf_counter()
        cameras = {c: t for c, t in ConvertConfig().cameras.items() if c in cfg.record_cameras}
        reports = convert([out / "bags"], out / "dataset", ConvertConfig(cameras=cameras))
        timings["convert"] = time.perf_counter() - t
        kept = [r for r in reports if not r.skipped]
        print(f"dataset: {len(kept)}/{len(reports)} episodes, {sum(r.frames for r in kept)} frames")

        t = time.perf_counter()
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        policy = PolicyConfig(encoder=ObservationEncoderConfig(image_goal_tasks=cfg.image_goal_tasks()))
        dataset = ChunkDataset(out / "dataset", horizon=policy.horizon, cameras=cfg.cameras)
        tcfg = TrainConfig(
            policy=policy,
            steps=cfg.train_steps,
            batch_size=cfg.batch_size,
            lr=1e-3,
            warmup_steps=50,
            seed=cfg.seed,
        )
        train(tcfg, dataset, out / "checkpoint", dataset_name=str(out / "dataset"))
        timings["train"] = time.perf_counter() - t

        t = time.perf_counter()
        run = evaluate_ros(cfg, graph, out / "checkpoint")
        timings["evaluate"] = time.perf_counter() - t
    report = write_report(cfg, run, timings)
    print(f"report: {report}")
    return json.loads((out / "summary.json").read_text())
