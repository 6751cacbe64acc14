"""The policy node's ExecuteCommand action (flow_policy/execute): one goal at a time, the newest wins.

A goal runs its command on the node's :class:`~flow_policy_node.control.runtime.PolicyRuntime`,
which decides when it ends (task success, timeout, cancel, preemption by a newer goal, a
command or a reset); this adapter turns that into goal states, results and feedback. The
execute callback is a coroutine that awaits the outcome, so a goal holds no thread.
"""

from __future__ import annotations

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future

from flow_policy_msgs.action import ExecuteCommand
from flow_policy_node import names
from flow_policy_node.control.runtime import PREEMPTED

FEEDBACK_PERIOD_S = 0.1  # feedback, and how late a goal's timeout may be noticed


class ExecuteCommandServer:
    """Serves the action for ``node``, a PolicyNode: it reads ``node.runtime`` (None while
    unconfigured), ``node.label`` (its lifecycle state), ``node.last_error`` and ``node.state()``."""

    def __init__(self, node) -> None:
        self.node = node
        self.goal_handle = None  # the newest accepted goal
        self.server = ActionServer(
            node,
            ExecuteCommand,
            names.EXECUTE,
            execute_callback=self.execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            handle_accepted_callback=self.on_accepted,
            cancel_callback=self.on_cancel,
        )
        # On the node's clock: simulated seconds under use_sim_time, so a simulator running
        # slower than real time does not eat into a goal's timeout.
        self.timer = node.create_timer(FEEDBACK_PERIOD_S, self.on_timer, autostart=False)

    def on_accepted(self, goal_handle) -> None:
        # rclpy's single-goal pattern (ros2/examples, minimal_action_server single_goal):
        # abort the previous goal here; its coroutine ends when the runtime preempts it.
        if self.goal_handle is not None and self.goal_handle.is_active:
            self.goal_handle.abort()
        self.goal_handle = goal_handle
        goal_handle.execute()

    async def execute(self, goal_handle):
        node, req, result = self.node, goal_handle.request, ExecuteCommand.Result()
        if not goal_handle.is_active:  # a newer goal was accepted before this one started
            result.message = PREEMPTED
            return result
        if node.label != "active":
            goal_handle.abort()
            result.message = f"node is {node.label}, not active: {node.last_error}"
            return result
        done = Future()
        res = node.runtime.start_goal(req.command, req.timeout_s, done.set_result)
        result.resolved_task = res.task or ""
        if res.task is None:
            goal_handle.abort()
            result.message = res.message
            return result
        self.timer.reset()
        outcome = await done
        result.success, result.message = outcome.success, outcome.message
        result.elapsed_s, result.chunks = outcome.elapsed_s, outcome.chunks
        if not goal_handle.is_active:  # aborted when a newer goal was accepted
            return result
        if outcome.success:
            goal_handle.succeed()
        elif goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def on_cancel(self, goal_handle):
        runtime = self.node.runtime
        if goal_handle is self.goal_handle and runtime is not None:
            runtime.abort_goal("canceled: holding", hold="goal canceled")
        return CancelResponse.ACCEPT

    def on_timer(self) -> None:
        runtime = self.node.runtime
        progress = runtime.goal_step() if runtime is not None else None
        if progress is None:  # the goal ended (or the node was cleaned up)
            self.timer.cancel()
            return
        feedback = ExecuteCommand.Feedback(resolved_task=progress.task, state=self.node.state())
        feedback.progress, feedback.chunks = progress.progress, progress.chunks
        self.goal_handle.publish_feedback(feedback)
