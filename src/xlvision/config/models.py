"""The names of the backbones, without importing torch (configs are checked before it loads).
`registry.MODELS` builds exactly these; a test keeps the two in step."""

MODEL_NAMES = ("net", "resnet18", "resnet34", "resnet50")

PENS = ("as_drawn", "one")
"""`model.pen`, as `models.pen.PENS`: images as drawn, or redrawn with one pen."""

VIEW_SETS = ("none", "shifts", "shifts_thick")
"""`integrate.views`, as `models.views.VIEW_SETS`: each image read alone, or as the mean of its
features over fixed moved copies."""
