"""Tools for the operator of a running server."""
