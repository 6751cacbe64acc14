"""A configuration dataclass as ROS parameters: one parameter per field, read back typed."""

from __future__ import annotations

import typing
from dataclasses import fields
from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor

C = TypeVar("C")


def declare_config(node, cls: type[C]) -> C:
    """Declare every field of ``cls`` on ``node`` with the field's default (YAML, -p and
    launch files set them) and build ``cls`` from the values."""
    defaults, hints, values = cls(), typing.get_type_hints(cls), {}
    for f in fields(cls):
        # dynamic typing: a YAML "1" for a float field arrives as an integer
        descriptor = ParameterDescriptor(dynamic_typing=True)
        value = node.declare_parameter(f.name, getattr(defaults, f.name), descriptor).value
        if hints[f.name] is float:
            value = float(value)
        elif hints[f.name] == list[float]:
            value = [float(v) for v in value]
        values[f.name] = value
    return cls(**values)
