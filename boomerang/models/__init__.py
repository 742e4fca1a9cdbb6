"""Typed models that cross a boundary: workflow, activity, compute, HTTP."""
