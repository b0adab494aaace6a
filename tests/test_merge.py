"""Merge functions on tiny hand-made state dicts, and BatchNorm re-estimation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xlvision.integrate.merge import average, task_arithmetic, task_vector, ties, trim
from xlvision.models.batchnorm import reestimate_batchnorm
from xlvision.models.registry import build_backbone


def t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


BASE = {"w": t(1.0, 1.0, 1.0, 1.0), "b": t(0.0, 0.0), "n": torch.tensor(7)}
A = {"w": t(2.0, 1.0, 0.0, 1.5), "b": t(0.5, -1.0), "n": torch.tensor(3)}
B = {"w": t(4.0, 0.0, 1.0, 0.5), "b": t(-0.5, 1.0), "n": torch.tensor(9)}


def same_state(actual: dict, expected: dict) -> bool:
    """True when keys and values match; a mismatch raises with the tensor's name."""
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], torch.as_tensor(value), msg=key)
    return True


def test_task_vector_is_the_difference_of_float_entries():
    assert same_state(task_vector(BASE, A), {"w": t(1.0, 0.0, -1.0, 0.5), "b": t(0.5, -1.0)})


def test_average_by_hand_and_integer_buffers_from_the_first_state():
    assert same_state(
        average([A, B]), {"w": t(3.0, 0.5, 0.5, 1.0), "b": t(0.0, 0.0), "n": torch.tensor(3)}
    )


def test_average_of_identical_models_is_the_identity():
    torch.manual_seed(0)
    state = build_backbone({"name": "net"}).state_dict()
    merged = average([state, {k: v.clone() for k, v in state.items()}, state])
    assert merged.keys() == state.keys()
    assert all(torch.equal(merged[k], state[k]) for k in state)


def test_task_arithmetic_by_hand():
    # τ_A = w (1, 0, -1, .5), b (.5, -1); τ_B = w (3, -1, 0, -.5), b (-.5, 1)
    assert same_state(
        task_arithmetic(BASE, [A, B], lam=0.5),
        {"w": t(3.0, 0.5, 0.5, 1.0), "b": t(0.0, 0.0), "n": torch.tensor(7)},
    )


def test_task_arithmetic_with_lambda_zero_is_the_base():
    merged = task_arithmetic(BASE, [A, B], lam=0.0)
    assert all(torch.equal(merged[k], BASE[k]) for k in BASE)


def test_trim_keeps_the_top_k_percent_over_all_tensors():
    vector = {"w": t(1.0, -4.0, 0.5, 2.0), "b": t(-3.0, 0.1, 0.2, 0.3)}
    # 8 entries, 25 % → the two largest magnitudes overall: -4 (w) and -3 (b)
    assert same_state(trim(vector, 25), {"w": t(0.0, -4.0, 0.0, 0.0), "b": t(-3.0, 0.0, 0.0, 0.0)})
    assert same_state(trim(vector, 100), vector)
    with pytest.raises(ValueError, match="k=0"):
        trim(vector, 0)


def test_ties_trims_elects_signs_and_takes_the_disjoint_mean():
    base = {"w": torch.zeros(5), "n": torch.tensor(1)}
    tasks = [
        {"w": t(3.0, -2.0, 0.1, 1.0, 2.0), "n": torch.tensor(5)},
        {"w": t(1.0, 4.0, 5.0, -3.0, -2.0), "n": torch.tensor(5)},
        {"w": t(-2.0, -1.0, 0.2, -0.5, 1.0), "n": torch.tensor(5)},
    ]
    # k=60 %: keep the 3 largest of 5 magnitudes in each task vector
    #   task 0: (3, -2, 0, 0, 2)   task 1: (0, 4, 5, -3, 0)   task 2: (-2, -1, 0, 0, 1)
    # summed: (1, 1, 5, -3, 3) → elected signs (+, +, +, -, +)
    # agreeing entries: e0 {3} → 3; e1 {4} → 4; e2 {5} → 5; e3 {-3} → -3; e4 {2, 1} → 1.5
    merged = ties(base, tasks, k=60, lam=1.0)
    assert same_state(merged, {"w": t(3.0, 4.0, 5.0, -3.0, 1.5), "n": torch.tensor(1)})
    half = ties(base, tasks, k=60, lam=0.5)
    torch.testing.assert_close(half["w"], t(1.5, 2.0, 2.5, -1.5, 0.75))


def test_ties_entry_with_no_elected_sign_stays_at_base():
    base = {"w": t(1.0, 1.0)}
    merged = ties(base, [{"w": t(2.0, 3.0)}, {"w": t(0.0, 3.0)}], k=100, lam=1.0)
    # entry 0: +1 and -1 cancel, no sign; entry 1: both +2 → mean 2
    assert same_state(merged, {"w": t(1.0, 3.0)})


def test_ties_of_one_untrimmed_task_is_task_arithmetic():
    assert same_state(ties(BASE, [A], k=100, lam=0.7), task_arithmetic(BASE, [A], lam=0.7))


def test_mismatched_keys_are_refused():
    with pytest.raises(ValueError, match="keys"):
        average([A, {"w": A["w"]}])


def test_batchnorm_reestimation_matches_the_data_statistics():
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Conv2d(1, 3, 1, bias=False), nn.BatchNorm2d(3), nn.Dropout(0.9))
    with torch.no_grad():
        layer[0].weight.copy_(t(1.0, 2.0, -1.0).view(3, 1, 1, 1))
    bn = layer[1]
    bn.momentum = 0.3
    bn.running_mean.fill_(100.0)
    data = [torch.randn(16, 1, 4, 4) * 2 + 5 for _ in range(4)]
    layer.eval()
    seen = reestimate_batchnorm(layer, data)
    assert seen == 64
    pixels = torch.cat(data).flatten()
    expected_mean = t(1.0, 2.0, -1.0) * pixels.mean()
    expected_var = t(1.0, 4.0, 1.0) * pixels.var()
    # momentum None: the cumulative average of the per-batch statistics
    batch_var = torch.stack([b.flatten().var() for b in data]).mean()
    torch.testing.assert_close(bn.running_mean, expected_mean)
    torch.testing.assert_close(bn.running_var, t(1.0, 4.0, 1.0) * batch_var)
    assert torch.allclose(bn.running_var, expected_var, rtol=0.1)
    assert bn.momentum == 0.3 and not layer.training  # restored


def test_batchnorm_reestimation_on_a_backbone_moves_every_layer():
    torch.manual_seed(0)
    net = build_backbone({"name": "net"})
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    reestimate_batchnorm(net, [torch.rand(8, 1, 28, 28) for _ in range(2)])
    after = net.state_dict()
    assert before and all(not torch.equal(before[k], after[k]) for k in before)
    assert net.training  # restored
