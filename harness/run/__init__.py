"""Run infrastructure every layer may use: the run's clock, its journal, its run folder.

Imports no other harness package (tests/test_layering.py checks it).
"""
