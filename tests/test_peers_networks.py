"""Every peer, from its defaults, trains the tiny MLP, CNN and GCN tasks (no NaN, loss down)."""
import numpy as np
import pytest

from optimizer_list import PEERS_AT_DEFAULTS, make
from strategies_peers import run_network
from test_optim_networks import cnn_task, gcn_task, mlp_task


@pytest.mark.parametrize("task", [mlp_task, cnn_task, gcn_task], ids=["mlp", "cnn", "gcn"])
@pytest.mark.parametrize("name", PEERS_AT_DEFAULTS)
def test_peers_reduce_the_training_loss_from_their_defaults(task, name):
    """100 full-batch steps: DoG's first steps are tiny by design (r_ε = 10⁻⁶(1 + ‖x_0‖))
    and its step grows geometrically, so it needs more steps than the LS methods' 30."""
    net, x, y = task()
    params = net.init(3)
    first = net.evaluate(params, x, y).loss
    params, state, _ = run_network(make(name), net, params, x, y, 100)
    last = net.evaluate(params, x, y).loss
    assert np.isfinite(last) and last < 0.7 * first, (first, last)
    assert state.step_sizes.shape == (len(net.blocks),) and np.all(state.step_sizes >= 0)
    if name == "dog-averaged":  # the averaged iterate is a usable model too
        assert net.evaluate(state.average, x, y).loss < first
