"""Test doubles: real servers that play a vendor API, checked against its spec."""
