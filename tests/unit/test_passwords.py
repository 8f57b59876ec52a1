"""The tests hash passwords cheaply (tests/conftest.py); the product must not."""

from __future__ import annotations

from argon2 import extract_parameters, profiles

from tests.conftest import PRODUCT_HASHER


def test_the_product_hashes_passwords_with_argon2ids_recommended_parameters() -> None:
    parameters = extract_parameters(PRODUCT_HASHER.hash("correct horse battery staple"))
    assert parameters.type is profiles.RFC_9106_LOW_MEMORY.type
    assert parameters.memory_cost >= profiles.RFC_9106_LOW_MEMORY.memory_cost
    assert parameters.time_cost >= profiles.RFC_9106_LOW_MEMORY.time_cost
    assert parameters.parallelism == profiles.RFC_9106_LOW_MEMORY.parallelism
