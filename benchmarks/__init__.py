"""Benchmarks of convexrelu against reference implementations (not installed with the package).

``python -m benchmarks`` runs the enumeration benchmark (:mod:`benchmarks.bench_enumeration`)
and lists the other ``bench_*.py`` scripts of this folder.
"""
