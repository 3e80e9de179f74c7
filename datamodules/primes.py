"""Primality for validating a modular-arithmetic config: pure Python, no torch (the monitor validates before launch)."""

from __future__ import annotations


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True
