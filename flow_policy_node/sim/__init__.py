"""MuJoCo simulator: scene, tasks, scripted expert, closed-loop evaluation (no ROS imports).

Rendering is offscreen; EGL is the default backend (set MUJOCO_GL=osmesa to use OSMesa).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
