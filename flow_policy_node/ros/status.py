"""PolicyStatus and /diagnostics messages from the policy runtime's state."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from flow_policy_msgs.msg import PolicyStatus
from flow_policy_node.control.runtime import DISABLED, HOLDING, UNCONFIGURED, PolicyRuntime


def status_msg(runtime: PolicyRuntime | None, state: str, last_error: str, stamp: Time) -> PolicyStatus:
    """``state``/``last_error`` come from the node (it knows the lifecycle); the rest from ``runtime``."""
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
    status: PolicyStatus, error: str, hardware_id: str, chunk_blending: str, free_text: str
) -> DiagnosticArray:
    """ERROR for ``error`` (a refused command, a failed configure), WARN while holding or late.

    free_text: whether free-text commands resolve yet (``CommandResolver.free_text_status``).
    """
    diag = DiagnosticStatus(name="flow_policy_node: policy", hardware_id=hardware_id or "none")
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
        "chunk_blending": chunk_blending,
        "free_text_commands": free_text,
    }
    diag.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    msg = DiagnosticArray(status=[diag])
    msg.header.stamp = status.header.stamp
    return msg
