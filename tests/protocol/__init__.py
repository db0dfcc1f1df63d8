"""Tests of the Electrum protocol layer."""
