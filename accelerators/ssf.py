"""``ssf``: frozen dictionary-learned filter structure, learned filter strength.

Keshari, Vatsa, Singh & Noore (CVPR 2018), "Learning Structure and Strength of CNN Filters
for Small Sample Size Training" (SSF-CNN). Each convolution filter is W = s * D: its
*structure* D is learned without labels by dictionary learning and then frozen, and only its
*strength* s (one scalar per filter) is learned from the (few) labelled samples. Far fewer
parameters are trained, which is what lets a CNN learn from a handful of samples per class.

What is implemented here, at SETUP:

- **Samples** (``per_class``): 0 keeps the whole training split; N > 0 keeps N images of each
  class (all of a class that has fewer), chosen with ``state.seed``, so runs are reproducible.
- **Structure**: every full convolution (groups = 1) gets a dictionary of as many atoms as it
  has filters, learned on patches (its kernel size, stride and padding) of *its own input* -
  the images for the stem and, layer by layer, the activations of the already-initialised
  earlier layers on ``images`` training images (the paper's greedy layer-wise scheme, rather
  than random structure for deeper layers). The dictionary solves sklearn's
  MiniBatchDictionaryLearning objective, min ||X - A D||^2 + alpha |A|_1 with unit-norm atoms,
  by alternating ISTA sparse coding and a least-squares atom update, written in torch on the training device: sklearn's
  LARS / coordinate-descent coders took 20-100 s for one wide 1x1 layer on two shared cores.
  1x1 convolutions (expand, project, head) thus get atoms over channel vectors.
- **Strength**: where a BatchNorm follows the convolution (every convolution of the built-in
  spaces), a separate s would be exactly cancelled by the normalisation (BN(s*z) = BN(z) in
  training mode, so its gradient is zero); the strength there *is* the BN's scale gamma
  (trainable, per filter), and at inference the network computes gamma/sigma * (D * x) - the
  SSF form. A convolution without a following BatchNorm gets an explicit per-filter strength
  parameter, initialised to the norm of the filter it replaces, and its forward becomes
  s * conv(x, D); at FIT_END s * D is folded back into the weight.
- **Frozen**: D is the conv weight with ``requires_grad`` off, so autograd skips the
  weight-gradient convolution of every structured layer - a real saving, reported as
  ``training_flops_saved`` (the weight-gradient FLOPs, equal to the layer's forward FLOPs, per
  sample trained). The strength's gradient for the explicit form is sum(g * conv(x, D)), an
  elementwise product, not a convolution.
- **Depthwise convolutions are left trainable**: each of their filters sees one channel, so a
  shared dictionary would assign atoms to channels arbitrarily, and they hold a few percent of
  a network's weights; BatchNorm and the classifier train as usual.

Kind: ``fidelity``. Measured on mnist5k (2 epochs, 2 CPU threads, idle machine, same seed):
epochs ran 12-18% faster on a 19-MFLOP mobile genome (6.6 vs 7.6-8.4 s) and not at all on the
smallest one, while the layer-wise dictionaries took 0.6 s and 5.3 s - so a short run is not
faster overall - and validation accuracy fell (0.97 -> 0.90, 0.92 -> 0.73). What it offers a
search is a cheaper, lower-fidelity estimate (fewer trained parameters, and with ``per_class``
far fewer samples), not a free speed-up.

At FIT_END every weight is trainable again and has its genome's shape, so the trained model
is a normal candidate (a Net2Net parent). Not implemented: the paper's second phase that
fine-tunes the structure too when data is plentiful (train without ``ssf`` for that), and its
per-layer choice of dictionary size (here: one atom per filter). Inherited (warm-start)
convolution weights are replaced by the dictionaries.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelerators.base import Accelerator, InvariantBroken, Option
from automl.data import Split
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState


def keep_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` random samples of every class (all of a smaller class)."""
    rng = np.random.default_rng(seed)
    keep = [rng.choice(members, size=min(per_class, len(members)), replace=False)
            for members in (np.flatnonzero(labels == c) for c in np.unique(labels))]
    return np.sort(np.concatenate(keep))


def learn_dictionary(patches: Tensor, atoms: int, alpha: float = 0.1, iterations: int = 10,
                     coding_steps: int = 10, generator: torch.Generator | None = None) -> Tensor:
    """Unit-norm atoms (atoms, dim) minimising ||X - A D||^2 + alpha |A|_1 over ``patches`` X.

    Alternates ISTA sparse coding (``coding_steps`` steps) with the least-squares atom update;
    atoms nobody uses are re-seeded from random patches.
    """
    x = patches.float()
    n, dim = x.shape
    start = torch.randint(n, (atoms,), generator=generator).to(x.device)
    d = x[start] + 1e-3 * torch.randn(atoms, dim, generator=generator).to(x.device)
    d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
    for _ in range(iterations):
        gram = d @ d.T
        step = 1.0 / max(float(torch.linalg.matrix_norm(gram, 2)), 1e-12)
        target = x @ d.T
        a = torch.zeros(n, atoms, dtype=x.dtype, device=x.device)
        for _ in range(coding_steps):
            a = a - step * (a @ gram - target)
            a = torch.sign(a) * (a.abs() - alpha * step).clamp_min(0)
        used = a.abs().sum(0) > 0
        solution = torch.linalg.solve(a.T @ a + 1e-4 * torch.eye(atoms, dtype=x.dtype, device=x.device), a.T @ x)
        fresh = x[torch.randint(n, (atoms,), generator=generator).to(x.device)]
        d = torch.where(used[:, None], solution, fresh)
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return d


def conv_patches(inputs: Tensor, conv: nn.Conv2d, count: int, generator: torch.Generator) -> Tensor:
    """``count`` random patches (count, C*kh*kw) of ``inputs`` as ``conv`` sees them."""
    columns = F.unfold(inputs, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # N, C*k*k, L
    flat = columns.transpose(1, 2).reshape(-1, columns.shape[1])
    pick = torch.randint(len(flat), (min(count, len(flat)),), generator=generator)
    return flat[pick.to(flat.device)]


def followed_by_batchnorm(model: nn.Module) -> set[nn.Conv2d]:
    """Convolutions directly followed, in a Sequential, by a BatchNorm over their outputs."""
    found: set[nn.Conv2d] = set()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            children = list(module)
            for first, second in zip(children, children[1:]):
                if (isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d)
                        and second.num_features == first.out_channels and second.affine):
                    found.add(first)
    return found


class StructureStrengthFilters(Accelerator):
    name = "ssf"
    kind = "fidelity"  # a restricted model (and optionally fewer samples); see the module docstring
    summary = "freeze dictionary-learned filter structure, train per-filter strength (optionally N samples/class)"
    paper = "Keshari, Vatsa, Singh & Noore 2018 (CVPR), Learning Structure and Strength of CNN Filters"
    order = 30  # data (per_class), then the model's parameterisation
    ddp_safe = True
    ddp_note = (
        "re-parameterises the model only at SETUP, deterministically from the seed, before a "
        "wrapper would be built (whose first broadcast gives every rank rank 0's structure)")
    events = frozenset({Event.SETUP, Event.FIT_END})
    options = {
        "per_class": Option(0, "training samples kept per class (0 = all)", lambda v: v >= 0, "per_class >= 0"),
        "images": Option(256, "training images whose activations feed the dictionaries", lambda v: 1 <= v <= 100_000,
                         "1 <= images <= 100000"),
        "patches": Option(1024, "patches per layer for dictionary learning", lambda v: 16 <= v <= 1_000_000,
                          "16 <= patches <= 1000000"),
        "alpha": Option(0.1, "sparsity weight of the dictionary codes", lambda v: 0.0 <= v <= 100.0, "0 <= alpha <= 100"),
        "iterations": Option(10, "alternations of sparse coding and atom update", lambda v: 1 <= v <= 1000,
                             "1 <= iterations <= 1000"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.structured: list[nn.Conv2d] = []
        self.structure: dict[nn.Conv2d, Tensor] = {}  # D as training first saw it, to check it stays frozen
        self.strengths: dict[nn.Conv2d, nn.Parameter] = {}
        self.weight_grad_flops = 0.0  # per sample, of the frozen layers
        self.facts: dict[str, Any] = {}
        self.samples = 0

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.SETUP:
            self.setup(state)
        elif event is Event.FIT_END:
            self.samples = state.step * state.config.batch_size
            self.teardown(state)

    def select_samples(self, state: TrainState) -> None:
        full = len(state.train)
        if self.values["per_class"] > 0:
            if not state.train.in_memory:
                raise AutomlError("accelerator 'ssf': per_class needs an in-memory training split "
                                  "(this data set is streamed from disk)")
            index = keep_per_class(state.train.y.cpu().numpy(), self.values["per_class"], state.seed)
            chosen = torch.from_numpy(index).to(state.train.y.device)
            state.train = Split(x=state.train.x[chosen.to(state.train.x.device)], y=state.train.y[chosen])
        self.facts.update({"samples_available": full, "samples_used": len(state.train)})

    def first_images(self, state: TrainState) -> Tensor:
        images, seen = [], 0
        generator = torch.Generator().manual_seed(state.seed)
        for x, _ in state.train.batches(min(self.values["images"], 500), shuffle=True, generator=generator,
                                        device=state.device):
            images.append(x)
            seen += len(x)
            if seen >= self.values["images"]:
                break
        return torch.cat(images)[:self.values["images"]].float()

    def setup(self, state: TrainState) -> None:
        self.select_samples(state)
        started = time.perf_counter()
        model = state.model
        images = self.first_images(state)
        generator = torch.Generator().manual_seed(state.seed)
        with_norm = followed_by_batchnorm(model)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved_stats = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
        was_training = model.training
        model.train()  # batch statistics: the activations the dictionaries see are normalised
        for conv in convs:  # layer by layer: each sees the earlier layers' new structure
            captured: list[Tensor] = []
            handle = conv.register_forward_pre_hook(lambda m, args: captured.append(args[0].detach()))
            try:
                with torch.no_grad():
                    model(images)
            finally:
                handle.remove()
            inputs = captured[0].float().contiguous()
            patches = conv_patches(inputs, conv, self.values["patches"], generator)
            atoms = learn_dictionary(patches, conv.out_channels, self.values["alpha"], self.values["iterations"],
                                     generator=generator)
            structure = atoms.view_as(conv.weight).to(conv.weight.device, conv.weight.dtype)
            out_h = (inputs.shape[-2] + 2 * conv.padding[0] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) \
                // conv.stride[0] + 1
            out_w = (inputs.shape[-1] + 2 * conv.padding[1] - conv.dilation[1] * (conv.kernel_size[1] - 1) - 1) \
                // conv.stride[1] + 1
            self.weight_grad_flops += 2.0 * out_h * out_w * conv.weight.numel()
            with torch.no_grad():
                if conv not in with_norm:
                    strength = nn.Parameter(conv.weight.flatten(1).norm(dim=1).clone())
                    conv.register_parameter("strength", strength)
                    self.strengths[conv] = strength
                    self.hooks.replace_forward(conv, self._scaled_forward(conv))
                conv.weight.copy_(structure)
            conv.weight.requires_grad_(False)
            self.structured.append(conv)
        for m, stats in zip(norms, saved_stats):  # the probing passes must not leave BN statistics behind
            m.load_state_dict(stats)
        model.train(was_training)
        params = list(model.parameters())
        depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
        self.facts.update({
            "dictionary_seconds": time.perf_counter() - started,
            "structured_layers": len(self.structured),
            "depthwise_layers_trainable": len(depthwise),
            "trainable_params": sum(p.numel() for p in params if p.requires_grad),
            "total_params": sum(p.numel() for p in params),
            "explicit_strengths": len(self.strengths),
        })

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """The structure stays frozen: no gradient, no change, as long as training runs (D as
        the first forward pass saw it: a number format may have rounded it once at INIT)."""
        if not self.structure:
            self.structure = {conv: conv.weight.detach().clone() for conv in self.structured}
        for index, conv in enumerate(self.structured):
            if conv.weight.requires_grad or conv.weight.grad is not None:
                raise InvariantBroken(f"ssf: frozen convolution {index} trains again at {event.name}")
            if not torch.equal(conv.weight, self.structure[conv]):
                raise InvariantBroken(f"ssf: the structure of convolution {index} changed at {event.name}")

    @staticmethod
    def _scaled_forward(conv: nn.Conv2d):
        def forward(x: Tensor) -> Tensor:
            out = F.conv2d(x, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
            out = out * conv.strength.view(1, -1, 1, 1)
            return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)
        return forward

    def teardown(self, state: TrainState) -> None:
        """Fold explicit strengths into the weights and make every weight trainable again
        (at FIT_END, and from the trainer's TEARDOWN when training died; idempotent)."""
        self.hooks.remove()
        with torch.no_grad():
            for conv, strength in self.strengths.items():
                conv.weight.mul_(strength.view(-1, 1, 1, 1))
                del conv._parameters["strength"]
        for conv in self.structured:
            conv.weight.requires_grad_(True)
        self.strengths.clear()
        self.structure.clear()

    def report(self) -> dict[str, Any]:
        saved = self.weight_grad_flops * self.samples
        return {**self.facts, "samples_trained": self.samples,
                "weight_grad_flops_skipped_per_sample": self.weight_grad_flops,
                "training_flops_saved": saved,
                "note": "frozen structure: autograd skips the weight-gradient convolution of every "
                        "structured layer (its FLOPs equal the layer's forward FLOPs per sample)"}
