"""RViz markers for the policy node: the gripper path of the chunk being executed."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray


def predicted_path(points: np.ndarray, frame_id: str, stamp: Time) -> MarkerArray:
    """A line and dots through ``points`` (N, 3), positions of the tool in ``frame_id``."""
    line = Marker(ns="predicted_path", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
    line.header.frame_id, line.header.stamp = frame_id, stamp
    line.scale.x = 0.005
    line.color = ColorRGBA(r=0.1, g=0.8, b=1.0, a=0.9)
    line.pose.orientation.w = 1.0
    line.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in points]
    dots = Marker(ns="predicted_path", id=1, type=Marker.SPHERE_LIST, action=Marker.ADD)
    dots.header, dots.points, dots.pose.orientation.w = line.header, line.points, 1.0
    dots.scale.x = dots.scale.y = dots.scale.z = 0.012
    dots.color = ColorRGBA(r=1.0, g=0.6, b=0.1, a=0.9)
    return MarkerArray(markers=[line, dots])
