"""The ``marlbench`` command line (Typer + rich)."""
