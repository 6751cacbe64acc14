"""MuJoCo simulator: scene, episodes of the tasks (defined in flow_policy_node/tasks.py),
scripted expert, closed-loop evaluation (no ROS imports).

Rendering is offscreen; EGL is the default backend (set MUJOCO_GL=osmesa to use OSMesa).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
