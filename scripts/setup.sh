#!/usr/bin/env bash
# Create .venv with everything flow_policy needs, from nothing. Idempotent: each step
# is skipped when the inputs it depends on have not changed since it last ran.
#
#   scripts/setup.sh                                  # what `make setup` runs
#   ROS2_TOOLS_DIR=../shared/ros2-tools scripts/setup.sh  # plus extra ROS 2 tools
#
# With a system ROS 2 sourced (ROS_DISTRO set), the venv sees its packages
# (--system-site-packages) and no ROS wheels are installed.
#
# ROS2_TOOLS_DIR names a folder of extra ROS 2 tools that PyPI lacks (the `ros2` CLI,
# launch, launch_ros): its wheels/*.whl are installed into the venv and each interface
# package under its src/ is built into the venv like flow_policy_msgs. The folder is
# used in place, never copied into the repository. .ci/run names ../shared/ros2-tools
# when it exists; without the tools, the tests that need them skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
STAMPS=$VENV/.stamps

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp() { mkdir -p "$STAMPS"; echo "$2" >"$STAMPS/$1"; }

# 1. Debian packages: a compiler and cmake for the interface package, Mesa for offscreen rendering.
APT_PKGS="cmake gcc g++ make libosmesa6 libegl1 libgl1 libegl-mesa0 libgles2"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  say "installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# 2. The venv.
if [ -n "${ROS_DISTRO:-}" ]; then ROS_MODE=system; else ROS_MODE=wheels; fi
if [ ! -x "$VENV/bin/python" ] || ! fresh venv-mode "$ROS_MODE"; then
  rm -rf "$VENV"
  say "creating $VENV (ROS 2 from: $ROS_MODE${ROS_DISTRO:+ $ROS_DISTRO})"
  if [ "$ROS_MODE" = system ]; then "$PY" -m venv --system-site-packages "$VENV"; else "$PY" -m venv "$VENV"; fi
  stamp venv-mode "$ROS_MODE"
fi
pip_install() {
  # Quiet, but keep real errors: drop only the notes about absent local index folders.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
  return "${PIPESTATUS[0]}"
}

# 3. Python packages. torch first and pinned so that nothing pulls a CUDA build.
h=$(hash_of requirements.txt requirements-dev.txt scripts/ros-wheels.txt)
if ! fresh pip "$h-$ROS_MODE"; then
  say "installing Python packages (torch 2.13.0 CPU, ROS 2 $ROS_MODE, tools)"
  pip_install torch==2.13.0
  pip_install -r requirements.txt -r requirements-dev.txt
  if [ "$ROS_MODE" = wheels ]; then pip_install -r scripts/ros-wheels.txt; fi
  stamp pip "$h-$ROS_MODE"
fi

# 4. flow_policy_msgs, built with plain cmake into the venv prefix.
build_interfaces() {  # NAME SOURCE_DIR: an ament_cmake interface package, into the venv prefix
  local name=$1 src=$2 build=$VENV/build/$1 log=$VENV/build-$1.log
  if [ "$ROS_MODE" = wheels ]; then
    # The wheels' exported cmake files name the include dirs of the machine that built them.
    "$VENV/bin/python" scripts/fix_wheel_cmake.py "$VENV"
    export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
  fi
  export PATH=$VENV/bin:$PATH
  rm -rf "$build"
  cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
    -DPython3_EXECUTABLE="$VENV/bin/python" >"$log" 2>&1 &&
    cmake --build "$build" -j"$(nproc)" >>"$log" 2>&1 &&
    cmake --install "$build" >>"$log" 2>&1 ||
    { tail -30 "$log"; echo "$name failed to build; full log: $log" >&2; exit 1; }
}
h=$(hash_of flow_policy_msgs/CMakeLists.txt flow_policy_msgs/package.xml flow_policy_msgs/*/*)
if ! fresh msgs "$h" || ! "$VENV/bin/python" -c "import flow_policy_msgs.msg" 2>/dev/null; then
  say "building flow_policy_msgs"
  build_interfaces flow_policy_msgs flow_policy_msgs
  stamp msgs "$h"
fi

# 4b. Extra ROS 2 tools (ROS2_TOOLS_DIR, see the top): wheels, then interface packages.
if [ -n "${ROS2_TOOLS_DIR:-}" ]; then
  tools=$(cd "$ROS2_TOOLS_DIR" 2>/dev/null && pwd) || { echo "ROS2_TOOLS_DIR=$ROS2_TOOLS_DIR is not a folder" >&2; exit 1; }
  if [ "$ROS_MODE" = system ]; then
    say "ROS2_TOOLS_DIR ignored: the sourced ROS 2 $ROS_DISTRO provides ros2, launch and launch_ros"
  else
    wheels=("$tools"/wheels/*.whl)
    [ -e "${wheels[0]}" ] || { echo "ROS2_TOOLS_DIR=$tools has no wheels/*.whl" >&2; exit 1; }
    h=$(hash_of "${wheels[@]}")
    if ! fresh tools "$h" || [ ! -x "$VENV/bin/ros2" ]; then
      say "installing ROS 2 tools from $tools (${#wheels[@]} wheels)"
      pip_install --no-deps --force-reinstall "${wheels[@]}"
      pip_install osrf-pycommon psutil
      stamp tools "$h"
    fi
    for src in "$tools"/src/*/; do
      [ -f "$src/package.xml" ] || continue
      name=$(basename "$src")
      h=$(hash_of "$src"CMakeLists.txt "$src"package.xml "$src"*/*)
      if ! fresh "tools-$name" "$h" || ! "$VENV/bin/python" -c "import $name" 2>/dev/null; then
        say "building $name (from $tools)"
        build_interfaces "$name" "$src"
        stamp "tools-$name" "$h"
      fi
    done
  fi
fi

# 5. This package: editable, plus what an editable install does not create and an ament
#    prefix has: the share directory, the ament index marker and lib/<package>/<executable>
#    (where launch_ros looks for a Node's executable). Links, so edits need no reinstall.
#    Files are linked one by one, as `colcon build --symlink-install` does: `ros2 launch
#    PACKAGE FILE` walks share/PACKAGE without following a linked directory.
SHARED_DIRS="launch config rviz description"
h=$({ cat setup.py setup.cfg package.xml; ls $SHARED_DIRS; } | sha256sum | cut -c1-16)
share=$VENV/share/flow_policy_node
if ! fresh pkg "$h" || [ ! -e "$share/package.xml" ] || [ ! -e "$VENV/lib/flow_policy_node/policy_node" ] ||
  [ -L "$share/launch" ]; then
  say "installing flow_policy_node (editable)"
  pip_install --no-deps --no-build-isolation -e .
  mkdir -p "$share" "$VENV/share/ament_index/resource_index/packages"
  ln -sfn "$ROOT/package.xml" "$share/package.xml"
  for d in $SHARED_DIRS; do
    # An older setup linked the directory itself: remove that link (never what it points to).
    if [ -L "$share/$d" ]; then rm "$share/$d"; fi
    rm -rf "${share:?}/$d"
    mkdir -p "$share/$d"
    for f in "$ROOT/$d"/*; do ln -sfn "$f" "$share/$d/$(basename "$f")"; done
  done
  touch "$VENV/share/ament_index/resource_index/packages/flow_policy_node"
  mkdir -p "$VENV/lib/flow_policy_node"
  for exe in flow-policy policy_node sim_node teleop_node recorder_node; do
    ln -sfn "$VENV/bin/$exe" "$VENV/lib/flow_policy_node/$exe"
  done
  stamp pkg "$h"
fi
say "ready: $VENV"
