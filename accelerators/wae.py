"""``wae``: train candidates on a learned half-resolution decomposition of the images.

Chen, Lin, Zuo, Luo & Zhang (AAAI 2018), "Learning a Wavelet-like Auto-Encoder to Accelerate
Deep Neural Networks". A small auto-encoder splits each image into two half-resolution
sub-images: a low-frequency one I_L that carries most of the energy (the image's profile) and
a high-frequency one I_H (details, noise). A standard network classifies I_L - a quarter of
the pixels, so about a quarter of its convolution FLOPs - and a very light branch on I_H adds
back what the details tell; the two are fused before the classifier.

What is implemented here:

- **The WAE** (:class:`WaveletAutoEncoder`). Encoder: three 3x3 convolutions of ``width``
  (16, as in the paper) channels with ReLU, then two branched 3x3 stride-2 convolutions that
  give I_L and I_H, each with the input's channel count at half resolution. Decoder: a 4x4
  stride-2 transposed convolution of [I_L, I_H] back to full size, two 3x3 convolutions, the
  output cropped to the input's size. Loss: reconstruction MSE + ``energy`` x mean(I_H^2)
  (the paper's energy term, which pushes the image's content into I_L). Trained with Adam for
  ``epochs`` epochs over the training split, stopped early after ``max_seconds``.
- **Trained once per data set.** The encoder is keyed by a fingerprint of the training split
  (shape, count, a hash of 64 evenly spaced samples and their labels) and of the WAE's own
  settings. It is saved as safetensors + JSON (no pickle) in ``state.cache_dir/wae/`` - the
  study's artifact folder, shared by every candidate and worker - or, when the trainer has no
  cache folder, kept in an in-process dict under the same key. The encoded splits are kept in
  process too (for the last data set only), so later candidates in the same process skip the
  encoding pass as well.
- **Per candidate, at SETUP**: train and val are encoded once, without gradients, into splits
  whose images are [I_L, I_H] (2C channels at ceil(H/2) x ceil(W/2)), each channel
  standardised with its training-set mean and std (stored with the encoder), and the model
  becomes :class:`WaveletInputModel`: the candidate's own network applied to I_L plus a thin
  branch on I_H (3x3 stride-2 convs of 8 and 16 channels, each with BN and ReLU, global
  pooling, a linear layer). Fusion follows the paper: the branch's vector is *added to the backbone's
  pooled features* before the backbone's own classifier (for networks with a ``classifier``
  Linear, such as the ``mobile`` space), so the classifier keeps its genome's shape and sees
  one fused feature vector; the branch's last layer starts at zero, so training starts from
  the backbone alone. Networks without a ``classifier`` Linear get their logits summed with
  the branch's instead.
- The candidate network is *not* rebuilt for the smaller input: its strides were chosen for
  the full size (``mobile`` runs 28x28 at 28-14-7-4-4 and runs I_L at 14-7-4-2-2, which works
  because every stage pads and the head pools adaptively).

What is not implemented: the paper's third stage - fine-tuning the WAE jointly with the
classifier - because the encoder is shared by every candidate of a search (that sharing is
where the time goes away); and I_L is not constrained to look like a downsampled image beyond
what the energy term does. The trained model takes encoded inputs, so its weights are not a
plain candidate's (the evaluator then does not store them as a Net2Net parent);
:func:`full_model` composes encoder and model for a raw-image deployment.

Costs are reported honestly: ``one_off_seconds`` and ``one_off_flops`` are this run's encoder
training (0 on a cache hit), ``encode_seconds`` the encoding pass, and
``training_flops_saved`` = 3 x (original - wrapped forward FLOPs) x samples trained, minus
the encoder FLOPs this run spent (training and encoding), so it is negative for the run that
trains the encoder on a short budget; summed over a search, the one-off cost counts once.
Streamed data sets are refused: the encoded splits must be held in memory.

Measured on mnist5k (2 epochs, 2 CPU threads, idle machine, same model and seed): the one-off
encoder training took 3.9 s (val MSE 0.058 in normalised units); with the encoder cached, the
smallest mobile genome trained in 2.0 s instead of 5.0 s (accuracy 0.920 vs 0.917) and a
19-MFLOP genome in 5.4 s instead of 16.0 s (0.955 vs 0.969): hence ``wall-clock``.
"""

from __future__ import annotations

import time
from typing import Any

from torch import Tensor, nn

from accelerators.base import Accelerator, InvariantBroken, Option
from accelerators.wavelet import (_MEMORY, FORMAT, WaveletAutoEncoder, encode_split, encoder_flops,  # noqa: F401
                                  encoder_key, fingerprint, load_encoder, reconstruction_error, save_encoder,
                                  train_encoder)
from automl.data import Split
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState
from automl.nn.flops import count_flops, training_flops

_ENCODED: dict[tuple[str, str], Tensor] = {}  # (encoder key, split fingerprint) -> encoded images


class HighFrequencyBranch(nn.Module):
    """The paper's 'very lightweight network' on I_H: two strided 3x3 convs (to a quarter of
    I_H's size, so it costs a few percent of a small backbone), pooling, a linear map."""

    def __init__(self, channels: int, out_features: int, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out = nn.Linear(2 * width, out_features)
        nn.init.zeros_(self.out.weight)  # start as the backbone alone; the branch learns what to add
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))


class WaveletInputModel(nn.Module):
    """The candidate network on I_L, fused with a thin branch on I_H.

    Input: encoded images [I_L, I_H] with 2C channels. With ``fuse="features"`` the backbone's
    classifier moves here and is applied to backbone features + branch vector (the paper's
    element-wise fusion); with ``fuse="logits"`` the two sets of logits are summed.
    """

    def __init__(self, backbone: nn.Module, channels: int, num_classes: int) -> None:
        super().__init__()
        self.channels = channels
        classifier = getattr(backbone, "classifier", None)
        if isinstance(classifier, nn.Linear):
            self.fuse = "features"
            self.classifier = classifier
            backbone.classifier = nn.Identity()
            out_features = classifier.in_features
        else:
            self.fuse = "logits"
            self.classifier = nn.Identity()
            out_features = num_classes
        self.backbone = backbone
        self.branch = HighFrequencyBranch(channels, out_features)

    def forward(self, x: Tensor) -> Tensor:
        low, high = x[:, :self.channels], x[:, self.channels:]
        return self.classifier(self.backbone(low) + self.branch(high))


class RawImageModel(nn.Module):
    """Encoder + wrapped model: takes raw (normalised) images, for deployment."""

    def __init__(self, encoder: WaveletAutoEncoder, model: WaveletInputModel) -> None:
        super().__init__()
        self.encoder, self.model = encoder, model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.encoder.code(x))


def full_model(encoder: WaveletAutoEncoder, model: WaveletInputModel) -> RawImageModel:
    return RawImageModel(encoder, model)


class WaveletEncoderInput(Accelerator):
    name = "wae"
    kind = "wall-clock"
    summary = "classify a half-resolution low-frequency code from a once-trained wavelet-like auto-encoder"
    paper = "Chen et al. 2018 (AAAI), Learning a Wavelet-like Auto-Encoder to Accelerate Deep Neural Networks"
    order = 20  # data: after a subset is chosen (subset is 10), before model and loss methods
    ddp_safe = True
    ddp_note = (
        "encodes the data and wraps the model at SETUP, the same on every rank; the encoder is "
        "shared and frozen")
    export_safe = False
    export_note = ("the model it trains reads its encoder's codes, not images: the exported model would not "
                   "take the data it is meant for")
    events = frozenset({Event.SETUP, Event.FIT_END})
    options = {
        "epochs": Option(2, "epochs of the one-off encoder training", lambda v: 1 <= v <= 100, "1 <= epochs <= 100"),
        "energy": Option(0.1, "weight of the I_H energy term in the encoder loss", lambda v: 0.0 <= v <= 100.0,
                         "0 <= energy <= 100"),
        "width": Option(16, "channels of the encoder's convolutions", lambda v: 1 <= v <= 256, "1 <= width <= 256"),
        "max_seconds": Option(60.0, "time bound of the one-off encoder training", lambda v: 0.0 < v <= 86400.0,
                              "0 < max_seconds <= 86400"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.encoder: WaveletAutoEncoder | None = None
        self.facts: dict[str, Any] = {}
        self.original_flops = 0
        self.wrapped_flops = 0
        self.spent_flops = 0.0  # encoder training and encoding done in this run
        self.samples = 0

    def settings(self) -> dict[str, Any]:
        return {"epochs": self.values["epochs"], "energy": self.values["energy"], "width": self.values["width"]}

    def obtain_encoder(self, state: TrainState) -> tuple[WaveletAutoEncoder, str, bool, dict[str, Any]]:
        """The cached encoder for this training split, or a freshly trained (and cached) one."""
        channels = state.input_shape[0]
        key = encoder_key(fingerprint(state.train), self.settings())
        found = load_encoder(state.cache_dir, key) if state.cache_dir is not None else _MEMORY.get(key)
        encoder = WaveletAutoEncoder(channels, self.values["width"])
        if found is not None:
            weights, meta = found
            encoder.load_state_dict(weights)
            return encoder.to(state.device).eval(), key, True, meta
        encoder, meta = train_encoder(state.train, channels, self.values["width"], self.values["epochs"],
                                      self.values["energy"], self.values["max_seconds"], seed=0, device=state.device)
        meta.update({"key": key, "format": FORMAT, "input_shape": list(state.input_shape),
                     "train_samples": len(state.train), **self.settings(),
                     "val_fingerprint": fingerprint(state.val), "val": reconstruction_error(encoder, state.val)})
        if state.cache_dir is not None:
            meta["path"] = str(save_encoder(state.cache_dir, key, encoder, meta))
        else:
            _MEMORY[key] = ({k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}, meta)
        return encoder, key, False, meta

    def encoded(self, key: str, split: Split, encoder: WaveletAutoEncoder) -> tuple[Split, bool]:
        """The encoded split, from the in-process cache when this process encoded it already."""
        split_key = (key, fingerprint(split))
        if split_key in _ENCODED:
            return Split(y=split.y, x=_ENCODED[split_key]), True
        if any(k[0] != key for k in _ENCODED):  # keep only the current data set's codes
            _ENCODED.clear()
        result = encode_split(encoder, split)
        _ENCODED[split_key] = result.x
        return result, False

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.SETUP:
            self.setup(state)
        elif event is Event.FIT_END:
            self.samples = state.step * state.config.batch_size

    def setup(self, state: TrainState) -> None:
        for label, split in (("training", state.train), ("validation", state.val)):
            if split is None or not split.in_memory:
                raise AutomlError(f"accelerator 'wae' needs an in-memory data set (the {label} split is streamed "
                                  "from disk); use a smaller data set or drop wae")
        channels, height, width = state.input_shape
        started = time.perf_counter()
        encoder, key, hit, meta = self.obtain_encoder(state)
        one_off = 0.0 if hit else time.perf_counter() - started
        encode_flops, train_flops = encoder_flops(encoder, state.input_shape)
        if not hit:
            self.spent_flops += train_flops * meta["samples"] + encode_flops * len(state.train)  # + code stats
        encode_started = time.perf_counter()
        train, train_cached = self.encoded(key, state.train, encoder)
        val, val_cached = self.encoded(key, state.val, encoder)
        encode_seconds = time.perf_counter() - encode_started
        self.spent_flops += encode_flops * ((0 if train_cached else len(train)) + (0 if val_cached else len(val)))
        error = meta["val"] if meta.get("val_fingerprint") == fingerprint(state.val) else \
            reconstruction_error(encoder, state.val)

        self.original_flops = count_flops(state.model, state.input_shape)
        model = WaveletInputModel(state.model, channels, state.num_classes)
        code_shape = (2 * channels, train.x.shape[-2], train.x.shape[-1])
        model = model.to(state.device)
        self.wrapped_flops = count_flops(model, code_shape)
        state.train, state.val, state.input_shape, state.model = train, val, code_shape, model
        self.encoder = encoder
        self.facts = {
            "cache_hit": hit, "cache_key": key, "cache_path": meta.get("path"),
            "one_off_seconds": one_off, "one_off_flops": 0.0 if hit else float(train_flops * meta["samples"]),
            "encoder_epochs_done": meta.get("epochs_done"), "encoder_timed_out": meta.get("timed_out"),
            "encode_seconds": encode_seconds, "encoded_from_memory": train_cached and val_cached,
            "reconstruction_mse": error["mse"], "reconstruction_psnr_db": error["psnr_db"],
            "high_energy_share": error["high_energy_share"],
            "input_shape": [channels, height, width], "code_shape": list(code_shape), "fusion": model.fuse,
        }

    def teardown(self, state: TrainState) -> None:
        """A candidate that died gets its own network back whole (the classifier the wrapper
        took); one that finished keeps the wrapper, which is its trained model."""
        model = state.model
        if state.accuracy is None and isinstance(model, WaveletInputModel):
            if model.fuse == "features":
                model.backbone.classifier = model.classifier
            state.model = model.backbone

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """The model classifies the code at the code's resolution, not a further reduced one."""
        code = tuple(self.facts.get("code_shape", ()))
        if event is Event.LOSS and code and tuple(state.inputs.shape[1:]) != code:
            raise InvariantBroken(f"wae: the model is fed {tuple(state.inputs.shape[1:])}, the code is {code}")

    def raw_model(self, model: WaveletInputModel) -> RawImageModel:
        """The trained model composed with this run's encoder (takes raw images)."""
        if self.encoder is None:
            raise RuntimeError("wae has not run its SETUP yet")
        return full_model(self.encoder, model)

    def report(self) -> dict[str, Any]:
        gross = training_flops(self.original_flops - self.wrapped_flops, self.samples)
        return {**self.facts,
                "flops_per_sample_original": float(self.original_flops),
                "flops_per_sample_wrapped": float(self.wrapped_flops),
                "samples_trained": self.samples,
                "training_flops_saved_gross": gross,
                "encoder_flops_spent": self.spent_flops,
                "training_flops_saved": gross - self.spent_flops,
                "note": "saved = 3 x (original - wrapped forward FLOPs) x samples, minus the encoder "
                        "training and encoding this run did (0 of those on a cache hit)"}
