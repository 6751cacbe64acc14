"""Point the ROS wheels' exported CMake files at this venv's Python and numpy headers.

The wheels were built on a manylinux image; their ``*.cmake`` files under
``$VIRTUAL_ENV/share`` name ``/opt/python/cp311-cp311/...`` include directories that
do not exist here, which breaks ``rosidl_generate_interfaces``.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy


def main(venv: Path) -> int:
    py_include = sysconfig.get_paths()["include"]
    np_include = numpy.get_include()
    numpy_pat = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")
    numpy_old = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/core/include")
    py_pat = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
    changed = 0
    for path in (venv / "share").rglob("*.cmake"):
        text = path.read_text(errors="replace")
        if "/opt/python/" not in text:
            continue
        new = numpy_pat.sub(np_include, text)
        new = numpy_old.sub(np_include, new)
        new = py_pat.sub(py_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    print(f"[setup] rewrote include dirs in {changed} cmake files")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
