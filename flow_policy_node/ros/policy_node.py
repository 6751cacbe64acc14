"""flow_policy_node: runs a FlowPolicy on live topics and publishes JointTrajectory chunks.

Foundation version: parameters, PolicyStatus at a steady rate and the SetEnabled
service. Inference and chunk publishing arrive with the policy library.
"""

from __future__ import annotations

import sys

from flow_policy_node.ros.env import run_node_main, spin


def _main(argv: list[str]) -> int:
    import rclpy
    from rclpy.node import Node
    from rclpy.signals import SignalHandlerOptions

    from flow_policy_msgs.msg import PolicyStatus
    from flow_policy_msgs.srv import SetEnabled

    class PolicyNode(Node):
        def __init__(self) -> None:
            super().__init__("flow_policy_node")
            self.declare_parameter("status_rate_hz", 5.0)
            self.enabled = True
            self.status_pub = self.create_publisher(PolicyStatus, "/flow_policy/status", 10)
            self.create_service(SetEnabled, "/flow_policy/set_enabled", self.on_set_enabled)
            period = 1.0 / float(self.get_parameter("status_rate_hz").value)
            self.create_timer(period, self.publish_status)

        def on_set_enabled(self, request: SetEnabled.Request, response: SetEnabled.Response):
            self.enabled = bool(request.enabled)
            response.success = True
            response.message = "enabled" if self.enabled else "disabled: holding"
            return response

        def publish_status(self) -> None:
            msg = PolicyStatus()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.state = PolicyStatus.STATE_UNCONFIGURED if self.enabled else PolicyStatus.STATE_DISABLED
            msg.enabled = self.enabled
            msg.observation_age_s = -1.0
            self.status_pub.publish(msg)

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    spin(PolicyNode())
    return 0


def main() -> int:
    return run_node_main(_main)


if __name__ == "__main__":
    sys.exit(main())
