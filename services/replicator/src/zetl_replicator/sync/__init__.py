"""Table sync: the initial copy, re-copies and discovery, and the data filter that scopes them."""
