"""Helpers for tests and benchmarks (throwaway local servers); not used at run time."""
