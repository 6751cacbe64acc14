"""sim_node: the MuJoCo arm behind the robot's topics, as a ros2_control robot would be.

Publishes /clock (it owns simulated time; run the other nodes with use_sim_time),
joint_states (100 Hz), camera images (15 Hz), sim/task_success, the task goal on
clicked_point (transient local) and object positions on sim/object_poses; executes
JointTrajectory on arm_controller/joint_trajectory like a JointTrajectoryController;
sim/reset (flow_policy_msgs/srv/ResetSim) resets the scene and selects the task.
Physics runs on its own thread at ``real_time_factor`` x real time.

Names are relative, so that under a namespace (``--ros-args -r __ns:=/robot1``) every
topic and service is the robot's own; /clock is global (a launch file remaps it per
robot). With ``wall_clock: true`` the node stands in for a real arm's driver: messages
are stamped with the wall clock, no /clock is published, and trajectory stamps are read
as wall-clock times (run the other nodes with use_sim_time false).
"""

from __future__ import annotations

import sys
import threading
import time

from flow_policy_node.ros.env import run_node_main, spin


def _main(argv: list[str]) -> int:
    import rclpy
    from geometry_msgs.msg import Point, PointStamped, Pose, PoseArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool
    from trajectory_msgs.msg import JointTrajectory

    from flow_policy_msgs.srv import ResetSim
    from flow_policy_node import names
    from flow_policy_node.control.jtc import TrajectoryExecutor
    from flow_policy_node.ros.conversions import (
        ConversionError,
        joint_state_msg,
        rgb_to_image,
        sec_to_stamp,
        stamp_to_sec,
        trajectory_arrays,
    )
    from flow_policy_node.sim.env import ArmEnv, SimConfig
    from flow_policy_node.tasks import get_task

    class SimNode(Node):
        def __init__(self) -> None:
            super().__init__("sim_node")
            p = self.declare_parameter
            self.task_name = p("task", "pick_red").value
            self.seed = int(p("seed", 0).value)
            self.js_rate = float(p("joint_state_rate", 100.0).value)
            self.cam_rate = float(p("camera_rate", 15.0).value)
            size = (int(p("image_height", 96).value), int(p("image_width", 96).value))
            cameras = tuple(p("cameras", ["front", "wrist"]).value or ())  # `cameras:=[]` reads as None
            self.rtf = float(p("real_time_factor", 1.0).value)
            image_topic = p("image_topic_format", names.CAMERA_TOPIC_FORMAT).value
            traj_topic = p("trajectory_topic", names.TRAJECTORY).value
            self.wall_clock = bool(p("wall_clock", False).value)
            randomize = float(p("randomize_scene", 0.0).value)
            distractors = float(p("distractors", 0.0).value)

            self.env = ArmEnv(
                SimConfig(
                    image_size=size,
                    cameras=cameras,
                    render=False,
                    randomize_scene=randomize,
                    distractors=distractors,
                )
            )
            self.names = list(self.env.arm.joint_names)
            self.executor_ = TrajectoryExecutor(self.env.lower, self.env.upper)
            self.lock = threading.Lock()
            self.env.reset(self.task_name, self.seed)

            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.clock_pub = None if self.wall_clock else self.create_publisher(Clock, names.CLOCK, 10)
            self.js_pub = self.create_publisher(JointState, names.JOINT_STATES, 50)
            self.img_pubs = {
                c: self.create_publisher(Image, image_topic.format(camera=c), QoSProfile(depth=5))
                for c in cameras
            }
            self.success_pub = self.create_publisher(Bool, names.TASK_SUCCESS, latched)
            self.goal_pub = self.create_publisher(PointStamped, names.GOAL, latched)
            self.objects_pub = self.create_publisher(PoseArray, names.OBJECT_POSES, 10)
            self.create_subscription(
                JointTrajectory,
                traj_topic,
                self.on_trajectory,
                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
            )
            self.create_service(ResetSim, names.SIM_RESET, self.on_reset)
            self.Image, self.PointStamped, self.Point, self.Pose, self.PoseArray = (
                Image,
                PointStamped,
                Point,
                Pose,
                PoseArray,
            )
            self.Bool, self.Clock = Bool, Clock
            self.running = True
            self.last_success: bool | None = None
            self.publish_episode_info()
            self.thread = threading.Thread(target=self.physics_loop, daemon=True)
            self.thread.start()
            self.get_logger().info(
                f"sim ready: task {self.task_name!r}, cameras {list(cameras)} {size[1]}x{size[0]}, "
                f"{self.js_rate:.0f} Hz joint states, real-time factor {self.rtf}, "
                f"{'wall-clock stamps' if self.wall_clock else 'publishing /clock'}"
            )

        # --- callbacks (short: validate and hand over under the lock) --------------------

        def on_trajectory(self, msg) -> None:
            try:
                times, positions = trajectory_arrays(msg, self.names)
            except ConversionError as exc:
                self.get_logger().error(f"rejected trajectory: {exc}")
                return
            reason = self.executor_.check_limits(positions, self.names)
            if reason:
                self.get_logger().error(f"rejected trajectory: {reason}")
                return
            with self.lock:
                now = self.env.time
                stamp = stamp_to_sec(msg.header.stamp)
                if stamp <= 0:
                    start = now
                elif self.wall_clock:  # a wall-clock time: as far from now in sim time
                    start = now + (stamp - time.time())
                else:
                    start = stamp
                self.executor_.accept(max(start, now), times, positions, self.env.joint_targets())

        def on_reset(self, request, response):
            try:
                task = get_task(request.task) if request.task else get_task(self.task_name)
            except KeyError as exc:
                response.success, response.message = False, str(exc)
                return response
            with self.lock:
                self.task_name = task.name
                self.seed = int(request.seed) if request.seed >= 0 else self.seed + 1
                self.executor_.clear()
                self.env.reset(task.name, self.seed)
                self.last_success = None
            self.publish_episode_info()
            response.success, response.task, response.command = True, task.name, task.command
            response.message = f"reset to {task.name!r} with seed {self.seed}"
            return response

        def publish_episode_info(self) -> None:
            goal = self.env.goal
            if goal is not None:
                msg = self.PointStamped()
                msg.header.stamp = self.stamp(self.env.time)
                msg.header.frame_id = "base_link"
                msg.point = self.Point(x=float(goal[0]), y=float(goal[1]), z=float(goal[2]))
                self.goal_pub.publish(msg)

        # --- physics thread --------------------------------------------------------------

        def physics_loop(self) -> None:
            dt = 1.0 / self.js_rate
            cam_every = max(1, round(self.js_rate / self.cam_rate))
            tick, wall0, sim0 = 0, time.monotonic(), self.env.time
            while self.running and rclpy.ok(context=self.context):
                with self.lock:
                    target = self.executor_.target(self.env.time + dt, self.env.joint_targets())
                    self.env.set_joint_targets(target)
                    self.env.advance(dt)
                    now = self.env.time
                    q, dq = self.env.joint_positions(), self.env.joint_velocities()
                    images = {c: self.env.render(c) for c in self.img_pubs} if tick % cam_every == 0 else {}
                    success = self.env.success()
                    objects = self.env.object_positions() if tick % 10 == 0 else None
                stamp = self.stamp(now)
                if self.clock_pub is not None:
                    self.clock_pub.publish(self.Clock(clock=stamp))
                self.js_pub.publish(joint_state_msg(self.names, q, dq, stamp))
                for cam, rgb in images.items():
                    self.img_pubs[cam].publish(rgb_to_image(rgb, stamp, f"{cam}_camera_optical_frame"))
                if success != self.last_success:
                    self.success_pub.publish(self.Bool(data=bool(success)))
                    self.last_success = success
                if objects is not None:
                    self.publish_objects(objects, stamp)
                tick += 1
                # Pace against the wall clock: sim time advances rtf times faster.
                ahead = (now - sim0) / self.rtf - (time.monotonic() - wall0)
                if ahead > 0:
                    time.sleep(ahead)
                elif ahead < -0.5:  # fell behind (slow machine): do not try to catch up in a burst
                    wall0, sim0 = time.monotonic(), now
            self.env.close()  # renderers belong to this thread's GL context

        def stamp(self, sim_time: float):
            """The stamp of something that happened now, at ``sim_time`` in the simulation."""
            return sec_to_stamp(time.time() if self.wall_clock else sim_time)

        def publish_objects(self, objects: dict, stamp) -> None:
            msg = self.PoseArray()
            msg.header.stamp, msg.header.frame_id = stamp, "base_link"
            for pos in objects.values():
                pose = self.Pose()
                pose.position = self.Point(x=float(pos[0]), y=float(pos[1]), z=float(pos[2]))
                msg.poses.append(pose)
            self.objects_pub.publish(msg)

        def shutdown(self) -> None:
            self.running = False
            self.thread.join(timeout=2.0)

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = SimNode()
    spin(node, SingleThreadedExecutor(), node.shutdown)
    return 0


def main() -> int:
    return run_node_main(_main)


if __name__ == "__main__":
    sys.exit(main())
