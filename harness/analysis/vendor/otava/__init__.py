"""Apache Otava 0.8.0's E-divisive change-point detector (Apache-2.0; LICENSE, NOTICE here).

Only `analysis.py` and `change_point_divisive/`, which need numpy and scipy alone; why
vendored instead of depended on: `harness.analysis.changepoints`' docstring."""
