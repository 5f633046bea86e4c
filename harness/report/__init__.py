"""Run journal, and the reports built from it."""
