from glob import glob

from setuptools import find_packages, setup

PACKAGE = "flow_policy_node"


def share(subdir: str, pattern: str = "*") -> tuple[str, list[str]]:
    return (f"share/{PACKAGE}/{subdir}", [p for p in glob(f"{subdir}/{pattern}")])


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        share("launch", "*.launch.py"),
        share("config", "*.*"),
        share("rviz", "*.rviz"),
        share("description", "*.*"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="flow_policy developers",
    maintainer_email="dev@flow-policy.invalid",
    description="Flow-matching robot policy for ROS 2: record demos, convert, train, deploy, evaluate.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "flow-policy = flow_policy_node.cli:main",
            "policy_node = flow_policy_node.ros.policy_node:main",
            "sim_node = flow_policy_node.ros.sim_node:main",
            "teleop_node = flow_policy_node.ros.teleop_node:main",
            "recorder_node = flow_policy_node.ros.recorder_node:main",
        ],
    },
)
