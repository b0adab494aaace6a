"""The LightningModule: cross-entropy over every language's head, metrics per language."""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F

from xlvision.evaluation.metrics import HeadAccuracy, StageMetrics
from xlvision.models.classifier import DIGIT_HEAD, LID_HEAD, Classifier

DOMAIN_HIDDEN = 128  # width of the domain discriminator's hidden layer
ANCHOR_MOMENTUM = 0.9  # how much of a glyph anchor each training step keeps
ANCHOR_TEMPERATURE = 0.1  # of the cosine similarities to the anchors
MIXSTYLE_ALPHA = 0.1  # Beta(α, α) of the style mixing weight (Zhou et al., 2021)
MIXSTYLE_BLOCKS = 2  # the backbone's first blocks, whose output styles are mixed


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by -scale backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    return _ReverseGradient.apply(x, scale)


def mix_style(x: torch.Tensor, partner: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Feature maps [N, C, H, W] whose per-sample channel means and deviations ("style") are
    `weight`·own + (1 − weight)·`partner`'s, their normalized content unchanged (MixStyle)."""
    mean = x.mean((2, 3), keepdim=True).detach()
    std = (x.var((2, 3), keepdim=True) + 1e-6).sqrt().detach()
    w = weight.view(-1, 1, 1, 1).to(x.dtype)
    mixed_mean = w * mean + (1 - w) * mean[partner]
    mixed_std = w * std + (1 - w) * std[partner]
    return (x - mean) / std * mixed_std + mixed_mean


def style_partners(real: torch.Tensor | None, n: int) -> torch.Tensor:
    """Each sample's style partner: a random sample of the other domain (rendered ↔ real)
    where the batch has both, else a random sample of the batch."""
    if real is None or real.all() or not real.any():
        return torch.randint(n, (n,), device=real.device if real is not None else "cpu")
    partner = torch.empty(n, dtype=torch.long, device=real.device)
    for mine, other in ((real, ~real), (~real, real)):
        pool = torch.nonzero(other).flatten()
        picks = torch.randint(len(pool), (int(mine.sum()),), device=real.device)
        partner[mine] = pool[picks]
    return partner


def adversarial_ramp(progress: float) -> float:
    """DANN's schedule of the reversed gradient's scale: 0 at the start, → 1 at the end, so
    the discriminator learns before the features are pushed against it."""
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


class DigitClassifierModule(L.LightningModule):
    """Trains a `Classifier` on batches of (image, label, language index)."""

    def __init__(
        self,
        model: Classifier,
        languages: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., object] | None = None,
        scheduler_interval: str = "epoch",
        model_spec: dict | None = None,
        param_groups: list[dict] | None = None,
        regularizer: Callable[[torch.nn.Module], torch.Tensor] | None = None,
        objective: dict | None = None,
        groups: list[str] | None = None,
        language_prior: torch.Tensor | None = None,
    ) -> None:
        """`param_groups` ({"params", "lr_scale"}) override plain parameters; `regularizer`
        adds a penalty of the model to the training loss (e.g. L2-SP). `objective` weighs the
        losses of the shared heads the model has: `shared_digits` (`_digit`) and `script_id`
        (`_lid`, over `languages` in order; `groups` names each language's script group).
        With `language_prior` (each language's share of the draws) the `_lid` head learns
        prior-free logits (logit adjustment): a language drawn more often, e.g. one with real
        data besides its glyphs, is not named more often for it. `script_id_real` weighs the
        script-ID loss of real samples (batches then carry a real mask): at 0 the script is
        learnt from rendered glyphs only, where every script has data, so "handwritten" cannot
        become a reason to name one of the scripts that had real data. A `language_prior` of
        two rows (rendered, real: `script_id_prior: per_domain`) adjusts each sample's logits
        by its own domain's prior: a real sample's script is chosen among the languages that
        have real data only, so no logit is pushed down for being a font-only script on
        handwriting, and a "handwritten" feature shifts the real languages' logits together,
        which the softmax over them cannot reward. `domain_adversarial` (λ > 0) trains a
        discriminator of rendered vs real on the backbone's features through a reversed
        gradient: the features are pushed to carry no trace of "this was handwritten", so the
        heads that learnt a script from its glyphs alone read its handwriting with the same
        features. The discriminator lives in this module, not in the model: it is never
        bundled. `glyph_anchor` (λ > 0) keeps a running mean of the rendered glyphs' features
        per (language, digit), an anchor each, and trains every sample to be nearer its own
        anchor than any other language's or digit's (a softmax over cosine similarities; a
        group mate's anchor of the same digit is no rival): handwriting of the six scripts
        with real data is pulled onto their glyphs, a mapping the backbone then applies to the
        handwriting of scripts it knows from fonts only. The anchors, like the discriminator,
        stay in this module. `mixstyle` (p > 0) mixes, in a share p of training batches, each
        sample's feature style (channel means and deviations after the backbone's first
        blocks) with a sample of the other domain: glyphs take on handwriting's statistics and
        handwriting a glyph's, so the style of a hand stops being evidence of a script."""
        super().__init__()
        self.model = model
        self.model_spec = model_spec or {}
        self.param_groups = param_groups
        self.regularizer = regularizer
        self.languages = list(languages)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        classes = {code: model.heads[code].out_features for code in self.languages}
        self.val_metrics = StageMetrics("val", classes)
        self.test_metrics = StageMetrics("test", classes, confusion=True)
        objective = objective or {}
        self.digit_weight = float(objective.get("shared_digits", 0.0)) * (DIGIT_HEAD in model.heads)
        self.lid_weight = float(objective.get("script_id", 0.0)) * (LID_HEAD in model.heads)
        self.lid_real_weight = float(objective.get("script_id_real", 1.0))
        self.domain_weight = float(objective.get("domain_adversarial", 0.0))
        self.domain_head = None
        if self.domain_weight:
            width = model.backbone.out_features
            self.domain_head = torch.nn.Sequential(
                torch.nn.Linear(width, DOMAIN_HIDDEN),
                torch.nn.ReLU(inplace=True),
                torch.nn.Linear(DOMAIN_HIDDEN, 1),
            )
        self.anchor_weight = float(objective.get("glyph_anchor", 0.0))
        if self.anchor_weight:
            self._init_anchors(model.backbone.out_features, classes, groups)
        self.mixstyle = float(objective.get("mixstyle", 0.0))
        self.head_metrics = {s: HeadAccuracy(self.languages, groups) for s in ("val", "test")}
        log_prior = None if language_prior is None else language_prior.clamp_min(1e-8).log()
        self.register_buffer("lid_log_prior", log_prior, persistent=False)
        self.final: dict[str, float] = {}
        # `device.compile` puts the compiled backbone here: a plain dict, so its wrapper is
        # not registered as a submodule and the state dict keeps its keys.
        self.compiled: dict[str, Callable] = {}

    def forward(self, x: torch.Tensor, language: str) -> torch.Tensor:
        return self.model(x, language)

    def _loss(self, batch, metrics: StageMetrics | None = None) -> torch.Tensor:
        x, y, language_index, *domain = batch
        features = self.compiled.get("backbone", self.model.backbone)(x)
        loss = x.new_zeros(())
        for i, code in enumerate(self.languages):
            if len(self.languages) == 1:  # every row: no index to compute, nothing to gather
                logits, target = self.model.heads[code](features), y
            else:
                where = torch.nonzero(language_index == i).flatten()
                if not len(where):
                    continue
                logits, target = self.model.heads[code](features[where]), y[where]
            loss = loss + F.cross_entropy(logits, target, reduction="sum")
            if metrics is not None:
                metrics.update(code, logits.detach(), target)
        loss = loss / len(y)
        shared = {}
        if self.digit_weight:
            shared["digit"] = self.model.heads[DIGIT_HEAD](features)
            loss = loss + self.digit_weight * F.cross_entropy(shared["digit"], y)
        if self.lid_weight:
            shared["lid"] = self.model.heads[LID_HEAD](features)
            adjusted = shared["lid"]
            prior = self.lid_log_prior
            if prior is not None and prior.dim() == 2:  # per domain: rendered, real
                prior = prior[domain[0].long()] if domain else prior[0]
            if prior is not None:
                adjusted = adjusted + prior
            if domain and self.lid_real_weight != 1.0:
                weights = torch.where(domain[0], self.lid_real_weight, 1.0).to(adjusted.dtype)
                per_sample = F.cross_entropy(adjusted, language_index, reduction="none")
                lid_loss = (weights * per_sample).sum() / weights.sum().clamp_min(1.0)
            else:
                lid_loss = F.cross_entropy(adjusted, language_index)
            loss = loss + self.lid_weight * lid_loss
        if self.domain_head is not None and domain and self.training:  # not in val/loss
            loss = loss + self.domain_weight * self._domain_loss(features, domain[0])
        if self.anchor_weight and domain and self.training:
            loss = loss + self.anchor_weight * self._anchor_loss(
                features, y, language_index, domain[0]
            )
        heads = self.head_metrics.get(metrics.stage) if metrics is not None else None
        if heads is not None and shared:
            heads.update(shared, y, language_index)
        return loss

    def _domain_progress(self) -> float:
        """The share of training done, for the reversed gradient's ramp (1 outside `fit`)."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None:
            return 1.0
        total = trainer.estimated_stepping_batches
        return trainer.global_step / total if total and math.isfinite(total) else 1.0

    def _domain_loss(self, features: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of rendered vs real, each domain weighed to half the loss, on
        features whose gradient comes back reversed and scaled by the ramp."""
        scale = adversarial_ramp(self._domain_progress())
        logits = self.domain_head(reverse_gradient(features, scale)).squeeze(1)
        target = real.to(logits.dtype)
        n_real = target.sum()
        n_rendered = len(target) - n_real
        if not n_real or not n_rendered:  # one domain only: nothing to tell apart
            return logits.new_zeros(())
        weights = torch.where(real, 0.5 / n_real, 0.5 / n_rendered)
        per_sample = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (weights * per_sample).sum()

    def _init_anchors(self, width: int, classes: dict[str, int], groups: list[str] | None) -> None:
        """An anchor slot per (language, class); `anchor_rival[i, j]` is False where slot j
        may not compete with slot i: a group mate's slot of the same class (its glyph is the
        same digit shape, e.g. Hindi and Marathi ३)."""
        sizes = [classes[code] for code in self.languages]
        offsets = torch.tensor([0, *sizes]).cumsum(0)[:-1]
        slot_language = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        slot_class = torch.cat([torch.arange(n) for n in sizes])
        group_ids = {g: i for i, g in enumerate(dict.fromkeys(groups or self.languages))}
        group = torch.tensor([group_ids[g] for g in (groups or self.languages)])[slot_language]
        mate = (group[:, None] == group[None, :]) & (slot_class[:, None] == slot_class[None, :])
        rival = ~mate | torch.eye(len(slot_class), dtype=torch.bool)
        self.register_buffer("anchor_offsets", offsets, persistent=False)
        self.register_buffer("anchor_rival", rival, persistent=False)
        self.register_buffer("anchors", torch.zeros(len(slot_class), width), persistent=False)
        self.register_buffer("anchor_seen", torch.zeros(len(slot_class), dtype=torch.bool), False)

    @torch.no_grad()
    def _update_anchors(self, unit: torch.Tensor, slot: torch.Tensor) -> None:
        """Move each anchor toward the mean of this batch's rendered features of its slot."""
        sums = torch.zeros_like(self.anchors).index_add_(0, slot, unit.float())
        counts = torch.bincount(slot, minlength=len(self.anchors))
        present = counts > 0
        means = F.normalize(sums[present], dim=1)
        old = self.anchors[present]
        keep = torch.where(self.anchor_seen[present], ANCHOR_MOMENTUM, 0.0)[:, None]
        self.anchors[present] = F.normalize(keep * old + (1 - keep) * means, dim=1)
        self.anchor_seen |= present

    def _anchor_loss(
        self,
        features: torch.Tensor,
        y: torch.Tensor,
        language_index: torch.Tensor,
        real: torch.Tensor,
    ) -> torch.Tensor:
        """Cross-entropy of each sample's cosine similarities to the anchors seen so far
        (rivals only), its own (language, digit) the target; the anchors are then updated with
        this batch's rendered samples."""
        unit = F.normalize(features, dim=1)
        slot = self.anchor_offsets[language_index] + y
        if (~real).any():
            self._update_anchors(unit[~real].detach(), slot[~real])
        scored = self.anchor_seen[slot]
        if not scored.any():
            return features.new_zeros(())
        unit, slot = unit[scored], slot[scored]
        logits = unit @ self.anchors.T.to(unit.dtype) / ANCHOR_TEMPERATURE
        allowed = self.anchor_rival[slot] & self.anchor_seen[None, :]
        logits = logits.masked_fill(~allowed, float("-inf"))
        return F.cross_entropy(logits, slot)

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """A CPU batch is already where it trains: skip Lightning's walk over it."""
        if device.type == "cpu":
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _step_logged(self) -> bool:
        """Whether Lightning writes step metrics after this step (every `log_every_n_steps`).
        `self.log` walks its store of results on every call, so per-step values are logged
        only on those steps; what the logger and the progress bar show is the same."""
        connector = getattr(self.trainer, "_logger_connector", None)
        return bool(getattr(connector, "should_update_logs", True))

    def _style_hooks(self, batch) -> list:
        """Forward hooks that mix styles in this training batch (none in a share 1 − p)."""
        if not self.mixstyle or torch.rand(()).item() >= self.mixstyle:
            return []
        x, _, _, *domain = batch
        n = len(x)
        partner = style_partners(domain[0] if domain else None, n).to(x.device)
        beta = torch.distributions.Beta(MIXSTYLE_ALPHA, MIXSTYLE_ALPHA)
        weight = beta.sample((n,)).to(x.device)
        blocks = self.model.backbone.blocks[:MIXSTYLE_BLOCKS]
        return [
            block.register_forward_hook(lambda _m, _i, out: mix_style(out, partner, weight))
            for block in blocks
        ]

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        hooks = self._style_hooks(batch)
        try:
            loss = self._loss(batch)
        finally:
            for hook in hooks:
                hook.remove()
        logged = self._step_logged()
        if logged:
            self.log("train/loss", loss, prog_bar=True, batch_size=len(batch[1]))
        if self.regularizer is not None:
            penalty = self.regularizer(self.model)
            if logged:
                self.log("train/penalty", penalty, batch_size=len(batch[1]))
            loss = loss + penalty
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        loss = self._loss(batch, self.val_metrics)
        self.log("val/loss", loss, batch_size=len(batch[1]), sync_dist=True)

    def test_step(self, batch, batch_idx: int) -> None:
        loss = self._loss(batch, self.test_metrics)
        self.log("test/loss", loss, batch_size=len(batch[1]), sync_dist=True)

    def _log_stage(self, metrics: StageMetrics) -> None:
        values = metrics.compute()
        heads = self.head_metrics.get(metrics.stage)
        if heads is not None:
            values.update(heads.compute(metrics.stage))
            heads.reset()
        self.log_dict(values, prog_bar=False, sync_dist=True)
        self.final.update(values)
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_stage(self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self.confusion = self.test_metrics.confusion_matrices()
        self._log_stage(self.test_metrics)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Plain layout whatever the training used (channels-last): safetensors needs it.
        checkpoint["state_dict"] = {k: v.contiguous() for k, v in checkpoint["state_dict"].items()}
        # Enough to rebuild the architecture from the registry, without unpickling a class.
        checkpoint["xlvision"] = {
            "model": self.model_spec,
            "classes": {code: head.out_features for code, head in self.model.heads.items()},
        }

    def configure_optimizers(self):
        if self.param_groups is None:
            optimizer = self.optimizer_factory([p for p in self.parameters() if p.requires_grad])
        else:
            optimizer = self.optimizer_factory([{"params": g["params"]} for g in self.param_groups])
            for group, spec in zip(optimizer.param_groups, self.param_groups, strict=True):
                group["lr"] = group["lr"] * spec.get("lr_scale", 1.0)
        if self.scheduler_factory is None:
            return optimizer
        if self.scheduler_interval == "step":
            # One-cycle sets every group's lr from max_lr: keep the groups' own scales.
            scheduler = self.scheduler_factory(
                optimizer,
                max_lr=[g["lr"] for g in optimizer.param_groups],
                total_steps=int(self.trainer.estimated_stepping_batches),
            )
        else:
            scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }
