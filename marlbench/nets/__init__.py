"""Shared network building blocks of the offline multi-task family."""
