"""The pure training engine: typed config in, fine-tuned weights and progress events out.

Importing this package (or `config`, `hyperparams`, `callbacks`) never imports torch, so
the API can use the config types and the hyperparameter rules.
"""
