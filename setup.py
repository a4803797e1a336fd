"""Package discovery only (metadata lives in pyproject.toml).

The top-level folders `envs/`, `configs/` and `ros_bridge/` ship as import packages
`robocl_envs`, `robocl_configs` and `robocl_ros` (a bare `envs` name is taken on PyPI).
"""

from setuptools import find_packages, setup

MAPPED = {"robocl_envs": "envs", "robocl_configs": "configs", "robocl_ros": "ros_bridge"}

packages = find_packages(include=["robocl", "robocl.*"])
package_dir = {"robocl": "robocl"}
for name, folder in MAPPED.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "robocl_configs": ["*.yaml", "**/*.yaml"],
        "robocl_envs": ["assets/*.xml", "assets/**/*", "courses/*.csv"],
        "robocl_ros": ["launch/*", "launch/**/*"],
    },
    include_package_data=True,
)
