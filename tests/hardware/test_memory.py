"""Peak SRAM and flash (hwnas.hardware.memory) against hand-computed figures.

Conventions under test: batch 1, 8-bit activations and weights unless said otherwise, so one
element is one byte; a tensor is alive from its producer to its last consumer, the input included;
element-wise ops (BN, ReLU, add) write into an input whose last use they are; views allocate
nothing; BN right after a conv is folded into it (the conv gains a bias).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("torch")

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.hardware.memory import memory_of, network_memory
from hwnas.spaces import FBNetSpace, NB201Space
from hwnas.spaces.fbnet_cost import fbnet_params_flops
from hwnas.spaces.nb201_cost import nb201_params_flops


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sequential() -> nn.Sequential:
    # 1x3x8x8 -> conv3x3(+BN) 8x8x8 -> ReLU -> conv1x1 4x8x8 -> flatten 256 -> linear 10
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
        nn.Flatten(),
        nn.Linear(256, 10),
    )


class _Residual(nn.Module):
    def __init__(self, residual: bool = True) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(8, 8, 3, padding=1)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        out = self.conv_b(torch.relu(self.conv_a(y)))
        return torch.relu(out + y) if self.residual else out


class _TwoBranches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 16, 1)
        self.b2 = nn.Conv2d(8, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return torch.flatten(torch.mean(torch.cat([self.b1(y), self.b2(y)], 1), (2, 3)), 1)


class _WideFirst(nn.Module):
    """Peak at the first conv: input (192 B) + its output (1024 B); x.dim() defeats fx."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 2, 1)
        self.fc = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # control flow on a traced value: fx cannot trace this module
            x = torch.relu(self.conv1(x))
        return self.fc(torch.flatten(self.conv2(x), 1))


@pytest.mark.parametrize("tracer", ["fx", "hooks"])
def test_sequential_peak_by_hand(tracer: str) -> None:
    r = network_memory(_sequential(), (3, 8, 8), tracer=tracer)  # type: ignore[arg-type]
    # input 3*8*8 = 192; conv1 8*8*8 = 512; BN and ReLU in place; conv2 4*8*8 = 256; linear 10.
    # at conv1: 192 + 512 = 704; at conv2: 512 + 256 = 768 (the peak); at linear: 256 + 10.
    assert [s.live_bytes for s in r.timeline if s.alloc_bytes] == [192, 704, 768, 266]
    assert r.peak_bytes == 768
    assert r.peak_sram_kb == pytest.approx(768 / 1024)
    assert sorted(b for _, b in r.peak_tensors) == [256, 512]
    assert r.tracer == tracer
    # Without in-place element-wise ops the BN output is a new 512 B tensor: 512 + 512.
    assert network_memory(_sequential(), (3, 8, 8), inplace=False).peak_bytes == 1024
    # 4-bit activations halve every buffer; 16-bit double them.
    assert network_memory(_sequential(), (3, 8, 8), act_bits=4).peak_bytes == 384
    assert network_memory(_sequential(), (3, 8, 8), act_bits=16).peak_bytes == 1536


def test_sequential_flash_by_hand() -> None:
    # conv1 3*8*9 = 216 weights + 8 bias from the folded BN; conv2 8*4 + 4; linear 256*10 + 10.
    folded = 216 + 8 + 32 + 4 + 2560 + 10
    assert network_memory(_sequential(), (3, 8, 8)).flash_bytes == folded == 2830
    assert network_memory(_sequential(), (3, 8, 8), weight_bits=4).flash_bytes == 1415
    assert network_memory(_sequential(), (3, 8, 8), weight_bits=32).flash_bytes == 4 * folded
    # Unfolded: every parameter once, BN weight and bias included (2 * 8).
    raw = network_memory(_sequential(), (3, 8, 8), fold_bn=False)
    assert raw.flash_bytes == 216 + 16 + 36 + 2570
    assert raw.flash_kb == pytest.approx(2838 / 1024)


def test_bn_that_cannot_fold_costs_scale_and_shift() -> None:
    # The conv output feeds the BN and the add: folding would change the add, so BN stays.
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1, bias=False)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.bn(y) + y

    r = network_memory(Shared(), (3, 4, 4))
    assert r.flash_bytes == 9 + 2 * 3
    # x 48; conv y 48 (x dies); BN cannot overwrite y (read again by the add): y + BN = 96;
    # the add reads both and writes into the BN output: 96; the output alone: 48.
    bn = next(s for s in r.timeline if s.name == "bn")
    assert (bn.alloc_bytes, bn.live_bytes) == (48, 96)
    assert [s.live_bytes for s in r.timeline] == [48, 96, 96, 96, 48]


@pytest.mark.parametrize("tracer", ["fx", "hooks"])
def test_residual_keeps_its_input_alive(tracer: str) -> None:
    r = network_memory(_Residual(), (3, 8, 8), tracer=tracer)  # type: ignore[arg-type]
    # x 192; stem 512 (x dies); conv_a 512; conv_b 512 while y (the residual) is still needed:
    # y + a + b = 1536; the add writes into b, the ReLU too.
    assert r.peak_bytes == 1536
    assert r.peak_node == ("conv_b" if tracer == "fx" else "conv_b:conv2d#5")
    # Without the residual y dies at conv_a: at most two 512 B tensors at once.
    assert network_memory(_Residual(residual=False), (3, 8, 8)).peak_bytes == 1024


@pytest.mark.parametrize("tracer", ["fx", "hooks"])
def test_two_branches_alive_at_the_concat(tracer: str) -> None:
    r = network_memory(_TwoBranches(), (3, 8, 8), tracer=tracer)  # type: ignore[arg-type]
    # x 192; stem y 512 (x dies); b1 16*8*8 = 1024 with y alive: 1536; b2 1024 with y and b1:
    # 2560; cat 2048 with b1 and b2: 4096 (the peak); mean 32 with the cat: 2080.
    assert [s.live_bytes for s in r.timeline if s.alloc_bytes] == [192, 704, 1536, 2560, 4096, 2080]
    assert r.peak_bytes == 4096
    assert sorted(b for _, b in r.peak_tensors) == [1024, 1024, 2048]


def test_the_input_is_counted_and_fx_failure_falls_back() -> None:
    with pytest.raises(Exception, match="control flow"):
        network_memory(_WideFirst(), (3, 8, 8), tracer="fx")
    r = network_memory(_WideFirst(), (3, 8, 8))
    assert r.tracer == "hooks"
    # x 192 + conv1 16*8*8 = 1024 -> 1216; later conv1 + conv2 1024 + 128 = 1152. Leaving the
    # input out (MCUNet issue #9) would report 1152 at conv2.
    assert r.peak_bytes == 1216
    assert r.peak_node == "conv1:conv2d#1"
    assert ("x", 192) in r.peak_tensors
    assert r.timeline[0].op == "input" and r.timeline[0].live_bytes == 192


def test_state_is_restored_and_bad_options_fail_clearly() -> None:
    net = _sequential().train()
    net[1].eval()
    before = net[1].running_mean.clone()
    network_memory(net, (3, 8, 8))
    assert net.training and not net[1].training
    assert torch.equal(net[1].running_mean, before)
    with pytest.raises(ConfigError, match=r"act_bits must be an integer in 1\.\.32, got 0"):
        network_memory(net, (3, 8, 8), act_bits=0)
    with pytest.raises(ConfigError, match="input_shape must be positive integers"):
        network_memory(net, (3, -8, 8))
    with pytest.raises(ConfigError, match="tracer must be"):
        network_memory(net, (3, 8, 8), tracer="jit")  # type: ignore[arg-type]


def _nb201_foldable_bn_channels(ops: list[str]) -> int:
    # Stem BN(16); one BN(C) per conv edge in the 5 cells of each stage (C = 16, 32, 64); two
    # BNs in each reduction block (32, 64). The final BN(64) follows an add: not foldable.
    convs = sum(op.startswith("nor_conv") for op in ops)
    return 16 + convs * 5 * (16 + 32 + 64) + 2 * (32 + 64)


def test_nb201_flash_by_hand_and_ordering() -> None:
    space = NB201Space()
    flashes, peaks = [], []
    for n in range(7):  # 0..6 edges turned into 3x3 convs
        ops = ["nor_conv_3x3"] * n + ["none"] * (6 - n)
        r = memory_of(space, {"ops": ops}, tracer="hooks")  # as fx here, and faster
        params = round(nb201_params_flops(ops)[0] * 1e6)
        # Folding removes BN's 2 values per channel and adds 1 bias per channel.
        assert r.flash_bytes == params - _nb201_foldable_bn_channels(ops)
        flashes.append(r.flash_bytes)
        peaks.append(r.peak_bytes)
        # The input (3 kB) and the stem output (16 kB) are alive together at the stem conv.
        assert r.timeline[1].live_bytes == 3 * 32 * 32 + 16 * 32 * 32
    assert flashes == sorted(flashes) and len(set(flashes)) == 7
    assert peaks[-1] >= peaks[0]
    unfolded = memory_of(space, {"ops": ["nor_conv_3x3"] * 6}, fold_bn=False, tracer="hooks")
    assert unfolded.flash_bytes == 1531546  # the network's parameter count, one byte each


def test_nb201_all_conv_cell_peak_by_hand() -> None:
    # In a stage-1 cell (16x32x32 = 16 kB per tensor) edge 1->2 runs while the cell input (needed
    # by 0->3), node 1 (needed by 1->3), the partial sum of node 2 and ReLU(node 1) are alive,
    # plus its conv output: 5 x 16 kB = 80 kB.
    space = NB201Space()
    r = memory_of(space, {"ops": ["nor_conv_3x3"] * 6})
    assert r.peak_sram_kb == 80.0
    assert r.peak_node == "cells_0_edges_2_1"
    hooks = memory_of(space, {"ops": ["nor_conv_3x3"] * 6}, tracer="hooks")
    assert (hooks.peak_bytes, hooks.flash_bytes) == (r.peak_bytes, r.flash_bytes)
    assert hooks.peak_node == "cells.0.edges.2.1:conv2d#10"


def test_fbnet_bigger_blocks_need_more_memory_and_tracers_agree() -> None:
    space = FBNetSpace()
    skip = memory_of(space, {"ops": ["skip"] * 22})
    big = memory_of(space, {"ops": ["k5_e6"] * 22})
    assert big.peak_sram_kb > skip.peak_sram_kb
    assert big.flash_kb > skip.flash_kb
    # By hand: all-skip peaks at the 1x1 conv from 16 to 24 channels (32x32): 16 + 24 kB. With
    # k5_e6 a stage-2 residual block holds its input (24 ch), the expansion (144 ch) and the
    # depthwise output (144 ch) at once: 24 + 144 + 144 kB.
    assert skip.peak_sram_kb == 16 + 24
    assert big.peak_sram_kb == 24 + 144 + 144
    assert big.peak_node.endswith("body_3")  # the depthwise conv
    # Unfolded flash is the parameter count.
    raw = memory_of(space, {"ops": ["k5_e6"] * 22}, fold_bn=False, tracer="hooks")
    assert raw.flash_bytes == round(fbnet_params_flops(["k5_e6"] * 22)[0] * 1e6)
    ops = ["k3_e1_g2", "k5_e3", "skip", "k3_e6"] * 5 + ["k5_e1", "skip"]
    via_fx = network_memory(space.build_network({"ops": ops}), space.input_shape, tracer="fx")
    via_hooks = network_memory(space.build_network({"ops": ops}), space.input_shape, tracer="hooks")
    assert via_fx.peak_bytes == via_hooks.peak_bytes
    assert via_fx.flash_bytes == via_hooks.flash_bytes
