"""Package layout that pyproject.toml cannot express: the top-level ``signatures/`` data
folder ships inside the wheel as the package ``cra_fw.signatures``."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["cra_fw", "cra_fw.*"]), "cra_fw.signatures"],
    package_dir={"cra_fw.signatures": "signatures"},
)
