"""teleop_node: the scripted expert as a teleoperator, through the robot's own topics.

For each episode it resets the simulator (sim/reset), announces the command on
flow_policy/command, optionally starts a recorder episode, and streams joint setpoints
on arm_controller/joint_trajectory at the control rate, as a teleop device would. It
plans on a private copy of the scene, reset with the same task and seed as the simulator
(so both share one layout), and reads the outcome from sim/task_success. It exits after
``episodes`` episodes. Names are relative: under a namespace they are the robot's own.
"""

from __future__ import annotations

import sys
import threading
import time

from flow_policy_node.ros.env import run_node_main, spin


def _main(argv: list[str]) -> int:
    import rclpy
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from rclpy.signals import SignalHandlerOptions
    from std_msgs.msg import Bool, String
    from trajectory_msgs.msg import JointTrajectory

    from flow_policy_msgs.srv import ResetSim, StartEpisode, StopEpisode
    from flow_policy_node import names
    from flow_policy_node.ros.conversions import trajectory_msg
    from flow_policy_node.sim.env import ArmEnv, SimConfig
    from flow_policy_node.sim.expert import ScriptedExpert
    from flow_policy_node.tasks import get_task

    class TeleopNode(Node):
        def __init__(self) -> None:
            super().__init__("teleop_node")
            p = self.declare_parameter
            self.tasks = [get_task(t).name for t in p("tasks", ["pick_red"]).value]
            self.episodes = int(p("episodes", 1).value)
            self.seed0 = int(p("seed", 0).value)
            self.record = bool(p("record", False).value)
            self.rate = float(p("control_rate", 10.0).value)
            self.settle = float(p("settle_time", 0.5).value)
            self.recorder_name = p("recorder_node", names.RECORDER_NODE).value
            group = ReentrantCallbackGroup()
            self.env = ArmEnv(SimConfig(render=False, fps=self.rate))
            self.names = list(self.env.arm.joint_names)
            self.traj_pub = self.create_publisher(
                JointTrajectory, p("trajectory_topic", names.TRAJECTORY).value, 10
            )
            self.cmd_pub = self.create_publisher(String, p("command_topic", names.COMMAND).value, 10)
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.success = False
            self.create_subscription(Bool, names.TASK_SUCCESS, self.on_success, latched, callback_group=group)
            self.reset_cli = self.create_client(ResetSim, names.SIM_RESET, callback_group=group)
            self.start_cli = self.create_client(StartEpisode, names.START_EPISODE, callback_group=group)
            self.stop_cli = self.create_client(StopEpisode, names.STOP_EPISODE, callback_group=group)
            self.expert: ScriptedExpert | None = None
            self.episode_done = threading.Event()
            self.settle_ticks = 0
            self.create_timer(1.0 / self.rate, self.on_tick, callback_group=group)
            self.results: list[bool] = []
            self.exit_code = 0
            self.finished = threading.Event()
            self.worker = threading.Thread(target=self.run_episodes, daemon=True)
            self.worker.start()

        def on_success(self, msg: Bool) -> None:
            self.success = msg.data

        def on_tick(self) -> None:
            expert = self.expert
            if expert is None:
                return
            if not expert.done():
                # Stamped at the tick: the recording then times each setpoint by when it was
                # meant, not by when it arrived (transport jitter would alias onto the grid).
                stamp = self.get_clock().now().to_msg()
                self.traj_pub.publish(
                    trajectory_msg(self.names, expert.act()[None], dt=1.0 / self.rate, stamp=stamp)
                )
            elif self.settle_ticks > 0:
                self.settle_ticks -= 1
            else:
                self.expert = None
                self.episode_done.set()

        def call(self, client, request, what: str):
            if not client.wait_for_service(timeout_sec=20.0):
                raise RuntimeError(f"{what} service {client.srv_name} is not available")
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            if not done.wait(30.0):
                raise RuntimeError(f"{what} service {client.srv_name} did not answer")
            return future.result()

        def wait_for_recorder(self, timeout: float = 20.0) -> None:
            """Block until the recorder's subscription to our setpoints is matched.

            Its start_episode service can answer before DDS has matched that subscription,
            and the first episode then lacks the setpoints (the actions) it exists for.
            """
            topic = self.traj_pub.topic_name
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                subscribers = self.get_subscriptions_info_by_topic(topic)
                recorder = any(s.node_name == self.recorder_name for s in subscribers)
                if recorder and self.traj_pub.get_subscription_count() >= len(subscribers):
                    return
                time.sleep(0.05)
            raise RuntimeError(f"{self.recorder_name} did not subscribe to {topic} within {timeout:.0f} s")

        def run_episodes(self) -> None:
            try:
                if self.record:
                    self.wait_for_recorder()
                for i in range(self.episodes):
                    task, seed = self.tasks[i % len(self.tasks)], self.seed0 + i
                    reply = self.call(self.reset_cli, ResetSim.Request(task=task, seed=seed), "reset")
                    if not reply.success:
                        raise RuntimeError(reply.message)
                    self.env.reset(task, seed)
                    self.success = False
                    if self.record:
                        started = self.call(
                            self.start_cli, StartEpisode.Request(task=reply.command), "recorder"
                        )
                        if not started.success:
                            raise RuntimeError(f"recorder refused the episode: {started.message}")
                    self.cmd_pub.publish(String(data=reply.command))
                    self.episode_done.clear()
                    self.settle_ticks = round(self.settle * self.rate)
                    self.expert = ScriptedExpert(self.env, seed)
                    self.episode_done.wait()
                    self.results.append(self.success)
                    if self.record:
                        stopped = self.call(
                            self.stop_cli, StopEpisode.Request(success=self.success), "recorder"
                        )
                        if not stopped.ok:
                            raise RuntimeError(f"recorder failed to close the episode: {stopped.message}")
                    self.get_logger().info(
                        f"episode {i + 1}/{self.episodes} {task} seed {seed}: "
                        f"{'success' if self.success else 'failure'}"
                    )
                self.get_logger().info(f"done: {sum(self.results)}/{len(self.results)} successful")
                self.exit_code = 0
            except RuntimeError as exc:
                self.get_logger().error(str(exc))
                self.exit_code = 1
            self.finished.set()

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = TeleopNode()
    # Single-threaded: callbacks are short (episodes run on the worker thread), and rclpy's
    # MultiThreadedExecutor busy-loops (most of a core at 100 Hz /clock).
    spin(node, SingleThreadedExecutor(), node.env.close, until=node.finished.is_set)
    return node.exit_code


def main() -> int:
    return run_node_main(_main)


if __name__ == "__main__":
    sys.exit(main())
