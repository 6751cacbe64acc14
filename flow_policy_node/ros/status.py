"""PolicyStatus and /diagnostics messages from the policy runtime's state."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from flow_policy_msgs.msg import PolicyStatus
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.control.runtime import DISABLED, HOLDING, IDLE, UNCONFIGURED, PolicyRuntime


def policy_state(lifecycle: str, enabled: bool, runtime: PolicyRuntime | None) -> str:
    """The PolicyStatus state of a node in lifecycle state ``lifecycle`` (its label).

    enabled: the node's switch (set_enabled), which holds across configure and cleanup.
    """
    if not enabled:
        return DISABLED
    if runtime is None or lifecycle in ("unconfigured", "finalized"):
        return UNCONFIGURED
    if lifecycle != "active":
        return IDLE  # configured, not yet (or no longer) active
    return runtime.state()


def node_error(runtime: PolicyRuntime | None, configure_error: str) -> str:
    """The error to report: a failed configure, else the runtime's (a refused command, a
    failed inference); "" when none."""
    return configure_error or (runtime.last_error if runtime is not None else "")


def status_msg(runtime: PolicyRuntime | None, state: str, configure_error: str, stamp: Time) -> PolicyStatus:
    """``state`` comes from the node (it knows the lifecycle: :func:`policy_state`), the
    rest from ``runtime``; ``last_error`` is :func:`node_error`, else the holding reason."""
    last_error = node_error(runtime, configure_error)
    msg = PolicyStatus(state=state, enabled=state != DISABLED, observation_age_s=-1.0)
    msg.header.stamp = stamp
    if runtime is not None:
        t = runtime.timing
        msg.command, msg.chunk_id, msg.enabled = runtime.task, runtime.chunk_id, runtime.enabled
        msg.inference_ms, msg.delay_ms, msg.budget_ms = t.inference_ms, t.delay_ms, t.budget_ms
        msg.chunks, msg.late_chunks = t.chunks, t.late_chunks
        msg.observation_age_s = runtime.observation_age()
        if not last_error and state == HOLDING:
            last_error = runtime.holding_reason
    msg.last_error = last_error
    return msg


def diagnostics_msg(
    status: PolicyStatus, runtime: PolicyRuntime | None, configure_error: str, cfg: PolicyNodeConfig
) -> DiagnosticArray:
    """ERROR for an error (:func:`node_error`: a refused command, a failed configure), WARN
    while holding or late; the values say whether free-text commands resolve yet."""
    error = node_error(runtime, configure_error)
    free_text = runtime.resolver.free_text_status() if runtime is not None else "not configured"
    diag = DiagnosticStatus(name="flow_policy_node: policy", hardware_id=cfg.checkpoint or "none")
    late = status.chunks > 0 and status.delay_ms > status.budget_ms
    if error or status.state == UNCONFIGURED:
        diag.level, diag.message = DiagnosticStatus.ERROR, error or "not configured"
    elif status.state == HOLDING:
        diag.level, diag.message = DiagnosticStatus.WARN, f"holding: {status.last_error}"
    elif late:
        diag.level = DiagnosticStatus.WARN
        diag.message = (
            f"chunks late: {status.delay_ms:.0f} ms from observation to chunk, "
            f"budget {status.budget_ms:.0f} ms"
        )
    else:
        diag.level, diag.message = DiagnosticStatus.OK, status.state
    values = {
        "state": status.state,
        "command": status.command,
        "chunk_id": status.chunk_id,
        "inference_ms": f"{status.inference_ms:.1f}",
        "delay_ms": f"{status.delay_ms:.1f}",
        "budget_ms": f"{status.budget_ms:.1f}",
        "late_chunks": f"{status.late_chunks} of {status.chunks}",
        "observation_age_s": f"{status.observation_age_s:.3f}",
        "chunk_blending": cfg.chunk_blending,
        "free_text_commands": free_text,
    }
    diag.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    msg = DiagnosticArray(status=[diag])
    msg.header.stamp = status.header.stamp
    return msg
