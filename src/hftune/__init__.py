"""hftune: hyperparameter studies for Hugging Face fine-tuning on Ray Tune."""

__version__ = "0.1.0"
