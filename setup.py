"""Package discovery only (metadata lives in pyproject.toml).

The top-level folders `envs/`, `configs/` and `ros_bridge/` ship as import packages
`robocl_envs`, `robocl_configs` and `robocl_ros` (a bare `envs` name is taken on PyPI).
Their data folders (MJCF assets, courses, config groups, launch files) are listed as
packages so setuptools installs them without warnings.
"""

from pathlib import Path

from setuptools import find_packages, setup

MAPPED = {"robocl_envs": "envs", "robocl_configs": "configs", "robocl_ros": "ros_bridge"}
DATA = ["*.yaml", "*.xml", "*.csv", "*.json", "*.launch", "*.launch.py", "*.launch.xml", "*.stl", "*.obj", "*.png",
        "robocl_ros_node"]

packages = find_packages(include=["robocl", "robocl.*"])
package_dir = {"robocl": "robocl"}
package_data = {}
for name, folder in MAPPED.items():
    for sub in [Path(folder), *sorted(p for p in Path(folder).rglob("*") if p.is_dir())]:
        if sub.name == "__pycache__" or any(part.startswith(".") for part in sub.parts):
            continue
        pkg = ".".join([name, *sub.relative_to(folder).parts])
        packages.append(pkg)
        package_dir[pkg] = str(sub)
        package_data[pkg] = DATA

setup(packages=packages, package_dir=package_dir, package_data=package_data)
