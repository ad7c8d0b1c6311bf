import torch

from noharm.nn import ConditionalBiasNet, EnsembleBatchNorm, EnsembleLinear
from noharm.nn.layers import dropout


def test_ensemble_linear_is_per_member_matmul():
    lin = EnsembleLinear([1, 2, 3], 4, 5)
    x = torch.randn(3, 7, 4)
    out = lin(x)
    for e in range(3):
        torch.testing.assert_close(out[e], x[e] @ lin.weight[e] + lin.bias[e])


def test_members_init_depends_only_on_their_seed():
    a, b = EnsembleLinear([1, 2], 4, 5), EnsembleLinear([9, 2], 4, 5)
    assert torch.equal(a.weight[1], b.weight[1]) and not torch.equal(a.weight[0], b.weight[0])


def test_batchnorm_matches_torch_per_member():
    bn = EnsembleBatchNorm(2, 3)
    ref = [torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)]
    x = torch.randn(2, 10, 3)
    out = bn(x)
    for e in range(2):
        torch.testing.assert_close(out[e], ref[e](x[e]))
        torch.testing.assert_close(bn.running_var[e, 0], ref[e].running_var)
    bn.eval()
    for r in ref:
        r.eval()
    torch.testing.assert_close(bn(x)[1], ref[1](x[1]))


def test_dropout_rate_scale_and_reproducibility():
    x = torch.ones(50, 100, 40)
    out = dropout(x, 0.2, True, torch.Generator().manual_seed(0))
    assert abs((out == 0).float().mean().item() - 0.2) < 0.005
    assert abs(out.mean().item() - 1.0) < 0.01
    again = dropout(x, 0.2, True, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(dropout(x, 0.2, False, None), x)


def test_bias_vectors_change_the_label_output():
    torch.manual_seed(0)
    net = ConditionalBiasNet([1], 5, 3, label_hidden=[8, 8], attr_hidden=[8, 8], n_bias=2)
    net.eval()
    x = torch.randn(1, 20, 5)
    with_bias, _ = net(x)
    without, _ = net(x, use_bias=False)
    assert not torch.allclose(with_bias, without)
    assert set(net.bias_vectors(net.attr(net.scale(x))[1])) == {-1, -2}
    # the bias reaches the label network only through the projections
    with torch.no_grad():
        for p in net.proj.parameters():
            p.zero_()
    torch.testing.assert_close(net(x)[0], net(x, use_bias=False)[0])
