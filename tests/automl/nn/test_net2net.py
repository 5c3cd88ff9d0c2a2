import pytest
import torch
from torch import nn

from automl.nn import net2net


def test_widen_map_keeps_old_channels_and_counts_replicas():
    m = net2net.widen_map(4, 7, torch.Generator().manual_seed(0))
    assert m.index[:4].tolist() == [0, 1, 2, 3]
    counts = torch.bincount(m.index, minlength=4)
    assert torch.equal(m.replicas, counts[m.index].float())
    assert m.fresh.tolist() == [False] * 4 + [True] * 3


def test_wider_conv_then_consumer_preserves_the_function():
    torch.manual_seed(0)
    first, second = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 5, 1)
    wide_first, wide_second = nn.Conv2d(3, 9, 3, padding=1), nn.Conv2d(9, 5, 1)
    grow = net2net.widen_map(4, 9, torch.Generator().manual_seed(1))
    net2net.copy_conv(wide_first, first, grow, net2net.identity_map(3))
    net2net.copy_conv(wide_second, second, net2net.identity_map(5), grow)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(second(first(x)), wide_second(wide_first(x)), atol=1e-5)


def test_noise_breaks_symmetry_only_on_replicas():
    torch.manual_seed(0)
    conv, wide = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 6, 1)
    grow = net2net.widen_map(4, 6, torch.Generator().manual_seed(0))
    net2net.copy_conv(wide, conv, grow, net2net.identity_map(3), noise=0.1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(wide.weight[:4], conv.weight)
    assert not torch.equal(wide.weight[4:], conv.weight[grow.index[4:]])


@pytest.mark.parametrize("small, large", [(3, 5), (3, 7), (5, 7)])
def test_zero_padded_kernels_compute_the_same_convolution(small, large):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, small, padding=small // 2, groups=4)
    grown = nn.Conv2d(4, 4, large, padding=large // 2, groups=4)
    same = net2net.identity_map(4)
    net2net.copy_conv(grown, conv, same, same)
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(conv(x), grown(x), atol=1e-6)
    back = nn.Conv2d(4, 4, small, padding=small // 2, groups=4)
    net2net.copy_conv(back, grown, same, same)
    assert torch.equal(back.weight, conv.weight)  # centre taps


def test_identity_batchnorm_zeroes_a_branch_in_both_modes():
    norm = nn.BatchNorm2d(3)
    net2net.make_identity(norm)
    x = torch.randn(4, 3, 5, 5)
    assert norm.train()(x).abs().max() == 0 and norm.eval()(x).abs().max() == 0


def test_shrinking_keeps_the_most_important_channels():
    m = net2net.select_map(torch.tensor([0.1, 5.0, 0.2, 3.0]), 2)
    assert m.index.tolist() == [1, 3] and m.lossy


def test_replicas_split_their_outgoing_weights_unequally_into_shares_that_sum_to_one():
    m = net2net.widen_map(4, 10, torch.Generator().manual_seed(0))
    totals = torch.zeros(4).index_add_(0, m.index, m.shares)
    assert torch.allclose(totals, torch.ones(4))
    replicated = m.replicas > 1
    assert len(set(m.shares[replicated].tolist())) == int(replicated.sum())  # no two shares alike
    assert torch.equal(m.shares[~replicated], torch.ones(int((~replicated).sum())))


def _widened_pair(unequal):
    torch.manual_seed(0)
    parent = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 1))
    child = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 1))
    grow = net2net.widen_map(4, 8, torch.Generator().manual_seed(1), unequal=unequal)
    net2net.copy_conv(child[0], parent[0], grow, net2net.identity_map(3))
    net2net.copy_conv(child[2], parent[2], net2net.identity_map(5), grow)
    return parent, child, grow


def _one_sgd_step(model, x):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(x).square().mean().backward()
    optimizer.step()


def test_unequal_split_keeps_the_function_and_replicas_diverge_after_one_step():
    parent, child, grow = _widened_pair(unequal=True)
    x = torch.randn(4, 3, 8, 8)
    assert (parent(x) - child(x)).abs().max() < 1e-5
    _one_sgd_step(child, x)
    for j in range(4, 8):
        assert not torch.equal(child[0].weight[j], child[0].weight[grow.index[j]])


def test_an_equal_split_leaves_replicas_identical_which_is_why_we_do_not_use_it():
    _, child, grow = _widened_pair(unequal=False)
    _one_sgd_step(child, torch.randn(4, 3, 8, 8))
    for j in range(4, 8):
        assert torch.equal(child[0].weight[j], child[0].weight[grow.index[j]])


def test_concatenated_maps_offset_their_parts_and_missing_channels_keep_their_init():
    a, b = net2net.identity_map(2), net2net.missing_map(3)
    both = net2net.concat_maps([a, b], [2, 3])
    assert both.index[:2].tolist() == [0, 1] and both.missing.tolist() == [False, False, True, True, True]
    parent, child = nn.Conv2d(5, 2, 1), nn.Conv2d(5, 2, 1)
    own = child.weight.detach().clone()
    net2net.copy_conv(child, parent, net2net.identity_map(2), both)
    assert torch.equal(child.weight[:, 2:], own[:, 2:]) and torch.equal(child.weight[:, :2], parent.weight[:, :2])


def test_lossy_labels_read_back():
    assert net2net.is_lossy(net2net.lossy("cells 1->2")) and not net2net.is_lossy("filters 8->16")
