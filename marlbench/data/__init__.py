"""Offline datasets: the ODIS HDF5 episode format, readers, and collection."""
