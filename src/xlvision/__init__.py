"""xlvision: cross-lingual fine-tuning of image classifiers on digits in many scripts."""

__version__ = "0.1.0"
