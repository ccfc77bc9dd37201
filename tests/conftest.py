"""Shared test settings: torch on one thread, hypothesis profiles."""

import os

import torch
from hypothesis import settings

# One thread: the test models are tiny, and OpenMP threads spinning against the other
# processes of a 2-core machine (a notebook kernel, a browser) slow them down many times.
torch.set_num_threads(1)

settings.register_profile("default", deadline=None, max_examples=60)
settings.register_profile("ci", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
