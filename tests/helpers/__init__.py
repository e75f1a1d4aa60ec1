"""Test infrastructure that never ships: a real X screen, local server processes."""
