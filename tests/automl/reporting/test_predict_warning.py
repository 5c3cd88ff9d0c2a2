"""`predict` warns when an image is unlike the training data: checked on the real test digits
(never flagged), the same digits inverted (flagged as inverted polarity) and blank images."""

from __future__ import annotations

import torch

from automl.reporting.loader import unlike_training


def _card(data) -> dict:
    return {"normalisation": {"mean": list(data.mean), "std": list(data.std)}}


def test_real_digits_pass_and_inverted_or_blank_ones_are_flagged(mnist5k):
    card = _card(mnist5k)
    mean, std = mnist5k.mean[0], mnist5k.std[0]
    digits = mnist5k.test.x[:300]
    assert [unlike_training(x, card) for x in digits].count(None) == len(digits)
    inverted = ((1 - (digits * std + mean)) - mean) / std  # black digits on white paper
    warnings = [unlike_training(x, card) for x in inverted]
    assert all(w is not None and "inverted polarity" in w for w in warnings)
    blank = torch.full_like(digits[0], (0.5 - mean) / std)
    assert "std 0.00" in unlike_training(blank, card)
