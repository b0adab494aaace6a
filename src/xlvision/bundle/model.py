"""`UnifiedModel`: one module that reads every language of a bundle."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from xlvision.models.classifier import DIGIT_HEAD, LID_HEAD, Classifier
from xlvision.models.views import Views

TEMPERATURES = ("script", "digit")
"""The kinds of temperature a bundle has: its router's and its digit heads'."""
ANSWERS = ("routed", "shared", "marginal")
"""How a digit is read when the script is not given: `routed` reads it with the head of the
language the router names; `shared` with the router member's `_digit` head, shared by every
script (independent of the script choice); `marginal` weighs every language's reading by the
router's probability of that language (so a choice inside a script group barely matters)."""


def cosine_familiarity(
    features: torch.Tensor,
    prototypes: torch.Tensor,
    neighbours: torch.Tensor | None = None,
    center: torch.Tensor | None = None,
    projection: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B]: the largest cosine similarity of each row of `features` [B, D] to a row of
    `prototypes`; with `neighbours`, averaged with the largest cosine of the projected features
    ((features − center) @ projection) to a row of `neighbours`."""
    familiar = (F.normalize(features, dim=1) @ prototypes.T).max(dim=1).values
    if neighbours is None:
        return familiar
    projected = F.normalize((features - center) @ projection, dim=1)
    return (familiar + (projected @ neighbours.T).max(dim=1).values) / 2


class UnifiedModel(nn.Module):
    """Members (classifiers) with a route per language and an optional language-ID router.

    `routes[code]` names the member whose head `code` reads that language; `router` names the
    member whose head `_lid` scores `languages` in order (None: the language must be given).
    A shared-backbone model has one member holding every head; a routed one a member each.
    `answer` (one of `ANSWERS`) says how a digit is read without its language.
    `temperatures` ({'script': T, 'digit': T}, fitted on validation data when the bundle was
    made; 1 if not) divide the router's and every digit head's logits before each softmax:
    the probabilities `predict` and `script_probs` give are calibrated. `forward` stays raw.
    `prototypes` (a buffer, None until `set_prototypes`) are unit directions of the router's
    features, one per (language, digit) of the validation data; `familiarity` compares with them,
    and with `neighbours` too when set (`integrate.familiarity=with_nearest`): one unit vector
    per validation image, in the space of the features less `feature_center`, times
    `feature_projection` [D, d].
    `evidence` (λ ≥ 0, fitted on validation data with the temperatures; 0: none) adds to each
    language's router logit λ times the logsumexp of that language's digit logits (calibrated):
    how well the image reads as one of its digits, so a router that takes style for script is
    checked by the heads that know each script's shapes (`script_logits`).
    `temperature_rise` (None until `set_temperature_rise`; `integrate.temperature=
    by_familiarity`) makes each kind's temperature grow as an image's class-mean familiarity
    falls below the validation images' median: t · exp(slope · max(0, below − familiarity)), so
    an image unlike anything the bundle was calibrated on is read less surely (`temperature`).
    The digit evidence keeps the constant digit temperature it was fitted with.
    `views` (one of `xlvision.models.views.VIEW_SETS`; `integrate.views`) reads every image as
    the mean of the backbone features of it and its fixed moved copies (`features`).
    """

    def __init__(
        self,
        members: dict[str, Classifier],
        routes: dict[str, str],
        languages: list[str],
        router: str | None = None,
        answer: str = "routed",
        temperatures: dict[str, float] | None = None,
        evidence: float = 0.0,
        views: str = "none",
    ) -> None:
        super().__init__()
        self.views = Views(views)
        self._reused: dict | None = None  # member features per input, in `reusing_features`
        self._set: _SetFeatures | None = None  # a whole set's features, in `reading_set`
        self.temperatures = {"script": 1.0, "digit": 1.0, **(temperatures or {})}
        if not all(t > 0 for t in self.temperatures.values()):
            raise ValueError(f"temperatures must be > 0, got {self.temperatures}")
        if not evidence >= 0:
            raise ValueError(f"evidence must be ≥ 0, got {evidence}")
        self.evidence = float(evidence)
        self.members = nn.ModuleDict(members)
        self.routes = dict(routes)
        self.languages = list(languages)
        self.router = router
        if answer not in ANSWERS:
            raise ValueError(f"answer={answer!r}: one of {', '.join(ANSWERS)}")
        if answer == "shared" and (router is None or DIGIT_HEAD not in members[router].heads):
            raise ValueError(f"answer='shared' needs a {DIGIT_HEAD!r} head on the router member")
        self.answer = answer
        for code in self.languages:
            key = self.routes.get(code)
            if key not in self.members or code not in self.members[key].heads:
                raise ValueError(f"language {code!r} has no route to a member with its head")
        if router is not None:
            heads = self.members[router].heads if router in self.members else {}
            if LID_HEAD not in heads or heads[LID_HEAD].out_features != len(self.languages):
                raise ValueError(
                    f"router {router!r} needs a head {LID_HEAD!r} with {len(self.languages)} "
                    "outputs, one per language"
                )
        self.register_buffer("prototypes", None)
        self.register_buffer("neighbours", None)
        self.register_buffer("feature_center", None)
        self.register_buffer("feature_projection", None)
        self.temperature_rise: dict | None = None

    def set_temperature_rise(self, rise: dict | None) -> None:
        """Keep `rise` ({'below': f, 'script': {'t': T, 'slope': β}, 'digit': {…}}: T > 0,
        β ≥ 0, all finite), checked; None drops it. It reads the class-mean familiarity, so it
        needs prototypes."""
        if rise is None:
            self.temperature_rise = None
            return
        if self.prototypes is None:
            raise ValueError("temperature_rise needs prototypes (it reads their familiarity)")
        try:
            below = float(rise["below"])
            kinds = {k: (float(rise[k]["t"]), float(rise[k]["slope"])) for k in TEMPERATURES}
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                "temperature_rise needs a number 'below' and, for script and digit, numbers "
                "'t' and 'slope'"
            ) from None
        numbers = [below, *(v for pair in kinds.values() for v in pair)]
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError("temperature_rise holds a value that is not finite")
        if not all(t > 0 and slope >= 0 for t, slope in kinds.values()):
            raise ValueError(f"temperature_rise: each t must be > 0 and slope ≥ 0, got {rise}")
        self.temperature_rise = {
            "below": below,
            **{k: {"t": t, "slope": slope} for k, (t, slope) in kinds.items()},
        }

    def temperature(self, kind: str, features: torch.Tensor | None = None) -> torch.Tensor | float:
        """The temperature of `kind` (script or digit): the constant one, or with a
        `temperature_rise`, one per image [B, 1] from the router's backbone `features` [B, D]."""
        rise = self.temperature_rise
        if rise is None:
            return self.temperatures[kind]
        if features is None:
            raise ValueError("a temperature rising with unfamiliarity needs the router's features")
        gap = (rise["below"] - cosine_familiarity(features, self.prototypes)).clamp(min=0)
        return (rise[kind]["t"] * torch.exp(rise[kind]["slope"] * gap)).unsqueeze(1)

    def set_prototypes(
        self,
        prototypes: torch.Tensor | None,
        neighbours: torch.Tensor | None = None,
        center: torch.Tensor | None = None,
        projection: torch.Tensor | None = None,
    ) -> None:
        """Keep `prototypes` [K, D]: unit vectors in the space of the router's backbone features
        (D wide), and optionally `neighbours` [N, d]: unit vectors in the space of (features −
        `center` [D]) @ `projection` [D, d]; None drops them all. Stored as given (float32), so
        a bundle round trip is exact."""
        if prototypes is None:
            if neighbours is not None:
                raise ValueError("neighbours need prototypes beside them")
            self.temperature_rise = None
            self.prototypes = self.neighbours = None
            self.feature_center = self.feature_projection = None
            return
        if self.router is None:
            raise ValueError("prototypes need a router: they are directions of its features")
        lid = self.members[self.router].heads[LID_HEAD]
        width = lid.in_features
        shape = tuple(prototypes.shape)
        if len(shape) != 2 or shape[0] < 1 or shape[1] != width:
            raise ValueError(
                f"prototypes of shape {list(shape)}: expected [K ≥ 1, {width}] "
                "(the router's feature width)"
            )
        given = [t is not None for t in (neighbours, center, projection)]
        if any(given) and not all(given):
            raise ValueError("neighbours, their feature center and projection go together")
        if neighbours is not None:
            if tuple(center.shape) != (width,):
                raise ValueError(
                    f"feature center of shape {list(center.shape)}: expected [{width}] "
                    "(the router's feature width)"
                )
            if projection.dim() != 2 or projection.shape[0] != width or projection.shape[1] < 1:
                raise ValueError(
                    f"feature projection of shape {list(projection.shape)}: expected "
                    f"[{width}, d ≥ 1] (the router's feature width first)"
                )
            if (
                neighbours.dim() != 2
                or neighbours.shape[0] < 1
                or neighbours.shape[1] != projection.shape[1]
            ):
                raise ValueError(
                    f"neighbours of shape {list(neighbours.shape)}: expected "
                    f"[N ≥ 1, {projection.shape[1]}] (the projection's width)"
                )
        tensors = {
            "prototypes": prototypes,
            "neighbours": neighbours,
            "center": center,
            "projection": projection,
        }
        for name, tensor in tensors.items():
            if tensor is not None and not torch.isfinite(tensor).all():
                raise ValueError(f"{name} hold a value that is not finite")

        def kept(tensor: torch.Tensor | None) -> torch.Tensor | None:
            if tensor is None:
                return None
            device = next(lid.parameters()).device
            return tensor.detach().to(device, torch.float32).clone()

        self.prototypes = kept(prototypes)
        self.neighbours = kept(neighbours)
        self.feature_center = kept(center)
        self.feature_projection = kept(projection)

    def features(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """[B, D]: member `key`'s backbone features of `x`, averaged over the bundle's views;
        inside `reusing_features`, computed once per member and input tensor; inside
        `reading_set`, taken from the set's when every image of `x` is one of its."""
        if self._set is not None:
            found = self._set.features(key, x)
            if found is not None:
                return found
        if self._reused is None:
            return self.views.read(self.members[key].backbone, x)
        slot = (key, id(x))
        if slot not in self._reused:  # the input is kept with them, so its id stays its own
            self._reused[slot] = (x, self.views.read(self.members[key].backbone, x))
        return self._reused[slot][1]

    @contextmanager
    def reusing_features(self) -> Iterator[None]:
        """Within it, reading the same input tensor again (the language given, then each answer
        rule, as `xlv-eval` does) reuses its features instead of running the backbones again.
        The weights must not change inside it."""
        self._reused = {}
        try:
            yield
        finally:
            self._reused = None

    @contextmanager
    def reading_set(self, x: torch.Tensor, batch_size: int) -> Iterator[None]:
        """Within it, each member's backbone reads the images of `x` (a whole test set) once,
        in batches of `batch_size`, the first time a batch of them is asked for; any later
        batch of its images, in any order or grouping (by script, by page), is given their
        features instead of a backbone pass. Images are matched by their bytes. The weights
        must not change inside it."""
        self._set = _SetFeatures(self, x, batch_size)
        try:
            yield
        finally:
            self._set = None

    def forward(self, x: torch.Tensor, language: str) -> torch.Tensor:
        """Digit logits of a batch known to be in `language`."""
        key = self.routes[language]
        return self.members[key].heads[language](self.features(key, x))

    def script_probs(self, x: torch.Tensor) -> torch.Tensor:
        """p(language | image) [B, L] by the router (and the digit evidence), languages in
        `languages` order."""
        features = {}
        return self._script(self.script_logits(x, features), features)

    def script_scores(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """`script_probs` [B, L] and, with prototypes, `familiarity` [B]: one router pass."""
        features = {}
        out = {"script_probs": self._script(self.script_logits(x, features), features)}
        if self.prototypes is not None:
            out["familiarity"] = self._familiarity(features[self.router])
        return out

    def script_logits(
        self, x: torch.Tensor, features: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """[B, L] raw script logits: the router's, plus with `evidence` λ · logsumexp of each
        language's calibrated digit logits. `features` (member → backbone output) are reused
        and filled in."""
        if self.router is None:
            raise ValueError("this model has no language-identification router")
        features = {} if features is None else features
        if self.router not in features:
            features[self.router] = self.features(self.router, x)
        logits = self.members[self.router].heads[LID_HEAD](features[self.router])
        if self.evidence == 0:
            return logits
        return logits + self.evidence * self.digit_evidence(x, features)

    def digit_evidence(
        self, x: torch.Tensor, features: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """[B, L]: logsumexp of each language's digit logits divided by the digit temperature."""
        features = {} if features is None else features
        columns = []
        for code in self.languages:
            key = self.routes[code]
            if key not in features:
                features[key] = self.features(key, x)
            logits = self.members[key].heads[code](features[key])
            columns.append(torch.logsumexp(logits / self.temperatures["digit"], dim=1))
        return torch.stack(columns, dim=1)

    def familiarity(self, x: torch.Tensor) -> torch.Tensor:
        """[B]: the largest cosine similarity of an image's router features to a prototype. An
        image of a script the bundle holds is near its (language, digit)'s mean (and, with
        neighbours, near one of its validation images); one of another script, however surely
        the router names a script for it, is farther from all."""
        if self.prototypes is None:
            raise ValueError("this model has no prototypes to measure familiarity with")
        return self._familiarity(self.features(self.router, x))

    def _familiarity(self, features: torch.Tensor) -> torch.Tensor:
        return cosine_familiarity(
            features, self.prototypes, self.neighbours, self.feature_center, self.feature_projection
        )

    def _script(self, logits: torch.Tensor, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return (logits / self.temperature("script", features.get(self.router))).softmax(dim=1)

    def _digit(self, logits: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
        return (logits / temperature).softmax(dim=1)

    def _digit_temperature(self, features: dict[str, torch.Tensor]) -> torch.Tensor | float:
        """The digit temperature of each image of a batch whose router features are computed."""
        if self.temperature_rise is None:
            return self.temperatures["digit"]
        return self.temperature("digit", features[self.router])

    def predict(
        self, x: torch.Tensor, language: str | None = None, answer: str | None = None
    ) -> dict[str, torch.Tensor]:
        """Language and digit per sample. With `language` given, routing is skipped and its
        probability is 1; otherwise the router names it and `answer` (default: the model's)
        says how the digit is read. With prototypes, `familiarity` too, in both cases: with
        the language given it costs a router pass only when the router is another member."""
        n = x.shape[0]
        answer = answer or self.answer
        if language is not None:
            if language not in self.routes:
                raise ValueError(f"unknown language {language!r}: one of {self.languages}")
            index = torch.full((n,), self.languages.index(language), dtype=torch.long)
            features = {}
            if self.prototypes is not None:
                features[self.router] = self.features(self.router, x)
            read = self._read_by_language(
                x, index.to(x.device), torch.ones(n, device=x.device), features
            )
            return {**read, **self._familiar(features)}
        if self.router is None:
            raise ValueError("this model has no language-identification router")
        router = self.members[self.router]
        features = {self.router: self.features(self.router, x)}
        probs = self._script(self.script_logits(x, features), features)
        language_prob, index = probs.max(dim=1)
        if answer == "routed":
            read = self._read_by_language(x, index, language_prob, features)
            return {**read, **self._familiar(features)}
        if answer == "shared":
            digits = self._digit(
                router.heads[DIGIT_HEAD](features[self.router]), self._digit_temperature(features)
            )
        else:
            digits = self._marginal_digits(x, probs, features)
        digit_prob, digit = digits.max(dim=1)
        return {
            "language": index,
            "language_prob": language_prob,
            "digit": digit,
            "digit_prob": digit_prob,
            **self._familiar(features),
        }

    def _familiar(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{'familiarity': …} from the router's features when there are prototypes, else {}."""
        if self.prototypes is None:
            return {}
        return {"familiarity": self._familiarity(features[self.router])}

    def _marginal_digits(
        self, x: torch.Tensor, language_probs: torch.Tensor, features: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Σ over languages of p(language | x) · p(digit | x, language), ten-class languages."""
        total, temperature = None, self._digit_temperature(features)
        for i, code in enumerate(self.languages):
            key = self.routes[code]
            if key not in features:
                features[key] = self.features(key, x)
            probs = self._digit(self.members[key].heads[code](features[key]), temperature)
            if total is None:
                total = torch.zeros_like(probs)
            if probs.shape[1] == total.shape[1]:
                total = total + language_probs[:, i : i + 1] * probs
        return total

    def _read_by_language(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        language_prob: torch.Tensor,
        features: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Each sample read by the head of the language `index` names."""
        n = x.shape[0]
        digit = torch.zeros(n, dtype=torch.long, device=x.device)
        digit_prob = torch.zeros(n, device=x.device)
        temperature = self._digit_temperature(features)
        for key, member in self.members.items():
            codes = [(i, c) for i, c in enumerate(self.languages) if self.routes[c] == key]
            mine = torch.zeros(n, dtype=torch.bool, device=x.device)
            for i, _ in codes:
                mine |= index == i
            if not mine.any():
                continue
            where = torch.nonzero(mine).flatten()
            if key in features:
                feats = features[key][where]
            else:  # every sample of the batch: the batch itself, whose features may be reused
                feats = self.features(key, x if len(where) == n else x[where])
            for i, code in codes:
                sub = index[where] == i
                if sub.any():
                    t = temperature[where[sub]] if torch.is_tensor(temperature) else temperature
                    prob, label = self._digit(member.heads[code](feats[sub]), t).max(dim=1)
                    digit[where[sub]], digit_prob[where[sub]] = label, prob
        return {
            "language": index,
            "language_prob": language_prob,
            "digit": digit,
            "digit_prob": digit_prob,
        }


SET_FEATURES_BYTES = 2**30
"""The most a `reading_set` keeps (every member's features together); a member whose set
features would pass it is read batch by batch as outside one."""


class _SetFeatures:
    """`UnifiedModel.reading_set`'s store: the set's rows by their bytes, and per member the
    features of every row, read on first use."""

    def __init__(self, model: UnifiedModel, x: torch.Tensor, batch_size: int) -> None:
        self.model, self.x, self.batch_size = model, x, batch_size
        flat = x.detach().cpu().reshape(len(x), -1).numpy()
        self.rows = {row.tobytes(): i for i, row in enumerate(flat)}
        self.read: dict[str, torch.Tensor | None] = {}  # None: too large to keep

    def features(self, key: str, x: torch.Tensor) -> torch.Tensor | None:
        """[B, D] of `x`'s rows, or None if one of them is not in the set (or the member's
        set features are not kept)."""
        if self.read.get(key, 0) is None:
            return None
        flat = x.detach().cpu().reshape(len(x), -1).numpy()
        index = [self.rows.get(row.tobytes()) for row in flat]
        if None in index:
            return None
        if key not in self.read:
            self.read[key] = self._read_all(key, x.device)
            if self.read[key] is None:
                return None
        return self.read[key][torch.tensor(index, device=self.read[key].device)]

    def _read_all(self, key: str, device: torch.device) -> torch.Tensor | None:
        backbone, parts = self.model.members[key].backbone, self.x.split(self.batch_size)
        first = self.model.views.read(backbone, parts[0].to(device))
        kept = sum(t.numel() * t.element_size() for t in self.read.values() if t is not None)
        if kept + len(self.x) * first[0].numel() * first.element_size() > SET_FEATURES_BYTES:
            return None
        rest = [self.model.views.read(backbone, part.to(device)) for part in parts[1:]]
        return torch.cat([first, *rest])
