"""Board shells and pin files (ULX3S)."""
