"""`device=ddp_sim`: two CPU processes under DDP (gloo), run as a user runs them."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

# Enough training for the metrics to settle (about 95 % accuracy), in seconds. Batch norm is
# on and synchronized (an all-reduce of the batch moments on CPU); dropout is off, as each
# process draws its own masks. Then the two processes compute what one does up to rounding
# (the order of sums differs), which a short, unsettled run would amplify into a point or so.
SETUP = (
    "debug=fast",
    "data.train_per_class=300",
    "data.test_per_class=100",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=1.0",
    "trainer.limit_val_batches=1.0",
    "trainer.limit_test_batches=1.0",
    "model.dropout=0",
)


def train(device: str, cwd, *extra: str) -> tuple[dict, str]:
    result = run_cli("xlv-train", f"device={device}", *SETUP, *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = list((cwd / "outputs" / "runs").glob("*/*"))  # one run dir, not one per rank
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "completed"
    return record["metrics"], result.stdout + result.stderr


def test_two_processes_record_once_and_keep_the_console_clean(tmp_path):
    """A short DDP run (the default suite's): one run dir, one record, no library advice."""
    _, console = train("ddp_sim", tmp_path, "trainer.max_epochs=1", "data.train_per_class=50")
    assert console.count("outputs:\n  ") == 1
    assert "sync_dist" not in console  # no library advice on the console
    assert not list(tmp_path.glob("outputs/runs/*/*/*/metrics.json"))


@pytest.mark.slow
def test_two_processes_reach_the_metrics_of_one(tmp_path):
    """Trained long enough to settle, two processes score what one does (the synchronized
    batch norm's arithmetic is checked in the default suite, below)."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, _ = train("cpu", tmp_path / "one", "device.precision=32-true")
    two, _ = train("ddp_sim", tmp_path / "two")
    assert one["test/mean/acc"] > 0.9
    for metric in ("acc", "recall", "f1"):
        assert abs(one[f"test/mean/{metric}"] - two[f"test/mean/{metric}"]) <= 0.005, metric


def _synced_batch_norm_worker(rank: int, world: int, port: int, x, weights, out) -> None:
    """One process of two: half the batch through batch norm synchronized by all-reduce."""
    import os

    import torch.distributed as dist

    from xlvision.training.sync_bn import AllReduceSyncBatchNorm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = _bn_model()
    model.load_state_dict(weights)
    AllReduceSyncBatchNorm().apply(model)
    y = model(x[rank::world])
    (y.square().sum() / len(x)).backward()  # summed over the processes: the one-process loss
    grads = [p.grad.clone() for p in model.parameters()]
    for grad in grads:
        dist.all_reduce(grad)
    buffers = [b.clone() for b in model.buffers()]
    out[rank] = (y.detach(), grads, buffers)
    dist.destroy_process_group()


def _bn_model():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 3), nn.BatchNorm1d(3)
    )


def test_synced_batch_norm_on_two_cpu_processes_computes_one_process_on_the_whole_batch():
    import socket

    import torch
    import torch.multiprocessing as mp

    torch.manual_seed(0)
    x = torch.randn(10, 1, 8, 8) * 3 + 1
    model = _bn_model()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    y = model(x)
    (y.square().sum() / len(x)).backward()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_synced_batch_norm_worker, args=(2, port, x, weights, out), nprocs=2)
    both = torch.empty_like(y)
    both[0::2], both[1::2] = out[0][0], out[1][0]
    assert torch.allclose(both, y, atol=1e-5)
    for param, grad in zip(model.parameters(), out[0][1], strict=True):
        assert torch.allclose(param.grad, grad, atol=1e-5)
    for mine, theirs in zip(model.buffers(), out[1][2], strict=True):  # running statistics
        assert torch.allclose(mine.float(), theirs.float(), atol=1e-6)
    # Unsynced, each process would normalize by its own half: visibly different outputs.
    halves = torch.cat([model[:2](x[0::2]), model[:2](x[1::2])])
    assert not torch.allclose(
        halves, torch.cat([model[:2](x)[0::2], model[:2](x)[1::2]]), atol=1e-3
    )
