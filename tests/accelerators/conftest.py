"""Fixtures for accelerator tests."""

import pytest
import torch

import search_spaces
from tests.conftest import SMALLEST_MOBILE


@pytest.fixture()
def tiny_model(small_mnist):
    """Factory: the smallest mobile model for the embedded data, seeded."""
    def build(genome: str = SMALLEST_MOBILE, seed: int = 0):
        space = search_spaces.get("mobile")
        torch.manual_seed(seed)
        return space.build(space.parse(genome), small_mnist.input_shape, small_mnist.num_classes)
    return build
