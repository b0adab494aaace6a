"""The integration methods: per-language models in, the members of one unified model out.

Shared-backbone methods (multihead, average, task_arithmetic, ties, joint) give one member,
`shared`, with every language's head and a `_lid` head on the same features. `routed` keeps
every language's own model and adds a `router` member whose `_lid` head picks one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import torch
from omegaconf import DictConfig
from rich.console import Console
from torch import nn

from xlvision.bundle.model import ANSWERS, LID_HEAD, UnifiedModel
from xlvision.config.errors import ConfigError
from xlvision.data.datamodule import DigitDataModule
from xlvision.evaluation.means import language_mean
from xlvision.evaluation.metrics import accuracy_per_language
from xlvision.integrate.inputs import Sources
from xlvision.integrate.merge import average, task_arithmetic, ties
from xlvision.integrate.probe import extract_features, language_id_head, train_linear_head
from xlvision.models.batchnorm import reestimate_batchnorm
from xlvision.models.checkpoint import load_classifier
from xlvision.models.classifier import DIGIT_HEAD, Classifier, language_codes
from xlvision.models.copies import Copies
from xlvision.models.registry import build_classifier
from xlvision.progress import tracked
from xlvision.training.builders import (
    build_optimizer,
    build_scheduler,
    build_trainer,
    finish_loggers,
)
from xlvision.training.module import DigitClassifierModule

SHARED = "shared"
ROUTER = "router"


@dataclass
class Integrated:
    """What a method hands to the bundle: members, their specs, and who reads which language."""

    members: dict[str, Classifier]
    specs: dict[str, dict]
    routes: dict[str, str]
    router: str
    params: dict = field(default_factory=dict)


@dataclass
class Context:
    sources: Sources
    data: DigitDataModule
    cfg: DictConfig
    output_dir: Path
    console: Console

    @property
    def conf(self) -> DictConfig:
        return self.cfg.integrate

    @property
    def codes(self) -> list[str]:
        return self.sources.codes

    def train_features(self, backbone: nn.Module):
        self.console.print(f"  features of {len(self.data.datasets['train'])} training images")
        return extract_features(backbone, self.data.train_dataloader())

    def lid_head(self, features: torch.Tensor, languages: torch.Tensor) -> nn.Linear:
        conf = self.conf
        return language_id_head(
            features, languages, len(self.codes), conf.probe_epochs, conf.probe_lr, self.cfg.seed
        )


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def shared_member(
    ctx: Context, backbone: nn.Module, heads: dict[str, nn.Linear], features=None
) -> Classifier:
    """One backbone, every language's head and a `_lid` head trained on its features."""
    features, _, languages = features or ctx.train_features(backbone)
    model = Classifier(backbone, {})
    for code in ctx.codes:
        model.heads[code] = heads[code]
    model.heads[LID_HEAD] = ctx.lid_head(features, languages)
    return model


def shared(ctx: Context, model: Classifier, spec: dict, params: dict) -> Integrated:
    routes = dict.fromkeys(ctx.codes, SHARED)
    return Integrated({SHARED: model}, {SHARED: spec}, routes, SHARED, params)


def tuned_heads(ctx: Context) -> dict[str, nn.Linear]:
    return {code: copy.deepcopy(ctx.sources.tuned[code].heads[code]) for code in ctx.codes}


def common_spec(sources: Sources, method: str) -> dict:
    """The one architecture every model shares; weight-space merging needs it."""
    specs = list(sources.specs.values())
    if sources.base_spec is not None:
        specs.append(sources.base_spec)
    for code, spec in sources.specs.items():
        if spec != specs[0]:
            raise ConfigError(
                "integrate",
                method,
                f"a method for models of one architecture: the {code!r} model is "
                f"{spec['name']}, another {specs[0]['name']}"
                + ("" if spec["name"] != specs[0]["name"] else " with other settings")
                + " (use routed or multihead)",
            )
    return specs[0]


NEEDS_BASE = ("multihead", "task_arithmetic", "ties", "unified")
ONE_ARCHITECTURE = ("average", "task_arithmetic", "ties", "joint")


def check_sources(method: str, sources: Sources) -> None:
    """What `method` needs of its models (a base, one architecture), checked as soon as they
    are loaded: before any data is read or model tested, so a wrong choice costs no minutes."""
    if method in NEEDS_BASE:
        sources.require_base(method)
    if method in ONE_ARCHITECTURE:
        common_spec(sources, method)


def multihead(ctx: Context) -> Integrated:
    """The base backbone, frozen; heads of models whose backbone moved become linear probes."""
    base = ctx.sources.require_base("multihead")
    backbone = copy.deepcopy(base.backbone)
    features = ctx.train_features(backbone)
    heads, probed = tuned_heads(ctx), []
    for i, code in enumerate(ctx.codes):
        if same_weights(ctx.sources.tuned[code].backbone, base.backbone):
            continue
        ctx.console.print(f"  linear probe of the {code} head on the base features")
        where = features[2] == i
        conf = ctx.conf
        train_linear_head(
            heads[code],
            features[0][where],
            features[1][where],
            conf.probe_epochs,
            conf.probe_lr,
            ctx.cfg.seed,
        )
        probed.append(code)
    model = shared_member(ctx, backbone, heads, features)
    return shared(ctx, model, ctx.sources.base_spec, {"probed": probed})


def bn_batches(ctx: Context) -> list[torch.Tensor]:
    """The same few training batches (every language mixed) for every re-estimation."""
    return [x for x, _, _ in islice(ctx.data.train_dataloader(), ctx.conf.bn_batches)]


def merged_backbone(
    ctx: Context, merge: Callable[[dict, list[dict]], dict], batches: list[torch.Tensor]
) -> nn.Module:
    """Merge the fine-tuned backbones' parameters, then re-estimate BatchNorm statistics.

    Only parameters merge: running statistics are not weights, and a task vector that
    counted them would spend TIES's top-k budget on them.
    """
    reference = ctx.sources.base or ctx.sources.tuned[ctx.codes[0]]
    backbone = copy.deepcopy(reference.backbone)
    names = {name for name, _ in backbone.named_parameters()}

    def parameters(model: Classifier) -> dict[str, torch.Tensor]:
        return {k: v for k, v in model.backbone.state_dict().items() if k in names}

    base = parameters(reference)
    state = backbone.state_dict()
    state.update(merge(base, [parameters(ctx.sources.tuned[c]) for c in ctx.codes]))
    backbone.load_state_dict(state)
    reestimate_batchnorm(backbone, batches)
    return backbone


def pick_lambda(
    ctx: Context, merge: Callable[[dict, list[dict], float], dict]
) -> tuple[nn.Module, dict]:
    """The merged backbone at `integrate.lam`, or at the grid value best on validation data."""
    batches = bn_batches(ctx)
    if ctx.conf.lam is not None:
        lam = float(ctx.conf.lam)
        return merged_backbone(ctx, lambda b, s: merge(b, s, lam), batches), {"lam": lam}
    heads = tuned_heads(ctx)
    scores, best = {}, None
    for lam in ctx.conf.lam_grid:
        backbone = merged_backbone(ctx, lambda b, s, lam=lam: merge(b, s, lam), batches)
        model = Classifier(backbone, {})
        model.heads.update(heads)
        model.eval()
        scores[lam] = language_mean(
            accuracy_per_language(model, ctx.data.val_dataloader(), ctx.codes)
        )
        ctx.console.print(f"  λ={lam}: val mean acc {scores[lam]:.4f}")
        if best is None or scores[lam] > scores[best[0]]:
            best = (lam, backbone)
    by_lam = {str(k): v for k, v in scores.items()}
    return best[1], {"lam": float(best[0]), "val_mean_acc_by_lam": by_lam}


def averaged(ctx: Context) -> Integrated:
    spec = common_spec(ctx.sources, ctx.conf.name)
    backbone = merged_backbone(ctx, lambda base, states: average(states), bn_batches(ctx))
    return shared(ctx, shared_member(ctx, backbone, tuned_heads(ctx)), spec, {})


def task_arithmetic_merge(ctx: Context) -> Integrated:
    ctx.sources.require_base("task_arithmetic")
    spec = common_spec(ctx.sources, ctx.conf.name)
    backbone, params = pick_lambda(ctx, task_arithmetic)
    return shared(ctx, shared_member(ctx, backbone, tuned_heads(ctx)), spec, params)


def ties_merge(ctx: Context) -> Integrated:
    ctx.sources.require_base("ties")
    spec = common_spec(ctx.sources, ctx.conf.name)
    k = float(ctx.conf.k)
    backbone, params = pick_lambda(ctx, lambda base, states, lam: ties(base, states, k, lam))
    model = shared_member(ctx, backbone, tuned_heads(ctx))
    return shared(ctx, model, spec, {"k": k, **params})


def joint(ctx: Context) -> Integrated:
    """One model trained on every language's data at once, from the base (or from scratch)."""
    spec = common_spec(ctx.sources, ctx.conf.name)
    base = ctx.sources.base
    model = copy.deepcopy(base) if base is not None else build_classifier(spec, {})
    for code in list(model.heads):
        del model.heads[code]
    model.heads.update(tuned_heads(ctx))
    scheduler, interval = build_scheduler(ctx.cfg.scheduler)
    module = DigitClassifierModule(
        model, ctx.codes, build_optimizer(ctx.cfg.optimizer), scheduler, interval, spec
    )
    run_dir = ctx.output_dir / "joint"
    trainer = build_trainer(
        ctx.cfg, run_dir, tags=[*ctx.codes, spec["name"], "joint"], monitor="val/mean/acc"
    )
    ctx.console.print(f"  joint training on {', '.join(ctx.codes)} → {run_dir}")
    trainer.fit(module, datamodule=ctx.data)
    finish_loggers(trainer)
    best = trainer.checkpoint_callback.best_model_path
    trained = load_classifier(best)[0] if best else model
    heads = {code: trained.heads[code] for code in ctx.codes}
    member = shared_member(ctx, trained.backbone, heads)
    return shared(ctx, member, spec, {"epochs": trainer.current_epoch})


def routed(ctx: Context) -> Integrated:
    """Every language's own model; a `_lid` head on a frozen backbone routes between them."""
    sources = ctx.sources
    members, specs = {}, {}
    for code in ctx.codes:
        own = copy.deepcopy(sources.tuned[code])
        for other in [c for c in own.heads if c != code]:
            del own.heads[other]
        members[code], specs[code] = own, sources.specs[code]
    reference = sources.base or sources.tuned[ctx.codes[0]]
    router_spec = sources.base_spec if sources.base is not None else sources.specs[ctx.codes[0]]
    backbone = copy.deepcopy(reference.backbone)
    features, _, languages = ctx.train_features(backbone)
    router = Classifier(backbone, {})
    router.heads[LID_HEAD] = ctx.lid_head(features, languages)
    members[ROUTER], specs[ROUTER] = router, router_spec
    return Integrated(members, specs, {code: code for code in ctx.codes}, ROUTER)


@torch.no_grad()
@torch.no_grad()
def answer_accuracies(
    model: UnifiedModel, batches, codes: list[str], answers: list[str]
) -> dict[str, float]:
    """Per answer rule, the mean over languages of the digit accuracy read without the
    language: every rule reads each batch from one backbone pass."""
    correct = {a: torch.zeros(len(codes)) for a in answers}
    seen = torch.zeros(len(codes))
    for x, y, language in tracked(batches, "every answer rule on validation data"):
        with model.reusing_features():
            for answer in answers:
                hit = (model.predict(x, answer=answer)["digit"] == y).float()
                correct[answer] += torch.bincount(language, weights=hit, minlength=len(codes))
        seen += torch.bincount(language, minlength=len(codes)).float()
    return {
        answer: language_mean(
            {c: float(hits[i] / seen[i]) for i, c in enumerate(codes) if seen[i] > 0}
        )
        for answer, hits in correct.items()
    }


def _with_heads_of(base: Classifier, codes: list[str]) -> Classifier:
    """A copy of `base` without the language heads of languages not in `codes`."""
    model = copy.deepcopy(base).eval()
    for code in language_codes(base.heads):
        if code not in codes:
            del model.heads[code]
    return model


def _as_bundled(base: Classifier, codes: list[str]) -> Classifier | None:
    """A copy of `base` with the heads of `codes` only, its trained `_lid` head's rows in their
    order; None if it has no `_lid` head for every language it was trained on."""
    model = _with_heads_of(base, codes)
    trained = language_codes(base.heads)
    lid = model.heads[LID_HEAD] if LID_HEAD in model.heads else None
    if lid is None or lid.out_features != len(trained):
        return None
    rows = torch.tensor([trained.index(code) for code in codes])
    model.heads[LID_HEAD] = nn.Linear(lid.in_features, len(rows))
    model.heads[LID_HEAD].load_state_dict(
        {"weight": lid.weight[rows].clone(), "bias": lid.bias[rows].clone()}
    )
    return model


def unified(ctx: Context) -> Integrated:
    """The base model as trained on every language at once (`xlv-train` with the objective's
    `_digit` and `_lid` heads), bundled as is; a `_lid` head is probed only if it lacks one.
    With `integrate.copies` (other trainings of it), the member reads with all of them and
    averages their probabilities (`Copies`).
    `integrate.answer: auto` picks how a digit is read without its script on validation data
    (read with the bundle's `views`)."""
    base = ctx.sources.require_base("unified")
    trained = language_codes(base.heads)
    missing = [code for code in ctx.codes if code not in trained]
    if missing:
        raise ValueError(f"integrate=unified: the base model has no head for {', '.join(missing)}")
    spec = ctx.sources.base_spec
    model = _as_bundled(base, ctx.codes)
    if ctx.sources.copies:
        copies = [model, *(_as_bundled(c, ctx.codes) for c in ctx.sources.copies)]
        if any(c is None for c in copies):
            raise ConfigError("integrate.copies", "…", "trainings with a trained script-ID head")
        if ctx.conf.get("evidence", 0) != 0:
            raise ConfigError(
                "integrate.evidence",
                ctx.conf.evidence,
                "0 with integrate.copies (their heads give probabilities, not digit logits)",
            )
        model = Copies(copies).eval()
        ctx.console.print(f"  {len(copies)} trainings of the base read as one (their mean)")
        spec = {**spec, "copies": len(copies)}
        params = {"script_id": "trained", "copies": len(copies)}
    elif model is not None:
        params = {"script_id": "trained"}
    else:
        model = _with_heads_of(base, ctx.codes)
        ctx.console.print("  the base has no trained script-ID head: a linear probe instead")
        features, _, languages = ctx.train_features(model.backbone)
        model.heads[LID_HEAD] = ctx.lid_head(features, languages)
        params = {"script_id": "linear probe"}
    answers = [a for a in ANSWERS if a != "shared" or DIGIT_HEAD in model.heads]
    routes = dict.fromkeys(ctx.codes, SHARED)
    choice = ctx.conf.answer
    if choice == "auto":
        candidate = UnifiedModel(
            {SHARED: model}, routes, ctx.codes, SHARED, views=ctx.conf.get("views", "none")
        )
        scores = answer_accuracies(candidate, ctx.data.val_dataloader(), ctx.codes, answers)
        for answer in answers:
            ctx.console.print(
                f"  answer={answer}: val mean acc without the script {scores[answer]:.4f}"
            )
        choice = max(answers, key=lambda a: scores[a])
        params["val_acc_by_answer"] = scores
    elif choice not in answers:
        raise ValueError(f"integrate.answer={choice}: the base model has no {DIGIT_HEAD!r} head")
    params["answer"] = choice
    return Integrated({SHARED: model}, {SHARED: spec}, routes, SHARED, params)


METHODS: dict[str, Callable[[Context], Integrated]] = {
    "multihead": multihead,
    "average": averaged,
    "task_arithmetic": task_arithmetic_merge,
    "ties": ties_merge,
    "joint": joint,
    "routed": routed,
    "unified": unified,
}
