"""Results: the on-disk store, aggregation, rendering."""
