"""Build of the optional compiled helper (everything else is in pyproject.toml).

``w2vspark_native`` holds the compiled skip-gram minibatch step and the kernel's scatter-add; when no C compiler is available the build is
skipped (optional=True) and w2vspark uses its numpy code path, with bit-identical results.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("w2vspark_native", sources=["native/w2vspark_native.c"],
                             extra_compile_args=["-O3", "-ffp-contract=off"], optional=True)])
