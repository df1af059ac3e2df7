"""Build of the optional compiled helper (everything else is in pyproject.toml).

``w2vspark_native`` holds the compiled minibatch step (skip-gram and CBOW), the scatter-add, CBOW's context
sums and a task's row deltas; when no C compiler is available the build is skipped (optional=True) and w2vspark
runs its numpy code: the same math (the scatter-add, context sums and deltas bit for bit, the step equal to
float32 rounding).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("w2vspark_native", sources=["native/w2vspark_native.c"],
                             extra_compile_args=["-O3", "-ffp-contract=off"], optional=True)])
