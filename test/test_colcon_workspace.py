"""Issue 2: a ROS 2 user's colcon workspace builds both packages from this repository.

The repository is laid out under ``src/`` exactly as a user clones it, built with colcon
(from PyPI) using the command the README gives, and the install space is sourced in a
fresh shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
README_BUILD = "colcon build --base-paths src src/flow_policy/flow_policy_msgs"


def repo_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    )
    return [f for f in out.stdout.splitlines() if (REPO / f).is_file()]


@pytest.mark.slow
def test_colcon_build_and_ament_index(tmp_path: Path) -> None:
    assert README_BUILD in (REPO / "README.md").read_text(), "README must give the tested colcon command"
    src = tmp_path / "ws" / "src" / "flow_policy"
    for rel in repo_files():
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest)
    ws = tmp_path / "ws"
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "AMENT_PREFIX_PATH": sys.prefix,
        "CMAKE_PREFIX_PATH": sys.prefix,
    }
    build = subprocess.run(
        f"{README_BUILD} --cmake-args -DBUILD_TESTING=OFF",
        shell=True,
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    probe = (
        "from ament_index_python.packages import get_package_share_directory, get_package_prefix\n"
        "import os, flow_policy_msgs.msg\n"
        "print(get_package_share_directory('flow_policy_node'))\n"
        "prefix = get_package_prefix('flow_policy_node')\n"
        "print(os.path.join(prefix, 'lib', 'flow_policy_node', 'policy_node'))\n"
        "print(flow_policy_msgs.msg.__file__)\n"
    )
    shell = f'source install/setup.bash && {sys.executable} -c "{probe}"'
    result = subprocess.run(
        ["bash", "-c", shell], cwd=ws, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    share, script, msgs = result.stdout.split()
    assert Path(share) == ws / "install" / "flow_policy_node" / "share" / "flow_policy_node"
    for sub in ("launch", "config", "description", "rviz", "package.xml"):
        assert (Path(share) / sub).exists(), f"{sub} not installed into the share directory"
    assert (Path(share) / "config" / "fastdds_localhost.xml").is_file()
    assert os.access(script, os.X_OK), f"console script not installed at {script}"
    assert Path(msgs).is_relative_to(ws / "install" / "flow_policy_msgs")
